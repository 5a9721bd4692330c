"""What Slack did not sign, or would never send, changes nothing and never gets a 500;
what people typed can never make the bot mention, notify or link anyone."""

from __future__ import annotations

import json
import logging
import time

import pytest

from bot.cli import main
from persona_store.records import PersonaSpec
from tests.e2e.slack.conftest import BOT_TOKEN, SECRET, Slack
from tests.e2e.slack.test_slack_commands import ask
from tests.fakes.slack_wire import FORM, event_body, interactivity_body, signature, slash_body


async def assert_nothing_happened(slack: Slack) -> None:
    assert slack.usage() == []
    assert [c.method for c in slack.fake.calls if c.method != "auth.test"] == []


@pytest.mark.parametrize(
    "headers",
    [
        {},  # unsigned
        {"X-Slack-Request-Timestamp": "{now}", "X-Slack-Signature": "v0=" + "0" * 64},
        {"X-Slack-Request-Timestamp": "{now}", "X-Slack-Signature": "{other_secret}"},
        {"X-Slack-Request-Timestamp": "{stale}", "X-Slack-Signature": "{stale_sig}"},
        {"X-Slack-Request-Timestamp": "not-a-time", "X-Slack-Signature": "v0=abc"},
    ],
    ids=["missing", "wrong", "other-secret", "stale", "garbage-timestamp"],
)
async def test_unverified_requests_get_401_and_change_nothing(
    slack: Slack, headers: dict[str, str]
) -> None:
    body = slash_body("fiona", response_url=slack.fake.response_url())
    now, stale = int(time.time()), int(time.time()) - 6 * 60  # Slack's window is 5 minutes
    values = {
        "now": str(now),
        "stale": str(stale),
        "stale_sig": signature(SECRET, stale, body),
        "other_secret": signature("not-the-secret", now, body),
    }
    sent = {k: v.format(**values) for k, v in headers.items()}
    resp = await slack.client.post(
        "/slack/events", data=body, headers={"Content-Type": FORM, **sent}
    )
    assert resp.status == 401
    assert SECRET not in await resp.text()
    await assert_nothing_happened(slack)


async def test_a_body_changed_after_signing_is_refused(slack: Slack) -> None:
    ts = int(time.time())
    signed = slash_body("fiona")
    headers = {"Content-Type": FORM, "X-Slack-Request-Timestamp": str(ts)}
    headers["X-Slack-Signature"] = signature(SECRET, ts, signed)
    tampered = slash_body("stats")
    resp = await slack.client.post("/slack/events", data=tampered, headers=headers)
    assert resp.status == 401
    await assert_nothing_happened(slack)


@pytest.mark.parametrize(
    "body,content_type",
    [
        ("%%%&&&===", FORM),
        ("text=fiona&user_id=U1", FORM),  # no command, no team
        ("command=%2Fpersona&text=fiona&team_id=T1", FORM),  # no user
        (interactivity_body("{not json"), FORM),
        (interactivity_body("[1, 2, 3]"), FORM),
        (interactivity_body('{"type": "block_actions"}'), FORM),  # no user, no actions
        (
            interactivity_body('{"type": "block_actions", "user": {"id": "U1"}, "actions": "x"}'),
            FORM,
        ),
        ('{"type": "event_callback", "event": "x"}', "application/json"),
        ("[1, 2]", "application/json"),
        ("{not json", "application/json"),
        (b"\xff\xfe\x00garbage", FORM),
    ],
)
async def test_malformed_bodies_get_400_and_change_nothing(
    slack: Slack, body: str | bytes, content_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    resp = await slack.post(body, content_type)
    assert resp.status == 400
    assert await resp.json() == {"error": "malformed request"}
    await assert_nothing_happened(slack)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_shapes_slack_may_send_but_persona_bot_does_not_use_are_acked(slack: Slack) -> None:
    shortcut = {"type": "shortcut", "callback_id": "x", "trigger_id": "1", "user": {"id": "U1"},
                "team": {"id": "T1"}}  # fmt: skip
    for body, content_type in (
        (interactivity_body(json.dumps(shortcut)), FORM),
        (json.dumps(event_body("app_mention.json", type="reaction_added")), "application/json"),
        (
            json.dumps({"type": "url_verification", "challenge": "abc", "token": "t"}),
            "application/json",
        ),
    ):
        resp = await slack.post(body, content_type)
        assert resp.status < 500
    challenge = await slack.post(
        json.dumps({"type": "url_verification", "challenge": "c123", "token": "t"}),
        "application/json",
    )
    assert challenge.status == 200 and (await challenge.json())["challenge"] == "c123"
    assert slack.usage() == []


async def test_user_text_is_escaped_so_nobody_can_ping_or_link_through_the_bot(
    slack: Slack,
) -> None:
    evil = "Evil <!channel> & <@U999> <https://phish.example|click>"
    spec = PersonaSpec(
        key="evil-eve", name=evil, role="<!here> role", summary="Visit <https://x.example>"
    )
    slack.runtime.store.import_personas(slack.runtime.default_org_id, [spec], "test")
    message = await ask(slack, "evil-eve")
    # Slack reads control sequences only in mrkdwn (and the fallback text); plain_text
    # (the header, button labels) is shown as typed and never mentions or links anything.
    marked = [message["text"], *mrkdwn_texts(message)]
    for text in marked:
        for raw in ("<!channel>", "<!here>", "<@U999>", "<https://"):
            assert raw not in text
    assert any("Evil &lt;!channel&gt; &amp; &lt;@U999&gt;" in t for t in marked)
    assert any("&lt;!here&gt; role" in t for t in marked)
    assert message["blocks"][0]["text"]["type"] == "plain_text"
    # What people type is escaped too when it comes back in a reply.
    echoed = await ask(slack, "<!channel> nobody")
    assert "&lt;!channel&gt;" in echoed["text"]
    assert all("<!channel>" not in t for t in [echoed["text"], *mrkdwn_texts(echoed)])


def mrkdwn_texts(message: dict) -> list[str]:
    """Every mrkdwn text object of a message; each must be verbatim (no auto-linking)."""
    found = []
    for block in message["blocks"]:
        for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                assert obj["verbatim"] is True
                found.append(obj["text"])
    return found


async def test_secrets_never_reach_logs_or_replies(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    slack.fake.fail("users.info", "invalid_auth")
    replies = [await (await slack.slash(text)).text() for text in ("fiona", "stats", "nosuch")]
    resp = await slack.post("garbage", FORM)
    replies.append(await resp.text())
    everything = caplog.text + "".join(replies)
    for secret in (SECRET, BOT_TOKEN):
        assert secret not in everything


def test_serve_refuses_slack_without_a_signing_secret(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "PERSONA_BOT_PORT": "0"}
    code = main(["--db", sqlite_url, "serve"], environ=env, configure_logging=False)
    err = capsys.readouterr().err
    assert code == 2
    assert "SLACK_SIGNING_SECRET is not set" in err and BOT_TOKEN not in err
