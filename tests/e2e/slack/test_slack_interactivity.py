"""Buttons and modals as Slack sends them (``payload=`` JSON): every click is acked at once,
handled through the same router as typed commands, logged once, and answered where it
happened (response_url for messages, a modal for App Home)."""

from __future__ import annotations

import json
import logging
import time

import pytest

from persona_store.models import DealPersona, Feedback
from persona_store.records import PersonaSpec
from tests.e2e.slack.conftest import Slack
from tests.e2e.slack.test_slack_commands import action_ids, ask, texts_of
from tests.fakes.slack_api import block_kit_problems, view_problems
from tests.fakes.slack_wire import actions_payload, home_actions_payload, recorded


def button(message: dict, action_id: str) -> dict:
    for block in message["blocks"]:
        for element in [*block.get("elements", []), block.get("accessory") or {}]:
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no button {action_id}")


async def click(slack: Slack, message: dict, action_id: str, *, user: str = "U1", key: str = "r2"):
    element = button(message, action_id)
    payload = actions_payload(
        action_id,
        element["value"],
        user=user,
        response_url=slack.fake.response_url(key),
        label=element["text"]["text"],
    )
    started = time.monotonic()
    resp = await slack.click(payload)
    assert resp.status == 200 and await resp.text() == ""
    assert time.monotonic() - started < 3.0  # acked inside Slack's 3 s; the work happens after
    return resp


async def answer(slack: Slack, key: str) -> dict:
    """What the bot posted to the response_url ``key`` (checked against Block Kit)."""
    posted = (await slack.fake.wait_for("response_url", path=key))[-1].params
    assert block_kit_problems(posted.get("blocks")) == []
    return posted


async def test_thumbs_up_records_the_rating_and_thanks(slack: Slack) -> None:
    card = await ask(slack, "fiona")
    await click(slack, card, "pb:rate:0", key="up")
    reply = await answer(slack, "up")
    assert reply["text"] == "Thanks for rating Finance Fiona: glad it helped."
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    with slack.runtime.store.session() as s:
        assert [(f.user_id, f.rating) for f in s.query(Feedback)] == [("U1", 1)]
    assert [u.command for u in slack.usage()] == ["lookup", "rate"]


async def test_thumbs_down_opens_a_comment_modal_whose_submission_is_feedback(
    slack: Slack,
) -> None:
    card = await ask(slack, "fiona")
    await click(slack, card, "pb:rate:1")
    [opened] = await slack.fake.wait_for("views.open")
    view = opened.params["view"]
    assert view_problems(view) == []
    assert view["callback_id"] == "pb_feedback"
    assert json.loads(view["private_metadata"]) == {"k": "finance-fiona", "c": "C1"}
    assert "Thanks for rating Finance Fiona" in view["blocks"][0]["text"]["text"]
    assert opened.token == "xoxb-1111-2222-fakeT1token"

    submission = recorded("view_submission.json")
    resp = await slack.click(submission)
    assert resp.status == 200
    ack = await resp.json()
    assert ack["response_action"] == "update"
    assert "Your feedback on Finance Fiona was passed to its owner" in json.dumps(ack["view"])
    with slack.runtime.store.session() as s:
        rows = [(f.rating, f.comment) for f in s.query(Feedback).order_by(Feedback.id)]
    assert rows == [(-1, None), (0, "The objections are out of date")]
    assert [u.command for u in slack.usage()] == ["lookup", "rate", "feedback"]

    # Skipping the comment closes the modal and records nothing more.
    submission["view"]["state"]["values"]["comment"]["comment"]["value"] = None
    resp = await slack.click(submission)
    assert resp.status == 200 and await resp.text() == ""
    assert len(slack.usage()) == 3


async def test_share_in_channel_posts_the_same_card_visibly(slack: Slack) -> None:
    card = await ask(slack, "fiona")
    await click(slack, card, "pbx:share", key="share")
    shared = await answer(slack, "share")
    assert shared["response_type"] == "in_channel" and shared["replace_original"] is False
    assert shared["blocks"][: len(card["blocks"]) - 1] == card["blocks"][:-1]
    assert "pbx:share" not in action_ids(shared)
    assert "Shared by sam.seller" in texts_of(shared)


async def test_this_one_fits_records_the_persona_for_the_deal(slack: Slack) -> None:
    fit = await ask(
        slack, "fit D-77: Series C SaaS company, 800 staff, the CFO wants spend control"
    )
    await click(slack, fit, "pb:confirm:0", key="fits")
    reply = await answer(slack, "fits")
    assert reply["text"].startswith("Noted: ") and "fits deal D-77" in reply["text"]
    with slack.runtime.store.session() as s:
        assert [d.source for d in s.query(DealPersona)] == ["confirmed"]


async def test_mark_reviewed_is_for_owners_only(slack: Slack) -> None:
    nudge = {"blocks": [{"type": "actions", "elements": [
        {"type": "button", "action_id": "pb:review:0", "value": "finance-fiona",
         "text": {"type": "plain_text", "text": "Mark reviewed"}}]}]}  # fmt: skip
    await click(slack, nudge, "pb:review:0", user="U1", key="not-owner")
    refused = await answer(slack, "not-owner")
    assert refused["text"] == "Only its owner and admins can mark Finance Fiona reviewed."
    await click(slack, nudge, "pb:review:0", user="UOWNER", key="owner")
    done = await answer(slack, "owner")
    assert done["text"].startswith("Finance Fiona is marked reviewed.")
    assert [(u.command, u.user_id) for u in slack.usage()] == [
        ("review", "U1"),
        ("review", "UOWNER"),
    ]


async def test_a_look_up_button_in_app_home_opens_the_card_in_a_modal(slack: Slack) -> None:
    resp = await slack.click(home_actions_payload("pb:lookup:0", "finance-fiona"))
    assert resp.status == 200
    [opened] = await slack.fake.wait_for("views.open")
    view = opened.params["view"]
    assert view_problems(view) == []
    assert view["blocks"][0]["text"]["text"] == "Finance Fiona"
    assert [u.command for u in slack.usage()] == ["lookup"]


async def test_unknown_and_garbled_buttons_get_a_polite_answer(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for action_id, value, key in (
        ("something_else", "x", "unknown"),
        ("pb:nosuchverb:0", "x", "verb"),
        ("pbx:more", "{not json", "garbled"),
    ):
        payload = actions_payload(action_id, value, response_url=slack.fake.response_url(key))
        resp = await slack.click(payload)
        assert resp.status == 200
    await slack.fake.wait_for("response_url", count=3)
    replies = {c.path: c.params["text"] for c in slack.fake.of("response_url")}
    assert "That button no longer works" in replies["unknown"]
    assert "does not know the command 'nosuchverb'" in replies["verb"]
    assert "could not read" in replies["garbled"]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreadable button value" in m for m in messages) == 1
    assert sum(m.startswith("Slack click ") and " by U1 " in m for m in messages) == 3
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [u.command for u in slack.usage()] == ["nosuchverb"]  # the one that reached the router


async def test_a_card_too_long_for_one_message_continues_with_show_more(slack: Slack) -> None:
    story = " ".join(f"sentence{i}" for i in range(16_000))  # about 160,000 characters
    spec = PersonaSpec(key="long-lola", name="Long Lola", role="Buyer", summary="Long.",
                       background=story)  # fmt: skip
    slack.runtime.store.import_personas(slack.runtime.default_org_id, [spec], "test")
    first = await ask(slack, "long-lola")
    assert len(first["blocks"]) == 50 and first["blocks"][-2]["elements"][0]["text"] == (
        "… part 1 of 2."
    )
    await click(slack, first, "pbx:more", key="more")
    second = await answer(slack, "more")
    assert second["blocks"][-1]["elements"][0]["text"] == "… part 2 of 2."
    shown = texts_of(first) + texts_of(second)
    assert "sentence0 " in shown and "sentence15999" in shown
    assert [u.command for u in slack.usage()] == ["lookup", "lookup"]


async def test_a_look_up_button_in_a_list_answers_with_the_card(slack: Slack) -> None:
    listed = await ask(slack, "list")
    await click(slack, listed, "pb:lookup:1", key="look")
    card = await answer(slack, "look")
    assert card["blocks"][0]["type"] == "header" and "pbx:share" in action_ids(card)
    assert [(u.command, u.matched) for u in slack.usage()] == [("list", False), ("lookup", True)]
