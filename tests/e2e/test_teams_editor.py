"""The persona editor in Teams, end to end: real activities with real tokens POSTed to the
running web app; ``edit fiona`` answers with an Adaptive Card form (read back from the fake
Bot Connector), and submitting it (a message whose ``value`` holds the inputs and the
form's data) saves a revision, shows the problems and the form again, refuses non-owners
and, when two people edit at once, asks the second to reload."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from adapters.teams.translate import CARD_LIMIT, card_size
from bot.editor import persona_form
from persona_store.records import StoredPersona
from persona_store.schema import PersonaFileError, parse_persona_text
from tests.e2e.teams_kit import ANN_ID, TeamsHarness, edited, teams_harness

FIONA = "finance-fiona"
# Two more people in the same tenant: Fiona's owner and an admin (by email, as configured).
OWNER = {"id": "29:owner-of-fiona", "name": "Olive Owner", "aadObjectId": "aad-owner"}
ADMIN = {"id": "29:the-admin", "name": "Ada Admin", "aadObjectId": "aad-admin"}
ANN = {"id": ANN_ID, "name": "Ann Example", "aadObjectId": "5d0f1e2a-7b3c-4d9e-8f10-a1b2c3d4e5f6"}
INPUT_TYPES = {"Input.Text", "Input.Number", "Input.ChoiceSet"}


@asynccontextmanager
async def harness_with_owner_and_admin(database_url: str) -> AsyncIterator[TeamsHarness]:
    async with teams_harness(database_url) as harness:
        harness.connector.add_member(OWNER["id"], email="fiona.owner@tallyworks.example")
        harness.connector.add_member(ADMIN["id"], email="admin@example.com")
        yield harness


@pytest.fixture
async def teams(sqlite_url: str) -> AsyncIterator[TeamsHarness]:
    async with harness_with_owner_and_admin(sqlite_url) as harness:
        yield harness


@pytest.fixture
async def teams_on_each_db(db_url: str) -> AsyncIterator[TeamsHarness]:
    """SQLite and, when configured, PostgreSQL (where concurrent writers really overlap)."""
    async with harness_with_owner_and_admin(db_url) as harness:
        yield harness


def fiona(teams: TeamsHarness) -> StoredPersona:
    persona = teams.runtime.store.get_persona(teams.runtime.default_org_id, FIONA)
    assert persona is not None
    return persona


def revisions(teams: TeamsHarness, key: str = FIONA) -> list[int]:
    return [r.number for r in teams.runtime.store.history(teams.runtime.default_org_id, key)]


def elements(card: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for element in card["body"]:
        yield element
        yield from element.get("items", [])


def inputs(card: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in elements(card) if e["type"] in INPUT_TYPES}


def shown(card: Mapping[str, Any]) -> str:
    return "\n".join(inline["text"] for e in elements(card) for inline in e.get("inlines", []))


def assert_valid_form_card(card: Mapping[str, Any] | None) -> None:
    """What Teams' renderer needs of a form card, and the size limit."""
    assert card is not None and card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    ids = []
    for element in elements(card):
        kind = element["type"]
        assert kind in {"RichTextBlock", "Container", *INPUT_TYPES}, kind
        if kind == "RichTextBlock":
            assert all(i["type"] == "TextRun" and i["text"].strip() for i in element["inlines"])
        if kind in INPUT_TYPES:
            ids.append(element["id"])
            assert element["label"].strip()
            if element.get("isRequired"):
                assert element["errorMessage"].strip()
        if kind == "Input.Number" and "value" in element:
            assert isinstance(element["value"], int)
        if kind == "Input.ChoiceSet":
            assert element["choices"] and all(c["title"] and c["value"] for c in element["choices"])
    assert len(ids) == len(set(ids)), "input ids must be unique"
    [action] = card["actions"]
    assert action["type"] == "Action.Submit" and action["data"]["verb"] == "save"
    assert card_size(card) <= CARD_LIMIT


async def say(
    teams: TeamsHarness, *, text: str | None = None, value: Any = None, who: dict[str, str] = ANN
) -> dict[str, Any]:
    """A message (typed text or a card submission) from ``who``; the card of the answer."""
    before = len(teams.connector.sent())
    body = edited(teams.payload("personal_message"), text=text, value=value, **{"from": who})
    response = await teams.post(body)
    assert response.status == 201, await response.text()
    sent = await teams.connector.wait_for(count=before + 1)
    card = sent[-1].card
    assert card is not None
    return card


def submission(card: Mapping[str, Any], typed: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``value`` Teams sends for the card's Submit: its data and every input's value
    (what was typed, else the pre-filled value; numbers as text, empty inputs as "")."""
    typed = typed or {}
    value = dict(card["actions"][0]["data"])
    for name, element in inputs(card).items():
        value[name] = typed.get(name, str(element.get("value", "")))
    return value


async def open_editor(
    teams: TeamsHarness, text: str = "edit fiona", who: dict[str, str] = OWNER
) -> dict[str, Any]:
    card = await say(teams, text=text, who=who)
    assert_valid_form_card(card)
    return card


async def test_edit_answers_with_a_form_card_prefilled_with_every_field(
    teams: TeamsHarness,
) -> None:
    card = await open_editor(teams)
    expected = persona_form(fiona(teams).spec, revision=1)
    fields = inputs(card)
    assert list(fields) == [f.name for f in expected.fields]
    for form_field in expected.fields:
        value = fields[form_field.name].get("value", "")
        assert str(value) == form_field.value, form_field.name
        assert fields[form_field.name]["label"] == form_field.label
        assert bool(fields[form_field.name].get("isRequired")) is form_field.required
    assert fields["firmographic.employees.min"]["type"] == "Input.Number"
    assert fields["goals"]["type"] == "Input.Text" and fields["goals"]["isMultiline"] is True
    assert fields["role"]["isMultiline"] is False and fields["role"]["maxLength"] == 5000
    assert fields["notify"]["type"] == "Input.ChoiceSet" and fields["notify"]["value"] == "yes"
    assert card["actions"][0]["data"] == {
        "verb": "save",
        "args": "",
        "pbForm": {"mode": "edit", "revision": "1", "key": FIONA, "unshown": ""},
    }
    text = shown(card)
    for heading in ("Edit Finance Fiona", "Profile", "Demographic", "Firmographic", "Goals"):
        assert heading in text


async def test_a_valid_submission_saves_a_revision_and_shows_the_changed_card(
    teams: TeamsHarness,
) -> None:
    form = await open_editor(teams)
    typed = {"firmographic.employees.max": "5000", "goals": "Close in 3 days\nPass the audit"}
    card = await say(teams, value=submission(form, typed), who=OWNER)
    assert revisions(teams) == [2, 1]
    latest = teams.runtime.store.history(teams.runtime.default_org_id, FIONA)[0]
    assert set(latest.changes) == {"firmographic.employees", "goals"}
    assert latest.author == "Olive Owner"
    text = shown(card)
    facts = json.dumps(card["body"], ensure_ascii=False)
    assert "Saved as revision 2." in text and "• Close in 3 days" in text
    assert "200–5,000" in facts
    assert {
        "title": "✏️ Edit",
        "type": "Action.Submit",
        "data": {"verb": "edit", "args": FIONA},
    } in (card["actions"])
    assert teams.usage_events() == 2  # edit, save


async def test_invalid_input_shows_the_problems_and_the_form_again_and_saves_nothing(
    teams: TeamsHarness,
) -> None:
    form = await open_editor(teams)
    bad = {
        "firmographic.employees.min": "9000",
        "firmographic.employees.max": "10",
        "photo_url": "http://insecure.example/fiona.png",
        "review_every_days": "0",
    }
    again = await say(teams, value=submission(form, bad), who=OWNER)
    assert_valid_form_card(again)
    assert revisions(teams) == [1]
    problems = next(e for e in again["body"] if e["type"] == "Container")
    assert problems["style"] == "attention"
    assert "Nothing was saved: 3 problem(s) to fix" in shown({"body": [problems]})
    fields = inputs(again)
    assert fields["photo_url"]["value"] == bad["photo_url"]  # the user's input is kept
    assert fields["firmographic.employees.max"]["value"] == 10

    mapping = fiona(teams).spec.to_dict()
    mapping["firmographic"]["employees"] = {"min": 9000, "max": 10}
    mapping["photo_url"], mapping["review_every_days"] = bad["photo_url"], 0
    with pytest.raises(PersonaFileError) as raised:
        parse_persona_text(json.dumps({"personas": [mapping]}), format="json")
    messages = {p.message for p in raised.value.problems}
    assert {
        fields[name]["errorMessage"]
        for name in ("firmographic.employees.min", "photo_url", "review_every_days")
    } == messages
    for message in messages:  # visible next to the input, not only on client-side checks
        assert f"⚠️ {message}" in shown(again)


async def test_someone_else_is_refused_and_a_forged_submission_saves_nothing(
    teams: TeamsHarness,
) -> None:
    refused = await say(teams, text="edit fiona", who=ANN)
    assert not inputs(refused) and "actions" not in refused
    assert "Only its owner and admins can edit Finance Fiona." in shown(refused)
    card = await say(teams, text="fiona", who=ANN)
    assert "✏️ Edit" not in [a["title"] for a in card["actions"]]

    form = await open_editor(teams)
    forged = await say(teams, value=submission(form, {"summary": "Not yours"}), who=ANN)
    assert "Only its owner and admins can edit Finance Fiona." in shown(forged)
    assert revisions(teams) == [1] and fiona(teams).spec.summary != "Not yours"


async def test_two_concurrent_saves_one_wins_and_the_other_is_asked_to_reload(
    teams_on_each_db: TeamsHarness,
) -> None:
    teams = teams_on_each_db
    owners = await open_editor(teams, who=OWNER)
    admins = await open_editor(teams, who=ADMIN)
    before = len(teams.connector.sent())
    bodies = [
        edited(teams.payload("personal_message"), text=None, value=value, **{"from": who})
        for value, who in (
            (submission(owners, {"summary": "The owner's summary."}), OWNER),
            (submission(admins, {"summary": "The admin's summary."}), ADMIN),
        )
    ]
    responses = await asyncio.gather(*(teams.post(body) for body in bodies))
    assert [r.status for r in responses] == [201, 201]
    answers = [r.card or {} for r in (await teams.connector.wait_for(count=before + 2))[-2:]]
    texts = sorted(shown(card) for card in answers)
    assert "Saved as revision 2." in texts[1]
    assert "changed by someone else since you opened the editor" in texts[0]
    assert revisions(teams) == [2, 1]
    stale = next(c for c in answers if "changed by someone else" in shown(c))
    [reload] = stale["actions"]
    assert reload["data"] == {"verb": "edit", "args": FIONA}
    fresh = await say(teams, value=reload["data"], who=ADMIN)
    assert_valid_form_card(fresh)
    assert fresh["actions"][0]["data"]["pbForm"]["revision"] == "2"
    assert inputs(fresh)["summary"]["value"] == fiona(teams).spec.summary


async def test_the_edit_button_on_the_card_opens_the_form(teams: TeamsHarness) -> None:
    card = await say(teams, text="fiona", who=OWNER)
    [edit] = [a for a in card["actions"] if a["title"] == "✏️ Edit"]
    form = await say(teams, value=edit["data"], who=OWNER)
    assert_valid_form_card(form)
    assert inputs(form)["role"]["value"] == fiona(teams).spec.role


async def test_admins_create_and_archive_personas_from_teams(teams: TeamsHarness) -> None:
    refused = await say(teams, text="new", who=ANN)
    assert "Only admins can create personas." in shown(refused)
    form = await open_editor(teams, "new", who=ADMIN)
    assert list(inputs(form))[:2] == ["key", "name"]
    assert form["actions"][0]["data"]["pbForm"] == {"mode": "new", "revision": "0", "unshown": ""}
    typed = {"key": "sales-sally", "name": "Sales Sally", "role": "VP Sales", "summary": "Sells."}
    created = await say(teams, value=submission(form, typed), who=ADMIN)
    assert "Sales Sally" in shown(created)
    assert "Sales Sally" in shown(await say(teams, text="sally", who=ANN))
    archived = await say(teams, text="archive sally", who=ADMIN)
    assert "Sales Sally is archived" in shown(archived)
    assert "Sales Sally" not in shown(await say(teams, text="sally", who=ANN))


async def test_the_notify_choice_reaches_the_core(teams: TeamsHarness) -> None:
    calls: list[tuple[str, int, str]] = []

    async def recorder(org_id: int, persona: StoredPersona, editor: str) -> int:
        calls.append((persona.key, persona.revision, editor))
        return 2

    teams.runtime.change_notifier = recorder
    form = await open_editor(teams)
    quiet = await say(
        teams, value=submission(form, {"keywords": "audit", "notify": "no"}), who=OWNER
    )
    assert "Saved as revision 2." in shown(quiet) and calls == []
    form = await open_editor(teams)
    told = await say(teams, value=submission(form, {"keywords": "audit\nspend"}), who=OWNER)
    assert calls == [(FIONA, 3, "aad-owner")]
    assert "2 recent viewer(s) will be told what changed." in shown(told)


async def test_values_too_big_for_one_card_are_kept_and_the_card_says_so(
    teams: TeamsHarness,
) -> None:
    runtime = teams.runtime
    long = {name: f"{name} " * 450 for name in ("summary", "background")}
    spec = dataclasses.replace(
        fiona(teams).spec,
        summary=long["summary"].strip(),
        background=long["background"].strip(),
        goals=tuple(f"Goal {i}: " + "x" * 4900 for i in range(4)),
        pain_points=tuple(f"Pain {i}: " + "y" * 4900 for i in range(4)),
    )
    runtime.store.save_persona(runtime.default_org_id, spec, "import", expected_revision=1)
    runtime.catalogs.invalidate(runtime.default_org_id)

    form = await open_editor(teams)  # within the size limit (checked there)
    unshown = form["actions"][0]["data"]["pbForm"]["unshown"].split(",")
    assert {"goals", "pain_points"} <= set(unshown)
    for name in unshown:
        assert name not in inputs(form)
    assert "too long to show in a Teams card, so the saved version is kept" in shown(form)
    card = await say(teams, value=submission(form, {"keywords": "audit"}), who=OWNER)
    assert "Saved as revision 3." in shown(card)
    saved = fiona(teams).spec
    assert saved.goals == spec.goals and saved.pain_points == spec.pain_points
    assert saved.summary == spec.summary and saved.keywords == ("audit",)
