"""Teams translators on recorded payloads: activities to Commands, Replies to Adaptive Cards."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from botbuilder.schema import Activity

from adapters.teams import translate as teams_translate
from adapters.teams.translate import (
    CARD_LIMIT,
    activity_from_reply,
    card_from_reply,
    card_size,
    command_from_activity,
    escape_markdown,
    feedback_follow_up,
    short_id,
    strip_mentions,
    tenant_of,
    unusable_reason,
)
from bot.model import Button, Buttons, Context, Fields, Header, Image, Reply, Text

PAYLOADS = Path(__file__).parent / "payloads" / "teams"
TENANT = "3b9c7d2e-1f4a-4c8e-9d2b-6a5e8f1c0a11"


def activity(payload: str, **changes: Any) -> Activity:
    body = json.loads((PAYLOADS / f"{payload}.json").read_text(encoding="utf-8"))
    body.update(changes)
    return Activity().deserialize(body)


def test_personal_message_is_a_lookup_by_the_aad_user() -> None:
    command = command_from_activity(activity("personal_message"))
    assert command is not None
    assert (command.verb, command.args, command.source) == ("lookup", "fiona", "text")
    assert command.user.id == "5d0f1e2a-7b3c-4d9e-8f10-a1b2c3d4e5f6"
    assert command.user.name == "Ann Example"
    assert command.conversation.platform == "teams"
    assert command.conversation.workspace == TENANT
    assert len(command.conversation.channel) <= 128  # personal chat ids are longer


def test_channel_message_loses_the_bots_mention() -> None:
    command = command_from_activity(activity("channel_message"))
    assert command is not None
    assert command.verb == "fit"
    assert command.args == "Series B fintech, 300 staff, CFO worried about audit"
    assert command.conversation.channel == "19:6b2f9c1d4e7a4b0c8d3e5f6a7b8c9d0e@thread.tacv2"
    assert "<at>" not in command.text


def test_group_chat_question() -> None:
    command = command_from_activity(activity("group_chat_message"))
    assert command is not None
    assert (command.verb, command.args) == ("fit", "a 300-person fintech with a worried CFO")


@pytest.mark.parametrize(
    ("text", "verb", "args"),
    [
        ("persona fiona", "lookup", "fiona"),
        ("fiona", "lookup", "fiona"),
        ("persona fit Series B fintech", "fit", "Series B fintech"),
        ("which persona fits a 300-person fintech?", "fit", "a 300-person fintech"),
        ("help", "help", ""),
        ("/persona list", "list", ""),
        ("<at>persona-bot</at> help", "help", ""),
    ],
)
def test_the_slack_grammar_works_in_teams(text: str, verb: str, args: str) -> None:
    command = command_from_activity(activity("channel_message", text=text))
    assert command is not None
    assert (command.verb, command.args) == (verb, args)


def test_other_mentions_and_html_entities_stay_readable() -> None:
    text = "<at>persona-bot</at> feedback fiona ask <at>Bo Example</at> &amp; me&nbsp;later"
    assert strip_mentions(activity("channel_message", text=text)) == (
        "feedback fiona ask Bo Example & me later"
    )
    # A mention of someone else named like the bot is not the bot's.
    other = activity(
        "channel_message",
        text="<at>persona-bot</at> help",
        entities=[
            {"type": "mention", "text": "<at>persona-bot</at>", "mentioned": {"id": "29:someone"}}
        ],
    )
    assert strip_mentions(other) == "persona-bot help"


def test_a_thumbs_down_with_comment_is_a_rating_then_feedback() -> None:
    command = command_from_activity(activity("submit_thumbs_down"))
    assert command is not None
    assert (command.verb, command.args, command.source) == ("rate", "finance-fiona down", "button")
    follow_up = feedback_follow_up(command)
    assert follow_up is not None
    assert (follow_up.verb, follow_up.args) == (
        "feedback",
        "finance-fiona The objections are too US-centric",
    )
    plain = command_from_activity(
        activity("submit_thumbs_down", value={"verb": "rate", "args": "finance-fiona up"})
    )
    assert plain is not None and feedback_follow_up(plain) is None


def test_action_execute_invoke_is_a_button_press() -> None:
    command = command_from_activity(activity("invoke_action_execute"))
    assert command is not None
    assert (command.verb, command.args, command.source) == ("lookup", "finance-fiona", "button")


@pytest.mark.parametrize(
    ("name", "changes", "reason"),
    [
        ("attachment_only", {}, "attachment"),
        ("empty_mention", {}, "empty"),
        ("personal_message", {"text": "   "}, "empty"),
        ("personal_message", {"text": None}, "empty"),
        ("submit_thumbs_down", {"value": {"action": "someone else's card"}}, "foreign"),
        ("submit_thumbs_down", {"value": {"verb": "DROP TABLE", "args": ""}}, "foreign"),
        ("submit_thumbs_down", {"value": {"verb": "rate", "args": ["x"]}}, "foreign"),
    ],
)
def test_messages_without_a_command(name: str, changes: dict[str, Any], reason: str) -> None:
    message = activity(name, **changes)
    assert command_from_activity(message) is None
    assert unusable_reason(message) == reason


def test_non_message_activities_are_no_commands() -> None:
    assert command_from_activity(activity("installation_update")) is None
    assert command_from_activity(activity("conversation_update_members_added")) is None
    assert command_from_activity(activity("invoke_action_execute", name="task/fetch")) is None


def test_tenant_comes_from_channel_data_or_the_conversation() -> None:
    assert tenant_of(activity("personal_message")) == TENANT
    assert tenant_of(activity("personal_message", channelData={})) == TENANT
    bare = activity("personal_message", channelData={}, conversation={"id": "a:x"})
    assert tenant_of(bare) is None


def test_short_ids_fit_and_stay_distinct() -> None:
    a, b = "a:" + "x" * 300, "a:" + "x" * 299 + "y"
    assert len(short_id(a)) == 128 and short_id(a) != short_id(b)
    assert short_id(a) == short_id(a) and short_id("19:c@thread.v2") == "19:c@thread.v2"


# cards --------------------------------------------------------------------------------------


def texts_of(card: dict[str, Any]) -> list[str]:
    return [i["text"] for e in card["body"] for i in e.get("inlines", [])]


def test_plain_text_cannot_inject_markup() -> None:
    hostile = "**Click** [here](https://evil.example) {{DATE(2017-02-14T06:00Z)}} <at>x</at>"
    reply = Reply(
        summary="s",
        blocks=(
            Header(hostile),
            Text(hostile, title=hostile, items=(hostile,)),
            Fields(((hostile, hostile),)),
            Context(hostile),
        ),
    )
    card = card_from_reply(reply)
    # Text runs are never read as markdown: they carry the text as it is.
    assert all(hostile in t for t in texts_of(card))
    [facts] = [e for e in card["body"] if e["type"] == "FactSet"]
    fact = facts["facts"][0]
    assert fact["value"] == escape_markdown(hostile)
    assert "[here]" not in fact["value"] and "**Click**" not in fact["value"]
    assert "{{" not in fact["value"]


def test_escape_markdown_neutralises_line_starts() -> None:
    assert escape_markdown("- item") == "\\- item"
    assert escape_markdown("1. first\n# head\n+ plus") == "1\\. first\n\\# head\n\\+ plus"
    assert escape_markdown("a_b *c* `d` [e]") == "a\\_b \\*c\\* \\`d\\` \\[e\\]"


def test_blocks_render_to_adaptive_card_elements() -> None:
    reply = Reply(
        summary="summary",
        blocks=(
            Header("Title"),
            Image("http://insecure.example/p.png", "insecure"),
            Image("https://example.com/p.png", "Photo"),
            Text(""),
            Fields((), title="Nothing"),
            Fields((("Industries", "SaaS"),), title="Firmographic"),
            Buttons(
                (
                    Button("Go", "lookup", "fiona", "primary"),
                    Button("Archive", "archive", "fiona", "danger"),
                )
            ),
        ),
    )
    card = card_from_reply(reply)
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    kinds = [e["type"] for e in card["body"]]
    assert kinds == ["RichTextBlock", "Image", "RichTextBlock", "FactSet"]
    assert card["body"][1]["url"] == "https://example.com/p.png"
    assert [a.get("style") for a in card["actions"]] == ["positive", "destructive"]
    assert card_from_reply(Reply(summary="Only a summary"))["body"][0]["inlines"][0]["text"] == (
        "Only a summary"
    )
    message = activity_from_reply(reply)
    assert message.attachments[0].content_type == "application/vnd.microsoft.card.adaptive"
    assert message.summary == "summary"


def test_huge_texts_are_cut_with_an_ellipsis_to_fit() -> None:
    goals = tuple(f"goal {i}: " + "long words " * 500 for i in range(40))
    reply = Reply(
        summary="big",
        blocks=(
            Header("Finance Fiona"),
            Text("x" * 30_000, title="Story"),
            Fields(tuple((f"label {i}", "value " * 400) for i in range(20)), title="Firmographic"),
            Text(title="Goals", items=goals),
            Buttons((Button("👍 Helpful", "rate", "finance-fiona up"),)),
        ),
    )
    card = card_from_reply(reply)
    assert card_size(card) <= CARD_LIMIT
    assert texts_of(card)[0] == "Finance Fiona"
    assert any(t.endswith("…") for t in texts_of(card))
    assert card["actions"]  # the buttons survive


def test_thousands_of_lines_fit_in_a_few_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each pass measures the whole card: shortening proportionately keeps the passes few
    # however long the reply (cutting one line per pass would take thousands).
    passes: list[int] = []

    def measured(card: Any) -> int:
        passes.append(1)
        return card_size(card)

    monkeypatch.setattr(teams_translate, "card_size", measured)
    lines = tuple(f"Persona {i} (persona-{i}): a role of moderate length" for i in range(20_000))
    card = card_from_reply(
        Reply(summary="many", blocks=(Header("20000 personas"), Text(items=lines)))
    )
    assert len(passes) <= 5
    assert card_size(card) <= CARD_LIMIT
    assert texts_of(card)[0] == "20000 personas" and texts_of(card)[-1] == "…"


def test_a_single_enormous_header_still_fits() -> None:
    card = card_from_reply(Reply(summary="x", blocks=(Header("y" * 100_000),)), limit=2000)
    assert card_size(card) <= 2000 and texts_of(card)[0].endswith("…")


def test_the_card_is_sent_exactly_as_rendered() -> None:
    reply = Reply(
        summary="s",
        blocks=(Header("Fiona"), Fields((("a", "1"),)), Buttons((Button("Go", "lookup", "x"),))),
    )
    message = activity_from_reply(reply)
    serialized = message.serialize()
    assert serialized["attachments"][0]["content"] == card_from_reply(reply)
    assert copy.deepcopy(message).attachments[0].content is message.attachments[0].content
