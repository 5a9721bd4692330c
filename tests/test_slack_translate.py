"""The Slack translators on recorded payloads: Slack's formats to Commands, Replies to Block
Kit that Slack accepts whatever the content (escaped, verbatim, within every limit)."""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.slack.translate import (
    MalformedPayload,
    Origin,
    blocks_from_reply,
    command_from_action,
    command_from_event,
    command_from_slash,
    escape_mrkdwn,
    feedback_from_submission,
    message_from_reply,
    modal_from_reply,
    parse_action_id,
    parse_request_body,
    plain_from_slack,
)
from bot.model import Button, Buttons, Context, Fields, Header, Image, Reply, Text
from tests.fakes.slack_api import block_kit_problems, view_problems
from tests.fakes.slack_wire import interactivity_body, recorded

VERBS = frozenset({"lookup", "list", "fit", "feedback", "stats", "review", "rate", "confirm"})


def texts(blocks: list[dict]) -> str:
    out = []
    for block in blocks:
        for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if isinstance(obj, dict) and isinstance(obj.get("text"), str):
                out.append(obj["text"])
            elif isinstance(obj, dict) and isinstance(obj.get("text"), dict):
                out.append(obj["text"]["text"])
    return "\n".join(out)


def test_slash_command_form() -> None:
    form = dict(parse_qsl(recorded("slash_command.txt")))
    form["text"] = "fit D-1042: Series B fintech &amp; payments, 300 staff"
    command = command_from_slash(form, verbs=VERBS, email="sam@example.com")
    assert (command.verb, command.args) == ("fit", "D-1042: Series B fintech & payments, 300 staff")
    assert (command.user.id, command.user.name, command.user.email) == (
        "U1",
        "sam.seller",
        "sam@example.com",
    )
    assert (command.platform, command.conversation.workspace, command.conversation.channel) == (
        "slack",
        "T1",
        "C1",
    )
    with pytest.raises(MalformedPayload):
        command_from_slash({"text": "fiona", "team_id": "T1"})


def test_a_click_is_the_buttons_command_run_by_the_presser() -> None:
    payload = recorded("block_actions.json")
    command = command_from_action(payload, payload["actions"][0])
    assert command is not None
    assert (command.verb, command.args, command.source) == ("rate", "finance-fiona up", "button")
    assert (command.user.id, command.conversation.workspace, command.conversation.channel) == (
        "U1",
        "T1",
        "C1",
    )
    assert command_from_action(payload, {"action_id": "pbx:share", "value": "{}"}) is None
    assert parse_action_id("pb:lookup:3").verb == "lookup"
    assert parse_action_id("pb:Bad Verb:1").kind == "unknown"
    assert parse_action_id("pbx:more").kind == "more"


def test_events_become_commands_and_bots_edits_and_joins_do_not() -> None:
    mention = recorded("app_mention.json")
    command = command_from_event(mention["event"], team_id="T1", verbs=VERBS, bot_user_id="UBOT")
    assert command is not None and (command.verb, command.args) == ("lookup", "fiona")
    dm = recorded("message_im.json")["event"]
    fit = command_from_event(dm, team_id="T1", verbs=VERBS, bot_user_id="UBOT")
    assert fit is not None and fit.verb == "fit" and fit.args.startswith("a 300-person fintech")
    for change in (
        {"bot_id": "B1"},
        {"subtype": "message_changed"},
        {"subtype": "channel_join"},
        {"user": "UBOT"},
        {"channel_type": "channel"},
        {"edited": {"ts": "1"}},
        {"user": None},
    ):
        assert command_from_event({**dm, **change}, team_id="T1", bot_user_id="UBOT") is None
    in_dm = {**mention["event"], "channel": "D1"}  # the same words arrive as message.im
    assert command_from_event(in_dm, team_id="T1", bot_user_id="UBOT") is None


def test_slack_markup_in_typed_text_becomes_plain_text() -> None:
    typed = "<@UBOT> fit <https://acme.example|Acme> &amp; <#C1|sales> <!here> for <@U2|ann>"
    assert plain_from_slack(typed, bot_user_id="UBOT").split() == [
        "fit", "Acme", "&", "#sales", "@here", "for", "@ann",
    ]  # fmt: skip


def test_feedback_modal_submission() -> None:
    payload = recorded("view_submission.json")
    command = feedback_from_submission(payload)
    assert command is not None
    assert (command.verb, command.args, command.source) == (
        "feedback",
        "finance-fiona The objections are out of date",
        "form",
    )
    payload["view"]["state"]["values"]["comment"]["comment"]["value"] = "   "
    assert feedback_from_submission(payload) is None
    payload["view"]["private_metadata"] = "{broken"
    with pytest.raises(MalformedPayload):
        feedback_from_submission(payload)


def test_request_bodies_slack_would_never_send_are_refused() -> None:
    form = recorded("slash_command.txt").replace("text=fiona", "text=payload")
    assert parse_request_body(form)["text"] == "payload"  # Bolt's reader would return {}
    assert parse_request_body(interactivity_body(recorded("block_actions.json")))["type"] == (
        "block_actions"
    )
    assert parse_request_body(json.dumps(recorded("app_mention.json")))["event_id"]
    for bad in (
        "",
        "a=b",
        interactivity_body("{"),
        interactivity_body("{}"),
        interactivity_body('{"type": "view_submission", "user": {"id": "U1"}, "view": 3}'),
        '{"type": "event_callback", "event": {"type": "x"}}',  # no event id
        "[]",
    ):
        with pytest.raises(MalformedPayload):
            parse_request_body(bad)


def test_origin_round_trip_and_limits() -> None:
    origin = Origin("fit", "D-1: fintech", 2)
    encoded = origin.encode()
    assert encoded is not None and Origin.decode(encoded) == origin
    assert Origin("fit", "x" * 2500).encode() is None
    for bad in ("", "[]", '{"v": 1}', '{"v": "lookup", "p": 0}'):
        with pytest.raises(MalformedPayload):
            Origin.decode(bad)


CARD = Reply(
    summary="Finance Fiona: VP Finance",
    blocks=(
        Header("Finance Fiona"),
        Image("https://example.com/fiona.png", "Photo of Finance Fiona"),
        Text("Owns budget approval.", title="VP Finance"),
        Fields((("Industries", "SaaS"), ("Employees", "200–2,000")), title="Firmographic"),
        Text(title="Goals", items=("Audit-ready numbers", "Spend control")),
        Context("Owner: fiona@example.com"),
        Buttons((Button("👍 Helpful", "rate", "finance-fiona up"),)),
    ),
    kind="card",
    persona_key="finance-fiona",
)


def test_a_card_in_block_kit() -> None:
    blocks = blocks_from_reply(CARD, origin=Origin("lookup", "fiona"), share=True)
    assert [b["type"] for b in blocks] == [
        "header", "section", "section", "section", "context", "actions", "actions",
    ]  # fmt: skip
    assert blocks[1]["accessory"] == {
        "type": "image",
        "image_url": "https://example.com/fiona.png",
        "alt_text": "Photo of Finance Fiona",
    }
    assert blocks[2]["fields"][1]["text"] == "*Employees*\n200–2,000"
    assert blocks[3]["text"]["text"] == "*Goals*\n• Audit-ready numbers\n• Spend control"
    share = blocks[-1]["elements"][0]
    assert share["action_id"] == "pbx:share"
    assert json.loads(share["value"]) == {"v": "lookup", "a": "fiona", "p": 1}
    assert block_kit_problems(blocks) == []


def test_long_content_is_split_or_paged_never_rejected() -> None:
    long_text = ("word " * 1500).strip()  # 7,499 characters
    many_fields = Fields(tuple((f"Field {i}", f"value {i}") for i in range(45)), title="Lots")
    huge_field = Fields((("Notes", "n" * 2500),))
    reply = Reply(
        summary="big",
        blocks=(
            Header("H" * 200),
            Text(long_text, title="Story"),
            many_fields,
            huge_field,
            Buttons(tuple(Button("B" * 100, "lookup", f"k{i}") for i in range(30))),
            Buttons((Button("too long a value", "fit", "x" * 2001),)),
            *[Text(f"paragraph {i}") for i in range(120)],
        ),
        kind="list",
    )
    origin = Origin("list", "")
    first = blocks_from_reply(reply, origin=origin, share=True)
    assert block_kit_problems(first) == [] and len(first) == 50
    assert first[0]["text"]["text"] == "H" * 149 + "…"
    story = [
        b["text"]["text"]
        for b in first
        if b.get("text", {}).get("text", "").startswith(("*Story*", "word"))
    ]
    assert len(story) == 3 and all(len(t) <= 3000 for t in story)
    assert " ".join(t.removeprefix("*Story*\n") for t in story).split() == long_text.split()
    assert [len(b.get("fields", [])) for b in first if "fields" in b][:5] == [10, 10, 10, 10, 5]
    assert "n" * 2500 in "".join(b["text"]["text"] for b in first if b.get("text"))
    assert all(
        len(e["text"]["text"]) <= 75 for b in first if b["type"] == "actions" for e in b["elements"]
    )
    assert first[-2]["elements"][0]["text"] == "… part 1 of 3."
    more, share = first[-1]["elements"]
    assert (more["action_id"], share["action_id"]) == ("pbx:more", "pbx:share")
    pages = [first]
    while (
        pages[-1][-1]["type"] == "actions"
        and pages[-1][-1]["elements"][0]["action_id"] == "pbx:more"
    ):
        nxt = Origin.decode(pages[-1][-1]["elements"][0]["value"])
        pages.append(blocks_from_reply(reply, origin=nxt, share=True))
    assert len(pages) == 3 and all(block_kit_problems(p) == [] for p in pages)
    shown = "\n".join(texts(p) for p in pages)
    assert all(f"paragraph {i}\n" in shown + "\n" for i in range(120))
    assert pages[-1][-1]["elements"][0]["text"] == "… part 3 of 3."
    # Without an origin there is no way to ask for the next part: say it was shortened.
    cut = blocks_from_reply(reply)
    assert cut[-1]["elements"][0]["text"].startswith("… shortened")


def test_modals_keep_to_their_own_limits() -> None:
    reply = Reply(
        summary="A long title for a modal window", blocks=tuple(Text(f"p{i}") for i in range(150))
    )
    modal = modal_from_reply(reply, origin=Origin("list"))
    assert view_problems(modal) == [] and len(modal["blocks"]) == 100
    assert modal["title"]["text"] == "persona-bot"


def test_replies_are_private_unless_meant_for_everyone() -> None:
    private = message_from_reply(CARD, origin=Origin("lookup", "fiona"), share=True)
    assert private["response_type"] == "ephemeral"
    assert private["blocks"][-1]["elements"][0]["action_id"] == "pbx:share"
    public = message_from_reply(
        dataclasses.replace(CARD, ephemeral=False), origin=Origin("lookup"), share=True
    )
    assert public["response_type"] == "in_channel"
    assert "pbx:share" not in json.dumps(public["blocks"])


def test_escaping() -> None:
    assert escape_mrkdwn("a & <b> <!here>") == "a &amp; &lt;b&gt; &lt;!here&gt;"
    message = message_from_reply(Reply.text("<@U1> & <!channel>"))
    assert message["text"] == "&lt;@U1&gt; &amp; &lt;!channel&gt;"


printable = st.text(st.characters(blacklist_categories=("Cs",)), max_size=400)


@settings(max_examples=60, deadline=None)
@given(
    header=printable,
    paragraphs=st.lists(printable, max_size=70),
    items=st.lists(printable, max_size=40),
    pairs=st.lists(st.tuples(printable, printable), max_size=40),
    labels=st.lists(printable, max_size=40),
)
def test_any_reply_renders_to_blocks_slack_accepts(
    header: str,
    paragraphs: list[str],
    items: list[str],
    pairs: list[tuple[str, str]],
    labels: list[str],
) -> None:
    reply = Reply(
        summary=header,
        blocks=(
            Header(header),
            *[Text(p) for p in paragraphs],
            Text(title=header, items=tuple(items)),
            Fields(tuple(pairs), title=header or None),
            Buttons(tuple(Button(label, "lookup", label) for label in labels)),
            Context(header),
        ),
    )
    for blocks in (
        blocks_from_reply(reply, origin=Origin("lookup", header[:100]), share=True),
        blocks_from_reply(reply, origin=Origin("lookup", header[:100], 2)),
    ):
        assert block_kit_problems(blocks) == []
        for block in blocks:
            for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
                if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                    assert "<" not in obj["text"] and ">" not in obj["text"]
