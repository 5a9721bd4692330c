"""``persona-bot serve`` as operators run it: a real subprocess with Slack configured against
the fake Web API, a burst of signed slash commands, then SIGTERM (or SIGINT) right after the
last answer. It says which platforms are active, stops gracefully, and loses no usage event."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from bot import messages
from persona_store.db import create_db_engine
from persona_store.models import UsageEvent
from tests.e2e.slack.conftest import BOT_TOKEN, SECRET, MakeSlack
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_wire import FORM, signed_headers, slash_body
from tests.polling import eventually

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    """A ``persona-bot serve`` subprocess and everything it printed."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def ready(self, session: aiohttp.ClientSession, within: float = 30.0) -> None:
        async def healthy() -> bool:
            if self.process.returncode is not None:
                raise AssertionError(f"serve exited early:\n{self.output}")
            try:
                async with session.get(f"http://127.0.0.1:{self.port}/healthz") as resp:
                    return resp.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await eventually(
            healthy,
            within=within,
            what="serve to answer /healthz",
            details=lambda: f"its output:\n{self.output}",
            interval=0.05,
        )

    async def stop(self, sig: signal.Signals, within: float = 30.0) -> int:
        self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), within)
        await asyncio.wait_for(self._reader, within)
        return code


async def start_serve(db: Path, fake: FakeSlackAPI) -> Serve:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PERSONA_BOT_"))}
    env.update(
        PERSONA_BOT_DATABASE_URL=f"sqlite:///{db}",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_URL=fake.api_url,
        PYTHONUNBUFFERED="1",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "serve", "--port", str(port),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    return Serve(process, port)


async def burst(
    session: aiohttp.ClientSession, port: int, count: int, fake: FakeSlackAPI
) -> tuple[list[int], list[str]]:
    """Send ``count`` commands at once; the statuses, and the keys of the answers deferred.

    On a busy machine a command can miss the 2 s inline deadline: its ack is "Working on it…"
    and the answer goes to its response_url, which the caller checks."""
    deferred: list[str] = []

    async def one(i: int) -> int:
        text = ["fiona", "list", "carlos", "fit fintech CFO, 300 staff"][i % 4]
        body = slash_body(text, response_url=fake.response_url(f"burst-{i}"))
        headers = signed_headers(SECRET, body, content_type=FORM)
        async with session.post(
            f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers
        ) as resp:
            payload = await resp.json()
            if payload.get("text") == "Working on it…":
                deferred.append(f"burst-{i}")
            else:
                assert payload.get("blocks"), payload
            return resp.status

    return list(await asyncio.gather(*(one(i) for i in range(count)))), deferred


def usage_rows(db: Path) -> int:
    engine = create_db_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(UsageEvent)).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("sig,count", [(signal.SIGTERM, 200), (signal.SIGINT, 40)])
async def test_a_burst_then_a_signal_loses_no_usage_event(
    tmp_path: Path, fake_slack: FakeSlackAPI, sig: signal.Signals, count: int
) -> None:
    db = tmp_path / "serve.db"
    serve = await start_serve(db, fake_slack)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
            await serve.ready(session)
            started = time.monotonic()
            statuses, deferred = await burst(session, serve.port, count, fake_slack)
            elapsed = time.monotonic() - started
        code = await serve.stop(sig)  # deferred answers still running are delivered first
    finally:
        if serve.process.returncode is None:
            serve.process.kill()
            await serve.process.wait()
    assert statuses == [200] * count
    assert code == 0, serve.output
    assert usage_rows(db) == count, serve.output
    answered_later = [c.path for c in fake_slack.of("response_url") if c.params.get("blocks")]
    assert sorted(answered_later) == sorted(deferred)
    assert (
        f"persona-bot serving on http://127.0.0.1:{serve.port} "
        "(Slack: single workspace, HTTP /slack/events"
    ) in serve.output
    assert "Slack workspace T1 is this install's own" in serve.output
    assert SECRET not in serve.output and BOT_TOKEN not in serve.output
    print(f"{count} signed slash commands in {elapsed:.2f}s ({count / elapsed:.0f}/s)")


async def test_an_unreachable_slack_api_gets_a_clear_answer_not_an_apology(
    make_slack: MakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    slack = await make_slack(SLACK_API_URL=f"http://127.0.0.1:{closed}/api/")
    with caplog.at_level(logging.WARNING):
        response = await slack.slash("fiona")
    assert response.status == 200
    assert await response.text() == messages.SLACK_UNREACHABLE
    assert "Web API could not be reached (ClientConnectorError)" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert slack.usage() == []
