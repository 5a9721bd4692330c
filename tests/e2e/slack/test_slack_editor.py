"""The persona editor in Slack, end to end: ``/persona edit`` and the "Edit" button open a
pre-filled modal (``views.open`` on the fake Web API), signed ``view_submission``s save a
revision (the card is posted), get the importer's messages inline, are refused for
non-owners and, when two people edit at once, ask the second to reload."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from bot.editor import persona_form, save_handler
from bot.model import Reply
from bot.router import Router, Turn
from persona_store.records import StoredPersona
from persona_store.schema import PersonaFileError, parse_persona_text
from tests.e2e.slack.conftest import MakeSlack, Slack
from tests.e2e.slack.test_slack_commands import action_ids, ask, texts_of
from tests.e2e.slack.test_slack_interactivity import answer, click
from tests.fakes.slack_api import view_problems
from tests.fakes.slack_wire import (
    TRIGGER_PREFIX,
    event_body,
    view_actions_payload,
    view_submission_payload,
)

FIONA = "finance-fiona"
NAMES = {"U1": "sam.seller", "UOWNER": "fiona.owner", "UADMIN": "ada.admin"}


def fiona(slack: Slack) -> StoredPersona:
    persona = slack.runtime.store.get_persona(slack.runtime.default_org_id, FIONA)
    assert persona is not None
    return persona


def revisions(slack: Slack, key: str = FIONA) -> list[int]:
    return [r.number for r in slack.runtime.store.history(slack.runtime.default_org_id, key)]


async def open_editor(slack: Slack, text: str, *, user: str, count: int = 1) -> dict[str, Any]:
    """``/persona <text>`` as ``user``: the modal Slack was asked to open (checked against
    Slack's view rules)."""
    message = await ask(slack, text, user=user)
    assert "editor" in texts_of(message), message
    opened = await slack.fake.wait_for("views.open", count=count)
    view: dict[str, Any] = opened[-1].params["view"]
    assert view_problems(view) == []
    return view


async def submit(
    slack: Slack, view: dict[str, Any], typed: dict[str, str] | None = None, *, user: str
) -> dict[str, Any]:
    """Submit the modal with ``typed`` changes; Slack's acknowledgement (JSON, or {})."""
    payload = view_submission_payload(view, typed, user=user, user_name=NAMES[user])
    resp = await slack.click(payload)
    assert resp.status == 200, await resp.text()
    body = await resp.text()
    return json.loads(body) if body else {}


def inputs(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}


def prefilled(block: dict[str, Any]) -> str:
    element = block["element"]
    if "initial_option" in element:
        return str(element["initial_option"]["value"])
    return str(element.get("initial_value", ""))


async def test_edit_opens_a_modal_with_every_field_prefilled(slack: Slack) -> None:
    resp = await slack.slash("edit fiona", user="UOWNER")
    message = await resp.json()
    assert message["text"] == "Editing Finance Fiona"  # a line in the channel; no error
    [opened] = await slack.fake.wait_for("views.open")
    assert opened.params["trigger_id"].startswith(TRIGGER_PREFIX)
    assert opened.token == "xoxb-1111-2222-fakeT1token"
    view = opened.params["view"]
    assert view_problems(view) == []
    assert view["callback_id"] == "pb_form" and view["title"]["text"] == "Edit Finance Fiona"
    assert view["submit"]["text"] == "Save"

    expected = persona_form(fiona(slack).spec, revision=1)
    shown = inputs(view)
    assert list(shown) == [f.name for f in expected.fields]  # every field, in order
    for form_field in expected.fields:
        assert prefilled(shown[form_field.name]) == form_field.value, form_field.name
        assert shown[form_field.name]["optional"] is not form_field.required
    assert shown["firmographic.employees.min"]["element"]["type"] == "number_input"
    assert shown["goals"]["element"]["multiline"] is True
    assert shown["notify"]["element"]["type"] == "radio_buttons"
    assert shown["demographic.job_titles"]["hint"]["text"] == "One per line."
    headers = [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]
    assert headers[:3] == ["Profile", "Demographic", "Firmographic"]
    meta = json.loads(view["private_metadata"])
    assert meta["s"] == {"mode": "edit", "revision": "1", "key": FIONA}
    assert meta["c"] == "C1" and meta["u"] == slack.fake.response_url()


async def test_a_valid_save_writes_a_revision_and_posts_the_changed_card(slack: Slack) -> None:
    view = await open_editor(slack, "edit fiona", user="UOWNER")
    ack = await submit(
        slack,
        view,
        {"firmographic.employees.max": "5000", "goals": "Close in 3 days\nPass the audit"},
        user="UOWNER",
    )
    assert ack == {"response_action": "clear"}
    assert revisions(slack) == [2, 1]
    latest = slack.runtime.store.history(slack.runtime.default_org_id, FIONA)[0]
    assert set(latest.changes) == {"firmographic.employees", "goals"}
    assert latest.author == "fiona.owner"
    assert fiona(slack).spec.goals == ("Close in 3 days", "Pass the audit")

    card = await answer(slack, "r1")  # to the editor only, where they typed the command
    assert card["response_type"] == "ephemeral" and card["replace_original"] is False
    shown = texts_of(card)
    assert "Saved as revision 2." in shown
    assert "200–5,000" in shown and "• Close in 3 days" in shown
    assert "pb:edit:" in " ".join(action_ids(card))  # the editor may edit again
    assert [u.command for u in slack.usage()] == ["edit", "save"]


async def test_invalid_changes_get_the_importers_messages_inline_and_nothing_is_saved(
    slack: Slack,
) -> None:
    view = await open_editor(slack, "edit fiona", user="UOWNER")
    bad = {
        "firmographic.employees.min": "9000",
        "firmographic.employees.max": "10",
        "photo_url": "http://insecure.example/fiona.png",
        "review_every_days": "0",
    }
    ack = await submit(slack, view, bad, user="UOWNER")
    assert ack["response_action"] == "errors"
    errors = ack["errors"]
    assert set(errors) == {"firmographic.employees.min", "photo_url", "review_every_days"}
    assert all(len(message) <= 150 for message in errors.values())

    # The same messages as importing a file with these values.
    mapping = fiona(slack).spec.to_dict()
    mapping["firmographic"]["employees"] = {"min": 9000, "max": 10}
    mapping["photo_url"], mapping["review_every_days"] = bad["photo_url"], 0
    with pytest.raises(PersonaFileError) as raised:
        parse_persona_text(json.dumps({"personas": [mapping]}), format="json")
    assert set(errors.values()) == {p.message for p in raised.value.problems}

    assert revisions(slack) == [1]
    assert fiona(slack).spec.photo_url != bad["photo_url"]
    assert slack.fake.of("response_url") == [] and slack.fake.of("chat.postMessage") == []


async def test_someone_else_is_refused_politely_and_no_modal_opens(slack: Slack) -> None:
    refused = await ask(slack, "edit fiona", user="U1")
    assert refused["text"] == "Only its owner and admins can edit Finance Fiona."
    assert "/persona feedback finance-fiona" in texts_of(refused)
    assert slack.fake.of("views.open") == []
    card = await ask(slack, "fiona", user="U1")
    assert not any(a.startswith("pb:edit") for a in action_ids(card))

    # A submission of the owner's modal by somebody else is refused too: the metadata that
    # comes back with it grants nothing.
    view = await open_editor(slack, "edit fiona", user="UOWNER")
    ack = await submit(slack, view, {"summary": "Someone else's words"}, user="U1")
    assert ack["response_action"] == "update"
    assert view_problems(ack["view"]) == []
    assert "Only its owner and admins can edit Finance Fiona." in texts_of(ack["view"])
    assert revisions(slack) == [1]


async def test_two_concurrent_saves_one_wins_and_the_other_is_asked_to_reload(
    slack: Slack,
) -> None:
    owners = await open_editor(slack, "edit fiona", user="UOWNER")
    admins = await open_editor(slack, "edit fiona", user="UADMIN", count=2)
    first, second = await asyncio.gather(
        submit(slack, owners, {"summary": "The owner's summary."}, user="UOWNER"),
        submit(slack, admins, {"summary": "The admin's summary."}, user="UADMIN"),
    )
    acks = sorted([first, second], key=lambda a: a["response_action"])
    assert [a["response_action"] for a in acks] == ["clear", "update"]
    assert revisions(slack) == [2, 1]
    winner = fiona(slack).spec.summary
    assert winner in ("The owner's summary.", "The admin's summary.")

    notice = acks[1]["view"]
    assert view_problems(notice) == []
    assert "changed by someone else since you opened the editor" in texts_of(notice)
    assert action_ids(notice) == ["pb:edit:0"]
    # "Reload the editor" brings the editor back in the same modal, at the new revision.
    loser = "UADMIN" if winner == "The owner's summary." else "UOWNER"
    resp = await slack.click(view_actions_payload(notice, "pb:edit:0", FIONA, user=loser))
    assert resp.status == 200
    [updated] = await slack.fake.wait_for("views.update")
    assert updated.params["view_id"] == "V0EDITOR"
    reloaded = updated.params["view"]
    assert view_problems(reloaded) == []
    assert json.loads(reloaded["private_metadata"])["s"]["revision"] == "2"
    assert prefilled(inputs(reloaded)["summary"]) == winner


async def test_the_edit_button_on_a_card_opens_the_same_editor(slack: Slack) -> None:
    card = await ask(slack, "fiona", user="UOWNER")
    edit = next(a for a in action_ids(card) if a.startswith("pb:edit:"))
    await click(slack, card, edit, user="UOWNER", key="from-card")
    [opened] = await slack.fake.wait_for("views.open")
    view = opened.params["view"]
    assert view_problems(view) == [] and view["callback_id"] == "pb_form"
    assert opened.params["trigger_id"].startswith(TRIGGER_PREFIX)
    meta = json.loads(view["private_metadata"])
    assert meta["c"] == "C1" and meta["u"] == slack.fake.response_url("from-card")
    ack = await submit(slack, view, {"keywords": "audit\nclose"}, user="UOWNER")
    assert ack == {"response_action": "clear"}
    posted = await answer(slack, "from-card")
    assert "Saved as revision 2." in texts_of(posted)


async def test_a_nudge_edit_button_outside_a_channel_gets_the_card_by_direct_message(
    slack: Slack,
) -> None:
    """App Home has no response_url: the saved card comes as a direct message."""
    home_click = view_actions_payload(
        {"blocks": [], "callback_id": ""}, "pb:edit:1", FIONA, user="UOWNER", view_id="V0HOME"
    )
    home_click["view"]["type"] = "home"
    assert (await slack.click(home_click)).status == 200
    [opened] = await slack.fake.wait_for("views.open")
    ack = await submit(slack, opened.params["view"], {"keywords": "audit"}, user="UOWNER")
    assert ack == {"response_action": "clear"}
    [dm] = await slack.fake.wait_for("chat.postMessage")
    assert dm.params["channel"] == "UOWNER"
    assert "Saved as revision 2." in texts_of(dm.params)


async def test_admins_create_and_archive_personas_from_slack(slack: Slack) -> None:
    refused = await ask(slack, "new", user="U1")
    assert refused["text"] == "Only admins can create personas."
    view = await open_editor(slack, "new", user="UADMIN")
    assert list(inputs(view))[:2] == ["key", "name"]
    assert json.loads(view["private_metadata"])["s"] == {"mode": "new", "revision": "0"}
    typed = {"key": "sales-sally", "name": "Sales Sally", "role": "VP Sales", "summary": "Sells."}
    ack = await submit(slack, view, typed, user="UADMIN")
    assert ack == {"response_action": "clear"}
    assert "Sales Sally" in texts_of(await answer(slack, "r1"))
    found = await ask(slack, "sally", user="U1")
    assert "Sales Sally" in texts_of(found)

    refused = await ask(slack, "archive sally", user="U1")
    assert refused["text"] == "Only its owner and admins can archive Sales Sally."
    archived = await ask(slack, "archive sally", user="UADMIN")
    assert "Sales Sally is archived" in archived["text"]
    gone = await ask(slack, "sally", user="U1")
    assert "Sales Sally" not in texts_of(gone)
    assert slack.runtime.store.history(slack.runtime.default_org_id, "sales-sally")[0].action == (
        "archived"
    )


async def test_the_notify_choice_reaches_the_core(slack: Slack) -> None:
    calls: list[tuple[int, str, int, str]] = []

    async def recorder(org_id: int, persona: StoredPersona, editor: str) -> int:
        calls.append((org_id, persona.key, persona.revision, editor))
        return 3

    slack.runtime.change_notifier = recorder
    view = await open_editor(slack, "edit fiona", user="UOWNER")
    ack = await submit(slack, view, {"keywords": "audit", "notify": "no"}, user="UOWNER")
    assert ack == {"response_action": "clear"} and calls == []
    assert "will be told" not in texts_of(await answer(slack, "r1"))

    view = await open_editor(slack, "edit fiona", user="UOWNER", count=2)
    assert prefilled(inputs(view)["notify"]) == "yes"  # the default
    ack = await submit(slack, view, {"keywords": "audit\nspend"}, user="UOWNER")
    assert ack == {"response_action": "clear"}
    assert calls == [(slack.runtime.default_org_id, FIONA, 3, "UOWNER")]
    posted = (await slack.fake.wait_for("response_url", count=2))[-1].params
    assert "3 recent viewer(s) will be told what changed." in texts_of(posted)


async def test_a_value_too_long_for_a_slack_input_is_kept_not_cut(slack: Slack) -> None:
    story = "A long story. " * 300  # 4,200 characters: more than a Slack input holds
    runtime = slack.runtime
    spec = dataclasses.replace(fiona(slack).spec, background=story.strip())
    runtime.store.save_persona(runtime.default_org_id, spec, "import", expected_revision=1)
    runtime.catalogs.invalidate(runtime.default_org_id)

    view = await open_editor(slack, "edit fiona", user="UOWNER")
    assert "background" not in inputs(view)
    assert "*Story* is 4,199 characters long" in texts_of(view)
    assert json.loads(view["private_metadata"])["h"] == ["background"]
    ack = await submit(slack, view, {"summary": "A shorter summary."}, user="UOWNER")
    assert ack == {"response_action": "clear"}
    saved = fiona(slack).spec
    assert saved.summary == "A shorter summary." and saved.background == story.strip()


async def test_an_expired_trigger_offers_a_button_that_opens_the_editor(slack: Slack) -> None:
    slack.fake.fail("views.open", "expired_trigger_id")
    message = await ask(slack, "edit fiona", user="UOWNER")
    assert "Slack did not open the editor" in texts_of(message)
    assert action_ids(message) == ["pb:edit:0"]
    await click(slack, message, "pb:edit:0", user="UOWNER", key="retry")
    opened = await slack.fake.wait_for("views.open", count=2)
    assert opened[-1].params["view"]["callback_id"] == "pb_form"


def slow_saves(release: asyncio.Event) -> Callable[[Router], None]:
    """Saves that take longer than the adapter's deadline: each waits for ``release``."""

    def configure(router: Router) -> None:
        async def slow(turn: Turn) -> Reply:
            await release.wait()
            return await save_handler(turn)

        router.add("save", slow, advertise=False)

    return configure


async def test_a_slow_save_says_saving_then_shows_the_form_with_its_problems(
    make_slack: MakeSlack,
) -> None:
    release = asyncio.Event()
    slack = await make_slack(deadline=0.1, configure=slow_saves(release))
    view = await open_editor(slack, "edit fiona", user="UOWNER")
    ack = await submit(slack, view, {"photo_url": "http://insecure.example/x.png"}, user="UOWNER")
    assert ack["response_action"] == "update"
    assert "Saving…" in texts_of(ack["view"])
    release.set()  # the save finishes only after the adapter has answered "Saving…"
    [updated] = await slack.fake.wait_for("views.update")
    again = updated.params["view"]
    assert updated.params["view_id"] == "V0EDITOR" and view_problems(again) == []
    assert prefilled(inputs(again)["photo_url"]) == "http://insecure.example/x.png"
    assert "⚠️ photo_url: expected an absolute https:// URL" in texts_of(again)
    assert revisions(slack) == [1]


async def test_edit_in_a_direct_message_offers_a_button_that_opens_the_editor(
    slack: Slack,
) -> None:
    body = event_body("message_im.json", text="edit fiona", user="UOWNER")
    assert (await slack.event(body)).status == 200
    [posted] = await slack.fake.wait_for("chat.postMessage")
    assert posted.params["text"] == "Press the button to open the editor."
    assert slack.fake.of("views.open") == []  # a message event has no trigger
    await click(slack, posted.params, "pb:edit:0", user="UOWNER", key="from-dm")
    [opened] = await slack.fake.wait_for("views.open")
    assert opened.params["view"]["callback_id"] == "pb_form"


async def test_when_the_response_url_has_expired_the_saved_card_comes_by_direct_message(
    slack: Slack,
) -> None:
    view = await open_editor(slack, "edit fiona", user="UOWNER")
    slack.fake.fail("response_url", "expired_url", status=404)  # editing took over 30 minutes
    ack = await submit(slack, view, {"keywords": "audit"}, user="UOWNER")
    assert ack == {"response_action": "clear"}
    [dm] = await slack.fake.wait_for("chat.postMessage")
    assert dm.params["channel"] == "UOWNER" and "Saved as revision 2." in texts_of(dm.params)
