"""Socket Mode: with SLACK_APP_TOKEN the app opens a WebSocket (apps.connections.open, then the
URL it returns) on start, answers envelopes through the same listeners, and closes on stop."""

from __future__ import annotations

from urllib.parse import parse_qsl

from adapters.slack.config import load
from tests.e2e.slack.conftest import MakeSlack, slack_settings
from tests.fakes.slack_api import FakeSlackAPI, block_kit_problems
from tests.fakes.slack_wire import event_body, slash_body

APP_TOKEN = "xapp-1-A0PERSONA-1234-socketmodetoken"


async def test_socket_mode_answers_commands_and_events(
    make_slack: MakeSlack, fake_slack: FakeSlackAPI
) -> None:
    fake_slack.app_tokens.add(APP_TOKEN)
    slack = await make_slack(SLACK_APP_TOKEN=APP_TOKEN, SLACK_SIGNING_SECRET="")
    [opened] = await fake_slack.wait_for("apps.connections.open")
    assert opened.token == APP_TOKEN

    form = dict(parse_qsl(slash_body("fiona", response_url=fake_slack.response_url())))
    await fake_slack.socket_outbox.put(
        {
            "envelope_id": "env-1",
            "type": "slash_commands",
            "accepts_response_payload": True,
            "payload": form,
        }
    )
    ack = await fake_slack.wait_for_socket_ack("env-1")
    blocks = ack["payload"]["blocks"]
    assert blocks[0]["text"]["text"] == "Finance Fiona" and block_kit_problems(blocks) == []

    mention = event_body("app_mention.json", text="<@UBOT> list")
    await fake_slack.socket_outbox.put(
        {
            "envelope_id": "env-2",
            "type": "events_api",
            "accepts_response_payload": False,
            "payload": mention,
            "retry_attempt": 0,
            "retry_reason": "",
        }
    )
    await fake_slack.wait_for_socket_ack("env-2")
    [posted] = await fake_slack.wait_for("chat.postEphemeral")
    assert "4 personas" in posted.params["text"]
    # The same event redelivered over the socket is acked and dropped.
    await fake_slack.socket_outbox.put(
        {
            "envelope_id": "env-3",
            "type": "events_api",
            "payload": mention,
            "retry_attempt": 1,
            "retry_reason": "timeout",
        }
    )
    await fake_slack.wait_for_socket_ack("env-3")
    assert [u.command for u in slack.usage()] == ["lookup", "list"]
    # Without a signing secret there is no HTTP endpoint to forge requests against.
    assert (await slack.client.post("/slack/events", data="x")).status == 404


def test_the_status_line_names_the_transport(sqlite_url: str) -> None:
    fake_url = "http://127.0.0.1:9/api/"
    fake = type("F", (), {"api_url": fake_url})()
    http = load(slack_settings(sqlite_url, fake))  # type: ignore[arg-type]
    socket = load(slack_settings(sqlite_url, fake, SLACK_APP_TOKEN=APP_TOKEN))  # type: ignore[arg-type]
    assert http is not None and socket is not None
    assert http.describe() == "Slack: single workspace, HTTP /slack/events"
    assert socket.describe() == "Slack: single workspace, Socket Mode"
