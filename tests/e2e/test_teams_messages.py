"""Teams end to end: real Bot Framework activities, with real tokens, POSTed to the running
web app; the answers are read back from a fake Bot Connector."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from adapters.teams import texts
from adapters.teams.notifier import REPLY_RETRY
from bot.model import Reply
from bot.router import Turn
from persona_store.models import Feedback, PlatformTenant
from tests.e2e.teams_kit import (
    ANN_ID,
    APP_ID,
    OUTBOUND_TOKEN,
    TENANT_A,
    TENANT_B,
    TeamsHarness,
    assert_valid_card,
    edited,
    teams_harness,
)


@pytest.fixture
async def teams(sqlite_url: str) -> AsyncIterator[TeamsHarness]:
    async with teams_harness(sqlite_url) as harness:
        yield harness


def card_texts(card: dict[str, Any]) -> str:
    """Every visible text of a card, one per line, for assertions."""
    lines: list[str] = []
    for element in card["body"]:
        for inline in element.get("inlines", []):
            lines.append(inline["text"])
        for fact in element.get("facts", []):
            lines.append(f"{fact['title']}: {fact['value']}")
    return "\n".join(lines)


def action_titles(card: dict[str, Any]) -> list[str]:
    return [a["title"] for a in card.get("actions", [])]


async def ask(teams: TeamsHarness, text: str, *, name: str = "personal_message") -> dict[str, Any]:
    """Send a message and return the card of the bot's answer."""
    before = len(teams.connector.sent())
    response = await teams.post(edited(teams.payload(name), text=text))
    assert response.status == 201, await response.text()
    sent = await teams.connector.wait_for(count=before + 1)
    card = sent[-1].card
    assert card is not None
    return card


async def test_personal_message_gets_the_persona_card(teams: TeamsHarness) -> None:
    response = await teams.post(teams.payload("personal_message"))
    assert response.status == 201
    [reply] = await teams.connector.wait_for()
    # The answer goes back to the conversation it came from, with the bot's token.
    assert reply.conversation_id.startswith("a:1Xw6Jp3c")
    assert reply.headers["Authorization"] == f"Bearer {OUTBOUND_TOKEN}"
    assert reply.body["from"]["id"] == f"28:{APP_ID}"
    assert reply.body["summary"].startswith("Finance Fiona")
    card = reply.card
    assert_valid_card(card, actions=True)
    assert card is not None
    shown = card_texts(card)
    for expected in (
        "Finance Fiona",
        "Demographic",
        "Firmographic",
        "Behavioral",
        "Psychographic",
        "Goals",
        "Pain points",
        "Objections",
        "Owner: fiona.owner",
    ):
        assert expected in shown, expected
    assert "last reviewed" in shown or "never reviewed" in shown
    assert any(e["type"] == "FactSet" for e in card["body"])
    assert any(e["type"] == "Image" for e in card["body"])
    thumbs_up, thumbs_down = card["actions"][:2]
    assert thumbs_up == {
        "type": "Action.Submit",
        "title": "👍 Helpful",
        "data": {"verb": "rate", "args": "finance-fiona up"},
    }
    # 👎 opens a form with an optional comment.
    assert thumbs_down["type"] == "Action.ShowCard"
    assert thumbs_down["card"]["body"][0]["type"] == "Input.Text"
    assert thumbs_down["card"]["actions"][0]["data"] == {
        "verb": "rate",
        "args": "finance-fiona down",
    }
    assert "✅ Mark reviewed" not in action_titles(card)  # Ann does not own Fiona
    assert teams.usage_events() == 1
    assert teams.references() == 1


async def test_channel_mention_is_stripped_and_the_fit_answers_in_the_thread(
    teams: TeamsHarness,
) -> None:
    response = await teams.post(teams.payload("channel_message"))
    assert response.status == 201
    [reply] = await teams.connector.wait_for()
    assert reply.conversation_id.endswith(";messageid=1762076702555")
    assert reply.reply_to == "1762076702555"
    card = reply.card
    assert_valid_card(card, actions=True)
    assert card is not None
    assert "Which persona fits this deal?" in card_texts(card)
    assert "Finance Fiona" in card_texts(card)
    assert any(line.startswith("• ✓ ") for line in card_texts(card).splitlines())  # reasons
    fits = card["actions"][0]
    assert fits["title"] == "✅ This one fits" and fits["style"] == "positive"
    assert fits["data"] == {"verb": "confirm", "args": "- finance-fiona"}


async def test_group_chat_question_grammar(teams: TeamsHarness) -> None:
    response = await teams.post(teams.payload("group_chat_message"))
    assert response.status == 201
    [reply] = await teams.connector.wait_for()
    assert reply.conversation_id.endswith("@thread.v2")
    assert "Which persona fits this deal?" in card_texts(reply.card or {})


@pytest.mark.parametrize(
    ("text", "kind_marker", "has_actions"),
    [
        ("help", "persona-bot", False),
        ("persona list", "4 personas", True),
        ("health", "Persona programme health", False),
        ("history fiona", "History of Finance Fiona", False),
        ("finance controller", "Did you mean Controller Carlos or Finance Fiona", True),
        ("pirate captain", "No persona matches 'pirate captain'", False),
        ("stats 30", "Only managers and admins can read usage summaries", False),
        ("fit", "Describe the deal", False),
    ],
)
async def test_every_reply_kind_is_a_valid_card(
    teams: TeamsHarness, text: str, kind_marker: str, has_actions: bool
) -> None:
    card = await ask(teams, text)
    assert_valid_card(card, actions=has_actions)
    assert kind_marker in card_texts(card)
    assert "/persona" not in card_texts(card)  # Teams people type "persona list"


async def test_stats_for_an_admin_known_by_email(teams: TeamsHarness) -> None:
    teams.connector.add_member(ANN_ID, name="Ann Example", email="Admin@Example.com")
    await ask(teams, "fiona")
    card = await ask(teams, "stats 7")
    assert_valid_card(card, actions=False)
    assert "Persona usage, last 7 days" in card_texts(card)
    assert "Finance Fiona: 1" in card_texts(card)
    # The email was asked for once, then remembered.
    assert teams.connector.member_lookups == 1
    stored = teams.teams.book.store.known_user(TENANT_A, ANN_ID)
    assert stored is not None and stored.email == "admin@example.com"


async def test_thumbs_down_with_comment_rates_and_passes_the_comment_on(
    teams: TeamsHarness,
) -> None:
    response = await teams.post(teams.payload("submit_thumbs_down"))
    assert response.status == 201
    [reply] = await teams.connector.wait_for()
    assert_valid_card(reply.card, actions=False)
    assert "passed to its owner" in card_texts(reply.card or {})
    with teams.runtime.store.session() as s:
        rows = s.scalars(select(Feedback).order_by(Feedback.id)).all()
        assert [(r.rating, r.comment) for r in rows] == [
            (-1, None),
            (0, "The objections are too US-centric"),
        ]
    assert teams.usage_events() == 2  # the rating and the comment are two commands


async def test_buttons_go_through_the_same_handlers(teams: TeamsHarness) -> None:
    card = await ask(teams, "persona list")
    first = card["actions"][0]
    submit = edited(teams.payload("personal_message"), text=None, value=first["data"])
    response = await teams.post(submit)
    assert response.status == 201
    sent = await teams.connector.wait_for(count=2)
    assert card_texts(sent[-1].card or {}).startswith(first["title"])
    assert first["data"]["verb"] == "lookup"
    # "This one fits" from a fit card
    card = await ask(teams, "fit D-1042: Series B fintech, 300 staff, CFO worried about audit")
    confirm = card["actions"][0]["data"]
    assert confirm == {"verb": "confirm", "args": "D-1042 finance-fiona"}
    await teams.post(edited(teams.payload("personal_message"), text=None, value=confirm))
    sent = await teams.connector.wait_for(count=4)
    assert_valid_card(sent[-1].card, actions=False)
    assert "Noted: Finance Fiona fits deal D-1042." in card_texts(sent[-1].card or {})


async def test_mark_reviewed_is_offered_to_the_owner_and_works(teams: TeamsHarness) -> None:
    teams.connector.add_member(ANN_ID, email="fiona.owner@tallyworks.example")
    card = await ask(teams, "fiona")
    review = [a for a in card["actions"] if a["title"] == "✅ Mark reviewed"]
    assert review and review[0]["data"] == {"verb": "review", "args": "finance-fiona"}
    await teams.post(edited(teams.payload("personal_message"), text=None, value=review[0]["data"]))
    sent = await teams.connector.wait_for(count=2)
    assert_valid_card(sent[-1].card, actions=False)
    assert "Finance Fiona is marked reviewed" in card_texts(sent[-1].card or {})
    # Someone else does not get the button (and the verb itself checks ownership too).
    assert (
        await teams.post(edited(teams.payload("group_chat_message"), text="fiona"))
    ).status == 201
    sent = await teams.connector.wait_for(count=3)
    assert "✅ Mark reviewed" not in action_titles(sent[-1].card or {})


async def test_action_execute_invoke_answers_with_a_card(teams: TeamsHarness) -> None:
    response = await teams.post(teams.payload("invoke_action_execute"))
    assert response.status == 200
    body = await response.json()
    assert body["statusCode"] == 200
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert_valid_card(body["value"], actions=True)
    assert "Finance Fiona" in card_texts(body["value"])


async def test_install_in_a_team_welcomes_and_remembers_everyone(teams: TeamsHarness) -> None:
    response = await teams.post(teams.payload("conversation_update_members_added"))
    assert response.status == 201
    [welcome] = await teams.connector.wait_for()
    assert_valid_card(welcome.card, actions=False)
    assert "Hi, I'm persona-bot" in card_texts(welcome.card or {})
    assert welcome.conversation_id == "19:0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d@thread.tacv2"
    assert teams.references() == 2  # the installer and the added member
    assert teams.usage_events() == 0  # a welcome is not a command


async def test_installation_update_stores_and_uninstall_forgets(teams: TeamsHarness) -> None:
    install = teams.payload("installation_update")
    assert (await teams.post(install)).status == 201
    assert teams.references() == 1
    uninstall = edited(install, action="remove")
    assert (await teams.post(uninstall)).status == 201
    assert teams.references() == 0
    assert teams.connector.sent() == []


@pytest.mark.parametrize(
    ("name", "expected"), [("attachment_only", texts.ATTACHMENT), ("empty_mention", texts.EMPTY)]
)
async def test_files_and_empty_messages_get_a_friendly_hint(
    teams: TeamsHarness, name: str, expected: str
) -> None:
    response = await teams.post(teams.payload(name))
    assert response.status == 201
    [reply] = await teams.connector.wait_for()
    assert_valid_card(reply.card, actions=False)
    assert card_texts(reply.card or {}) == expected
    assert teams.usage_events() == 0


async def test_typing_indicator_while_a_slow_command_works(sqlite_url: str) -> None:
    async with teams_harness(sqlite_url, typing_after=0.05) as teams:
        release = asyncio.Event()

        async def slow(turn: Turn) -> Reply:
            await release.wait()
            return Reply.text("done at last")

        teams.router.add("slow", slow)
        posting = asyncio.ensure_future(
            teams.post(edited(teams.payload("personal_message"), text="slow"))
        )
        [typing] = await teams.connector.wait_for(kind="typing")
        assert teams.connector.sent("message") == []
        release.set()
        assert (await posting).status == 201
        [reply] = teams.connector.sent("message")
        assert card_texts(reply.card or {}) == "done at last"
        assert typing.conversation_id == reply.conversation_id


async def test_quick_commands_send_no_typing_indicator(teams: TeamsHarness) -> None:
    await ask(teams, "fiona")
    assert teams.connector.sent("typing") == []


async def test_two_tenants_stay_isolated(teams: TeamsHarness) -> None:
    card = await ask(teams, "fiona")
    assert "Finance Fiona" in card_texts(card)
    other = edited(teams.payload("personal_message", tenant=TENANT_B), text="fiona")
    assert (await teams.post(other)).status == 201
    sent = await teams.connector.wait_for(count=2)
    assert "There are no personas yet" in card_texts(sent[-1].card or {})
    with teams.runtime.store.session() as s:
        tenants = dict(s.execute(select(PlatformTenant.external_id, PlatformTenant.org_id)).all())
    assert tenants[TENANT_A] == teams.runtime.default_org_id
    assert tenants[TENANT_B] != teams.runtime.default_org_id
    # References are kept per organization and tenant.
    ann = "5d0f1e2a-7b3c-4d9e-8f10-a1b2c3d4e5f6"
    in_b = teams.teams.book.store.find_user(tenants[TENANT_B], user_id=ann)
    in_a = teams.teams.book.store.find_user(tenants[TENANT_A], user_id=ann)
    assert [r.tenant_id for r in in_b] == [TENANT_B]
    assert [r.tenant_id for r in in_a] == [TENANT_A]


async def test_an_answer_the_connector_refuses_is_logged_not_crashed(
    teams: TeamsHarness, caplog: pytest.LogCaptureFixture
) -> None:
    teams.connector.fail_next(502, times=REPLY_RETRY.attempts)  # every attempt refused
    response = await teams.post(teams.payload("personal_message"))
    assert response.status == 201  # the activity was handled; Teams must not resend it
    assert any("not delivered: HTTP 502" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("adapters"))
    assert teams.usage_events() == 1


async def test_removing_the_bot_from_a_team_forgets_the_team(teams: TeamsHarness) -> None:
    added = teams.payload("conversation_update_members_added")
    assert (await teams.post(added)).status == 201
    assert teams.references() == 2
    removed = edited(
        added,
        membersAdded=None,
        membersRemoved=[added["membersAdded"][0]],
        channelData={**added["channelData"], "eventType": "teamMemberRemoved"},
    )
    assert (await teams.post(removed)).status == 201
    assert teams.references() == 0
