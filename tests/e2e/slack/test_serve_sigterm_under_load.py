"""SIGTERM reaches ``persona-bot serve`` in the middle of sustained load, and nothing is lost.

A real ``persona-bot serve`` subprocess (Slack against the fake Web API, Teams in Bot
Framework Emulator mode against the fake Bot Connector) gets signed slash commands and Teams
messages from 16 clients at once, each sending its next request as soon as the last one is
answered. SIGTERM arrives while requests are in flight. Then:

- every request the server took gets its complete answer: a 200 with the Block Kit message
  (or "Working on it…" and the answer through response_url), a 201 with the reply posted to
  the Bot Connector; none is reset half-way;
- the answers given once shutdown has begun say "Connection: close", so the clients' next
  requests go to new connections, which are refused; requests the server did not take fail
  to connect (or, sent on a kept-alive connection answered just before the signal, are
  closed unread); they are counted apart, and only happen after the signal;
- the process exits with 0, and the usage_event table holds exactly one row per answered
  command: the commands in flight finished and the usage queue was flushed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.slack import texts
from tests.e2e.slack.conftest import BOT_TOKEN, SECRET
from tests.e2e.slack.test_slack_serve import Serve, free_port, usage_rows
from tests.e2e.teams_kit import edited, payload
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_wire import FORM, signed_headers, slash_body
from tests.polling import eventually

pytestmark = pytest.mark.slow

CLIENTS = 16
SLACK_TEXTS = ("fiona", "list", "carlos", "fit fintech CFO, 300 staff")
TEAMS_TEXTS = ("fiona", "carlos", "list", "paula")
WARM = 120  # answers before the signal: the server is busy, not starting
GLIMPSE = 0.002  # seconds between looks for the moment to signal: such moments are short


@dataclass
class Load:
    """What the clients saw, sorted by what happened to each request."""

    slack_url: str
    teams_url: str
    connector_url: str
    signalled_at: float | None = None
    in_flight: int = 0
    answered: int = 0
    answered_after_signal: int = 0
    slack_sent: list[str] = field(default_factory=list)  # users whose command was answered
    slack_working: list[str] = field(default_factory=list)  # response_url keys to check
    closing: set[str] = field(default_factory=set)  # users answered with Connection: close
    teams_sent: list[str] = field(default_factory=list)  # activity ids answered with 201
    refused: int = 0  # could not connect: the listener was closed
    unread: int = 0  # sent on a kept-alive connection that shutdown closed unread
    broken: list[str] = field(default_factory=list)  # anything else: must stay empty

    def failed(self, client: int, what: str) -> bool:
        """Note a request that got no answer: fine (True) only once shutdown has begun."""
        if self.signalled_at is None:
            self.broken.append(f"client {client}, before the signal: {what}")
        return self.signalled_at is not None


class Refused(Exception):
    """The connection could not be made: nothing was sent."""


class Unanswered(Exception):
    """The connection was closed before any byte of an answer came back."""


@dataclass
class Answer:
    status: int
    body: bytes
    closes: bool  # "Connection: close": the client will not send on this connection again


async def exchange(session: aiohttp.ClientSession, url: str, **request: Any) -> Answer:
    """POST and read the whole answer; how it failed, if it did, before the answer began."""
    try:
        response = await session.post(url, **request)
    except aiohttp.ClientConnectorError as exc:
        raise Refused(str(exc)) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise Unanswered(f"{type(exc).__name__}: {exc}") from exc
    async with response:  # the status line and headers came: the rest must come too
        body = await response.read()
        closes = response.headers.get("Connection", "").lower() == "close"
        return Answer(response.status, body, closes)


async def slack_request(
    session: aiohttp.ClientSession, load: Load, fake: FakeSlackAPI, client: int, n: int
) -> Answer:
    key = f"c{client}-{n}"
    user = f"U{client}X{n}"
    # A new person each time: the server asks Slack's users.info for them as it starts
    # on the command, which tells the test the server took the request.
    fake.add_user("T1", user, f"{user.lower()}@tallyworks.example", user.lower())
    body = slash_body(
        SLACK_TEXTS[n % len(SLACK_TEXTS)],
        user=user,
        channel=f"C{client}",
        response_url=fake.response_url(key),
    )
    headers = signed_headers(SECRET, body, content_type=FORM)
    answer = await exchange(session, load.slack_url, data=body, headers=headers)
    if answer.status != 200:
        raise AssertionError(f"Slack answered {answer.status}: {answer.body[:200]!r}")
    message: dict[str, Any] = json.loads(answer.body)
    if message.get("text") == texts.WORKING:  # slow: the answer follows by response_url
        load.slack_working.append(key)
    elif not message.get("blocks"):
        raise AssertionError(f"Slack answer without blocks: {message}")
    load.slack_sent.append(user)
    if answer.closes:
        load.closing.add(user)
    return answer


async def teams_request(session: aiohttp.ClientSession, load: Load, client: int, n: int) -> Answer:
    activity_id = f"activity-{client}-{n}"
    body = edited(
        payload("emulator_message", load.connector_url),
        id=activity_id,
        text=TEAMS_TEXTS[n % len(TEAMS_TEXTS)],
        conversation={"id": f"conversation-{client}|livechat"},
    )
    # A new person each time: the server asks the Bot Connector for their email as it starts
    # on the message, which tells the test the server took the request.
    body["from"] = {"id": f"user-{client}-{n}", "name": f"User {client}.{n}", "role": "user"}
    answer = await exchange(session, load.teams_url, json=body)
    if answer.status != 201:
        raise AssertionError(f"Teams answered {answer.status}: {answer.body[:200]!r}")
    load.teams_sent.append(activity_id)
    return answer


async def keep_asking(
    session: aiohttp.ClientSession, load: Load, fake: FakeSlackAPI, client: int
) -> None:
    """Send one request after another until the server stops taking them."""
    told_to_close = False
    for n in itertools.count():
        load.in_flight += 1
        try:
            if client % 2 == 0:
                answer = await slack_request(session, load, fake, client, n)
            else:
                answer = await teams_request(session, load, client, n)
        except Refused as exc:
            if load.failed(client, f"connect: {exc}"):
                load.refused += 1
                return
        except Unanswered as exc:
            # Shutdown closed a kept-alive connection before the server had said it would
            # (an answer prepared before the signal); the next request opens a new one.
            if told_to_close:
                load.broken.append(f"client {client}: unread after Connection: close: {exc}")
                return
            if load.failed(client, f"closed before an answer: {exc}"):
                load.unread += 1
            else:
                return
        except (aiohttp.ClientError, AssertionError, ValueError) as exc:
            # A half-sent answer (ClientPayloadError, a reset), a 5xx, a malformed body.
            load.broken.append(f"client {client}: {type(exc).__name__}: {exc}")
            return
        else:
            load.answered += 1
            told_to_close = answer.closes
            if load.signalled_at is not None:
                load.answered_after_signal += 1
        finally:
            load.in_flight -= 1


@pytest.fixture
async def connector() -> AsyncIterator[FakeBotConnector]:
    async with FakeBotConnector() as fake:
        yield fake


async def start_serve(db: Path, fake: FakeSlackAPI) -> Serve:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "PERSONA_BOT_", "MICROSOFT_"))
    }
    env.update(
        PERSONA_BOT_DATABASE_URL=f"sqlite:///{db}",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_URL=fake.api_url,
        PYTHONUNBUFFERED="1",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    return Serve(process, port)


async def test_sigterm_under_load_finishes_what_it_took_and_flushes_usage(
    tmp_path: Path, fake_slack: FakeSlackAPI, connector: FakeBotConnector
) -> None:
    db = tmp_path / "serve.db"
    # Slack's API takes a moment to say who someone is: slash commands are still being
    # worked on when the signal comes, not only waiting in a socket.
    fake_slack.delays["users.info"] = 0.2
    serve = await start_serve(db, fake_slack)
    base = f"http://127.0.0.1:{serve.port}"
    load = Load(f"{base}/slack/events", f"{base}/api/messages", connector.url)
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CLIENTS),
            timeout=aiohttp.ClientTimeout(total=30),
        ) as session:
            await serve.ready(session)
            assert "Teams: Bot Framework Emulator mode" in serve.output
            clients = [
                asyncio.create_task(keep_asking(session, load, fake_slack, i))
                for i in range(CLIENTS)
            ]
            await eventually(
                lambda: load.answered >= WARM or load.broken,
                within=30,
                what=f"{WARM} answers",
                details=lambda: f"{load.answered} answered",
            )
            assert load.broken == []

            def working_on(within: float = 30.0) -> set[str]:
                """The senders of slash commands the server took (it asked Slack who they
                are) in the last ``within`` seconds and has not answered yet."""
                now = time.monotonic()
                calls = fake_slack.of("users.info")
                asked = {c.params["user"] for c in calls if c.at > now - within}
                return asked - set(load.slack_sent)

            seen: dict[str, int] = {}
            fresh: set[str] = set()

            async def terminate() -> int:
                # Signal at a moment when most clients wait for an answer and the server is
                # in the middle of commands that Slack's users.info (0.2 s) holds for at
                # least another 0.1 s. Nothing awaits between the check, the notes and the
                # signal.
                await eventually(
                    lambda: load.in_flight >= CLIENTS // 2 and working_on(0.1),
                    within=10,
                    what="requests in flight",
                    interval=GLIMPSE,
                )
                seen.update(in_flight=load.in_flight, in_progress=len(working_on()))
                fresh.update(working_on(0.1))
                load.signalled_at = time.monotonic()
                return await serve.stop(signal.SIGTERM, within=40)

            code, *_ = await asyncio.wait_for(asyncio.gather(terminate(), *clients), 50)
    finally:
        if serve.process.returncode is None:
            serve.process.kill()
            await serve.process.wait()

    assert load.broken == [], serve.output
    assert code == 0, serve.output
    # Every request the server started on (it asked who the sender is) was answered,
    # among them those it was working on when the signal came.
    started = {c.params["user"] for c in fake_slack.of("users.info")}
    assert started == set(load.slack_sent)
    assert connector.member_lookups == len(load.teams_sent)
    in_flight, in_progress = seen["in_flight"], seen["in_progress"]
    assert in_flight >= CLIENTS // 2 and in_progress >= len(fresh) >= 1
    assert load.answered_after_signal >= in_progress
    assert load.refused == CLIENTS  # each client went on until the server was gone
    # The answers of shutdown say "Connection: close": no request goes down a connection
    # about to close (so the next one is refused, safe to send elsewhere, not lost unread).
    assert fresh <= load.closing
    # The slow slash commands were answered through response_url before the exit.
    delivered = {c.path: c.params for c in fake_slack.of("response_url")}
    assert all(delivered.get(key, {}).get("blocks") for key in load.slack_working)
    # Every 201 of Teams means the reply reached the Bot Connector.
    replied = {r.reply_to for r in connector.sent("message")}
    assert set(load.teams_sent) <= replied
    assert usage_rows(db) == load.answered, serve.output
    assert "Traceback" not in serve.output and " ERROR " not in serve.output, serve.output
    print(
        f"{load.answered} answers ({len(load.teams_sent)} Teams, "
        f"{len(load.slack_sent)} Slack), {in_flight} in flight at SIGTERM ({in_progress} "
        "being worked on), "
        f"{load.answered_after_signal} answered after it; {load.refused} refused, "
        f"{load.unread} closed unread"
    )
