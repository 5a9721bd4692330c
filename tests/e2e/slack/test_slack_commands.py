"""``/persona`` in Slack, every verb, as Slack sends it: form-encoded, signed, answered in the
ack (quick work) or through response_url (slow work), always within Slack's 3 seconds."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.model import Reply
from bot.router import Router, Turn
from persona_store.models import DealPersona, Feedback
from tests.e2e.slack.conftest import MakeSlack, Slack
from tests.fakes.slack_api import block_kit_problems


async def ask(slack: Slack, text: str, **form: Any) -> dict[str, Any]:
    """Run a slash command; the ack's message, checked against Block Kit's limits."""
    resp = await slack.slash(text, **form)
    assert resp.status == 200, await resp.text()
    message: dict[str, Any] = await resp.json()
    assert block_kit_problems(message.get("blocks")) == []
    return message


def texts_of(message: dict[str, Any]) -> str:
    """Every text shown in a message, joined (for asserting on content)."""
    found: list[str] = [message.get("text", "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("blocks", []))
    return "\n".join(found)


def action_ids(message: dict[str, Any]) -> list[str]:
    return [
        e["action_id"]
        for b in message.get("blocks", [])
        for e in ([*b.get("elements", []), b.get("accessory") or {}])
        if isinstance(e, dict) and e.get("type") == "button"
    ]


async def test_lookup_answers_in_the_ack_with_the_full_card(slack: Slack) -> None:
    message = await ask(slack, "fiona")
    assert message["response_type"] == "ephemeral"
    blocks = message["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Finance Fiona", "emoji": True},
    }
    assert blocks[1]["accessory"]["type"] == "image"  # the photo beside the summary
    shown = texts_of(message)
    for title in ("Demographic", "Firmographic", "Behavioral", "Psychographic"):
        assert f"*{title}*" in shown
    for title in ("Goals", "Pain points", "Objections"):
        assert f"*{title}*" in shown
    assert "Owner: fiona.owner@tallyworks.example · last reviewed" in shown
    assert action_ids(message) == ["pb:rate:0", "pb:rate:1", "pbx:share"]
    assert [(u.command, u.matched, u.platform, u.user_id) for u in slack.usage()] == [
        ("lookup", True, "slack", "U1")
    ]


async def test_every_verb_of_the_grammar(slack: Slack) -> None:
    listed = await ask(slack, "list")
    assert "4 personas" in texts_of(listed) and "pb:lookup:0" in action_ids(listed)

    fit = await ask(slack, "fit D-1042: Series B fintech, 300 staff, the CFO worries about audit")
    assert "Which persona fits this deal?" in texts_of(fit)
    assert "pb:confirm:0" in action_ids(fit)
    with slack.runtime.store.session() as s:
        assert s.query(DealPersona).count() == 1  # the best fit is linked to D-1042

    question = await ask(slack, "which persona fits a 300-person fintech whose CFO wants audit?")
    assert "Which persona fits this deal?" in texts_of(question)

    feedback = await ask(slack, "feedback fiona the objections are out of date")
    assert "Thanks! Your feedback on Finance Fiona" in feedback["text"]
    with slack.runtime.store.session() as s:
        assert [f.comment for f in s.query(Feedback)] == ["the objections are out of date"]

    health = await ask(slack, "health")
    assert "Persona programme health" in texts_of(health)

    history = await ask(slack, "history fiona")
    assert "History of Finance Fiona" in texts_of(history)

    help_reply = await ask(slack, "help")
    assert "/persona fit" in texts_of(help_reply)
    empty = await ask(slack, "")
    assert "persona-bot commands" in empty["text"]

    unknown = await ask(slack, "xyzzy")
    assert "No persona matches 'xyzzy'" in unknown["text"]
    assert "pbx:share" not in action_ids(unknown)  # nothing worth sharing

    commands = [u.command for u in slack.usage()]
    assert commands == [
        "list", "fit", "fit", "feedback", "health", "history", "help", "help", "lookup",
    ]  # fmt: skip


async def test_roles_come_from_the_email_slack_knows(slack: Slack) -> None:
    refused = await ask(slack, "stats")
    assert "Only managers and admins can read usage summaries" in refused["text"]
    allowed = await ask(slack, "stats 7", user="UMANAGER")
    assert "Persona usage, last 7 days" in texts_of(allowed)

    not_owner = await ask(slack, "review fiona")
    assert "Only its owner and admins can mark Finance Fiona reviewed" in not_owner["text"]
    owner = await ask(slack, "review fiona", user="UOWNER")
    assert "Finance Fiona is marked reviewed" in owner["text"]
    # users.info is asked once per person, not once per command
    asked = [c.params["user"] for c in slack.fake.of("users.info")]
    assert sorted(asked) == ["U1", "UMANAGER", "UOWNER"]


async def test_a_command_that_mentions_payload_is_still_a_command(slack: Slack) -> None:
    # Bolt's body reader returns {} for any form containing the word "payload".
    message = await ask(slack, "fit payload of a 300-person fintech, CFO wants audit")
    assert "Which persona fits this deal?" in texts_of(message)


async def test_a_slow_command_acks_in_time_and_answers_through_response_url(
    make_slack: MakeSlack,
) -> None:
    release = asyncio.Event()

    async def slow(turn: Turn) -> Reply:
        await release.wait()  # held until Slack would have given up on an inline answer
        return Reply.text(f"Done for {turn.user.id}.")

    def configure(router: Router) -> None:
        router.add("slow", slow)

    slack = await make_slack(configure=configure)
    started = time.monotonic()
    message = await ask(slack, "slow", response_url=slack.fake.response_url("slow-1"))
    acked = time.monotonic() - started
    assert acked < 2.6, f"acked after {acked:.2f}s"
    assert message == {"response_type": "ephemeral", "text": "Working on it…"}
    assert slack.fake.of("response_url") == []
    release.set()
    [later] = await slack.fake.wait_for("response_url", timeout=5)
    assert later.path == "slow-1"
    assert later.params["text"] == "Done for U1." and later.params["replace_original"] is True
    assert [u.command for u in slack.usage()] == ["slow"]


async def test_another_workspace_never_sees_the_install_s_own_personas(slack: Slack) -> None:
    # A single-workspace install can still receive requests from another team (a shared
    # channel): that team gets an organization of its own, empty until it imports personas.
    await ask(slack, "fiona")
    foreign = await ask(slack, "list", team="T2")
    assert "There are no personas yet" in foreign["text"]
    assert "Finance Fiona" not in texts_of(foreign)
    home, other = slack.runtime.default_org_id, await slack.runtime.org_for("slack", "T2")
    assert home != other
    assert [(u.org_id, u.command) for u in slack.usage()] == [(home, "lookup"), (other, "list")]
