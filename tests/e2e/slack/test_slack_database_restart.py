"""A real PostgreSQL server stops and starts again under a stream of signed slash commands.

The shared server is never touched: the bot runs on a private throwaway cluster
(tests/fakes/pg_cluster.py) that the test stops with ``pg_ctl stop -m fast`` while several
people keep typing commands, and then starts again. While it is down every answer arrives
within 3 seconds and is either an answer from the cached personas or the "temporarily
unavailable" sentence, never an apology; /healthz stays 200 and /readyz says 503. Once it is
back /readyz recovers, and the usage writer, which retried with a bounded backoff meanwhile
(not in a loop, and with one warning), writes one row per command: none lost.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from adapters.slack import texts
from adapters.slack.app import SlackAdapter
from adapters.slack.config import load
from bot import messages
from bot.extensions import Extension
from bot.handlers import default_router
from bot.runtime import Runtime
from bot.web import create_app
from persona_store.models import UsageEvent
from tests.conftest import PG_SKIP, postgres_base_url
from tests.e2e.slack.conftest import SECRET, slack_settings
from tests.fakes.pg_cluster import PgCluster
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_wire import FORM, signed_headers, slash_body
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# What each person keeps typing, in turn. Feedback writes and stats reads the database, so
# those need it; lookups, lists, fits and help are answered from the cached catalog.
PEOPLE = {
    "U1": ("fiona", "list", "fit Series B fintech, 300 staff, the CFO worries about audit"),
    "U2": ("carlos", "feedback fiona too US-centric", "pirate"),
    "U3": ("paula", "help", "fiona"),
    "U4": ("fiona", "fit saas cfo", "feedback carlos needs more on procurement"),
    "UADMIN": ("stats 7", "fiona"),  # an admin and a manager may read the statistics
    "UMANAGER": ("carlos", "stats 7"),
}
NEEDS_DATABASE = ("feedback", "stats")
WITHIN = 3.0  # seconds: what Slack waits for an answer


@dataclass
class Answer:
    phase: str
    user: str
    text: str
    seconds: float
    message: dict[str, Any]

    @property
    def verb(self) -> str:
        return self.text.split()[0]

    @property
    def says(self) -> str:
        return str(self.message.get("text", ""))


@dataclass
class Stream:
    """People typing slash commands one after another until told to stop; each answer is
    timed to its final form (the ack, or what came through response_url after "Working")."""

    client: TestClient
    fake: FakeSlackAPI
    phase: str = "up"
    sent: int = 0
    answers: list[Answer] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    keys: Iterator[int] = field(default_factory=itertools.count)

    async def person(self, user: str, typed: tuple[str, ...]) -> None:
        for text in itertools.cycle(typed):
            if self.stopping.is_set():
                return
            await self.one(user, text)

    async def one(self, user: str, text: str) -> None:
        key = f"r{next(self.keys)}"
        body = slash_body(
            text, user=user, user_name=user.lower(), response_url=self.fake.response_url(key)
        )
        phase, started = self.phase, time.monotonic()
        self.sent += 1
        response = await self.client.post(
            "/slack/events", data=body, headers=signed_headers(SECRET, body, content_type=FORM)
        )
        assert response.status == 200, (text, response.status)
        message: dict[str, Any] = await response.json()
        done = time.monotonic()
        if message.get("text") == texts.WORKING:
            [call] = await self.fake.wait_for("response_url", path=key, timeout=15)
            message, done = call.params, call.at
        if self.phase != phase:  # asked before a change and answered after it
            phase = f"{phase} -> {self.phase}"
        self.answers.append(Answer(phase, user, text, done - started, message))

    def of(self, phase: str) -> list[Answer]:
        return [a for a in self.answers if a.phase == phase]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[PgCluster]:
    if postgres_base_url() is None:
        pytest.skip(PG_SKIP)
    reason = PgCluster.unavailable()
    if reason:
        pytest.skip(f"no private PostgreSQL server to stop and start: {reason}")
    cluster = PgCluster.create(tmp_path)
    yield cluster
    cluster.destroy()


@pytest.fixture
async def served(
    cluster: PgCluster, fake_slack: FakeSlackAPI
) -> AsyncIterator[tuple[TestClient, Runtime]]:
    """The web app of ``serve`` with Slack, on 127.0.0.1, over the private cluster."""
    for user in ("U2", "U3", "U4"):
        fake_slack.add_user("T1", user, f"{user.lower()}@tallyworks.example", user.lower())
    settings = slack_settings(cluster.url, fake_slack)
    runtime = await asyncio.to_thread(Runtime.open, settings, seed=True)
    router = default_router(runtime)
    config = load(settings)
    assert config is not None
    adapter = SlackAdapter(config, runtime, router)
    app = create_app(
        runtime, router, [Extension("slack", mount_web=lambda a, rt, r: adapter.mount(a))]
    )
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield client, runtime
    finally:
        await client.close()
        await asyncio.to_thread(runtime.close)


def usage_rows(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(UsageEvent)).scalar_one())


async def readiness(client: TestClient) -> int:
    async with client.get("/readyz") as response:
        return response.status


async def test_a_restarted_postgresql_server_loses_no_command(
    cluster: PgCluster,
    served: tuple[TestClient, Runtime],
    fake_slack: FakeSlackAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, runtime = served
    stream = Stream(client, fake_slack)
    people = [asyncio.create_task(stream.person(u, typed)) for u, typed in PEOPLE.items()]
    try:
        # Everyone has been answered a few times: personas, emails and the org are cached.
        await eventually(
            lambda: len(stream.answers) >= 4 * len(PEOPLE),
            within=20,
            what="a warm-up",
            details=lambda: f"{len(stream.answers)} answers",
        )
        assert await readiness(client) == 200

        failures_before = runtime.usage.write_failures
        outage_started = time.monotonic()
        stream.phase = "stopping"
        await asyncio.to_thread(cluster.stop, "fast")
        stream.phase = "down"
        assert await readiness(client) == 503
        assert (await client.get("/healthz")).status == 200

        def seen_down() -> bool:
            verbs = [a.verb for a in stream.of("down")]
            return (
                len(verbs) >= 60
                and all(verbs.count(v) >= 3 for v in NEEDS_DATABASE)
                and runtime.usage.write_failures > failures_before + 1
            )

        await eventually(
            seen_down,
            within=30,
            what="a stream of commands while PostgreSQL is down",
            details=lambda: (
                f"answered {dict(Counter(a.verb for a in stream.of('down')))}; "
                f"{runtime.usage.write_failures - failures_before} failed usage writes"
            ),
        )
        assert await readiness(client) == 503

        stream.phase = "starting"
        await asyncio.to_thread(cluster.start)
        outage = time.monotonic() - outage_started
        failures = runtime.usage.write_failures - failures_before
        stream.phase = "up again"

        async def ready() -> bool:
            return await readiness(client) == 200

        await eventually(ready, within=20, what="/readyz to recover", interval=0.05)

        def answered_again() -> bool:
            again = stream.of("up again")
            return all(sum(a.verb == v for a in again) >= 2 for v in NEEDS_DATABASE)

        await eventually(
            answered_again,
            within=20,
            what="answers once PostgreSQL is back",
            details=lambda: f"answered {dict(Counter(a.verb for a in stream.of('up again')))}",
        )
    finally:
        stream.stopping.set()
        await asyncio.gather(*people)

    await eventually(
        lambda: runtime.usage.queued == 0 and usage_rows(runtime) == stream.sent,
        within=20,
        what=f"writing all {stream.sent} usage events",
        details=lambda: f"{runtime.usage.queued} queued, {usage_rows(runtime)} rows",
        interval=0.05,
        in_thread=True,
    )
    assert runtime.usage.dropped == 0

    slow = [(a.phase, a.text, round(a.seconds, 2)) for a in stream.answers if a.seconds > WITHIN]
    assert slow == []
    for answer in stream.answers:
        assert answer.says not in (messages.APOLOGY, texts.WORKING), answer
        assert answer.message.get("blocks"), answer
    down = stream.of("down")
    for answer in down:
        if answer.verb in NEEDS_DATABASE:
            assert answer.says == messages.UNAVAILABLE, answer
        else:  # answered from the personas the bot holds
            assert answer.says != messages.UNAVAILABLE, answer
    assert {a.says for a in down if a.verb == "fiona"} == {
        next(a.says for a in stream.answers if a.phase == "up" and a.verb == "fiona")
    }
    for answer in stream.of("up again"):
        assert answer.says != messages.UNAVAILABLE, answer
        if answer.verb == "feedback":
            assert "Thanks" in answer.says, answer

    # The usage writer waited between attempts (0.1 s doubling up to 5 s) instead of
    # retrying in a loop each time a command or a flush woke it (that made hundreds per
    # second), and said so once.
    assert failures <= 8 + 2 * outage, (failures, round(outage, 1))
    warnings = [
        r
        for r in caplog.records
        if r.name == "persona_store.usage" and r.levelno >= logging.WARNING
    ]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    crashes = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith(("bot", "adapters", "persona_store"))
    ]
    assert crashes == []
    print(
        f"{stream.sent} commands, {len(down)} while down; outage {outage:.1f}s, "
        f"{failures} usage write attempts failed"
    )
