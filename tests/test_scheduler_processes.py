"""Real scheduler processes against a real database and the recording platform over HTTP:
two replicas delivering many items on PostgreSQL, and a worker killed in the middle of a
send, then restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.runtime import Runtime
from bot.settings import Settings
from persona_store import outbox
from tests.fakes.platform import FakePlatform
from tests.scheduler_support import persona

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "admin@example.com"
FAST = {
    "PERSONA_BOT_SCHEDULER_TICK_SECONDS": "0.5",
    "PERSONA_BOT_OUTBOX_POLL_SECONDS": "0.2",
    "PERSONA_BOT_ADMINS": ADMIN,
}


@dataclass
class Process:
    proc: asyncio.subprocess.Process
    worker: str
    log: Path

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), timeout=30)

    async def kill(self) -> None:
        self.proc.kill()
        await self.proc.wait()


Start = Callable[..., Awaitable[Process]]


@pytest.fixture
async def start(tmp_path: Path, platform: FakePlatform) -> AsyncIterator[Start]:
    """Start ``python -m tests.fakes.scheduler_process``; wait until it says it is ready."""
    started: list[Process] = []

    async def launch(db: str, name: str, **env: str) -> Process:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_BOT_")}
        environ.update(FAST, **env)
        log = tmp_path / f"{name}.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.fakes.scheduler_process",
                "--db",
                db,
                "--platform",
                platform.url,
                "--name",
                name,
                cwd=ROOT,
                env=environ,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        except TimeoutError:
            proc.kill()
            raise AssertionError(f"{name} did not start:\n{log.read_text()}") from None
        assert line.startswith(b"ready "), f"{name}: {line!r}\n{log.read_text()}"
        process = Process(proc, line.split()[1].decode(), log)
        started.append(process)
        return process

    yield launch
    for process in started:
        if process.proc.returncode is None:
            await process.kill()


def database(db_url: str) -> Runtime:
    """The test's own view of the database, migrated before any process starts (so the
    processes do not race each other to create the schema)."""
    return Runtime.open(Settings.from_env({}, database_url=db_url), seed=False)


@pytest.mark.postgres
@pytest.mark.slow
async def test_two_replicas_deliver_every_item_exactly_once(
    pg_url: str, platform: FakePlatform, start: Start
) -> None:
    runtime = database(pg_url)
    try:
        platform.delay = 0.01  # long enough for both replicas to have posts in flight
        owners = [f"owner{i}@example.com" for i in range(90)]
        platform.known = {*owners[:85], ADMIN}  # the last five owners are unknown
        a = await start(pg_url, "A", PERSONA_BOT_OUTBOX_BATCH="4")
        b = await start(pg_url, "B", PERSONA_BOT_OUTBOX_BATCH="4")
        # Both replicas are ticking: now make 90 reviews due at once. 30 of them are more
        # than 14 days overdue, so the admin gets an escalation for each of those as well.
        now = datetime.now(UTC)
        store, org = runtime.store, runtime.default_org_id
        store.import_personas(
            org,
            [persona(f"due-{i:02d}", owners[i]) for i in range(60)],
            "test",
            now=now - timedelta(days=95),
        )
        store.import_personas(
            org,
            [persona(f"late-{i:02d}", owners[i]) for i in range(60, 90)],
            "test",
            now=now - timedelta(days=110),
        )
        # 85 nudges + 5 alerts about the unknown owners + 30 escalations.
        await platform.wait_for(lambda: len(platform.deliveries) >= 120, timeout=60)
        assert await a.stop() == 0 and await b.stop() == 0
        rows = outbox.rows(runtime.engine)
    finally:
        runtime.close()

    keys = Counter(platform.keys())
    assert len(keys) == 120 and set(keys.values()) == {1}, keys.most_common(3)
    senders = Counter(d.sender for d in platform.deliveries)
    assert set(senders) == {"A", "B"}, senders  # both replicas did part of the work
    states = Counter((r.kind, r.state) for r in rows)
    assert states == {
        ("review", "sent"): 85,
        ("review", "alerted"): 5,
        ("alert", "sent"): 5,
        ("escalation", "sent"): 30,
    }
    assert {r.claimed_by for r in rows} == {a.worker, b.worker}
    sent = {"/".join(r.key) for r in rows if r.state == "sent"}
    assert sent == set(keys)


@pytest.mark.slow
async def test_a_worker_killed_mid_send_is_restarted_without_a_duplicate(
    db_url: str, platform: FakePlatform, start: Start
) -> None:
    runtime = database(db_url)
    try:
        now = datetime.now(UTC)
        runtime.store.import_personas(
            runtime.default_org_id,
            [persona("first", "owner0@example.com"), persona("second", "owner1@example.com")],
            "test",
            now=now - timedelta(days=95),
        )
        lease = {"PERSONA_BOT_OUTBOX_LEASE_SECONDS": "2"}
        platform.hold_next()  # the platform takes the first post and never answers
        doomed = await start(db_url, "A", **lease)
        await platform.wait_for(lambda: len(platform.deliveries) == 1, timeout=30)
        await doomed.kill()  # between send and mark: the platform has it, the database not
        (held,) = platform.deliveries
        before = {"/".join(r.key): r for r in outbox.rows(runtime.engine)}
        assert before[held.key].state == "sending"

        restarted = await start(db_url, "B", **lease)
        await platform.wait_for(lambda: len(platform.deliveries) == 3, timeout=30)
        assert await restarted.stop() == 0
        rows = outbox.rows(runtime.engine)
    finally:
        runtime.close()

    assert Counter(platform.keys())[held.key] == 1  # delivered once, never re-sent
    by_key = {"/".join(r.key): r for r in rows}
    crashed = by_key[held.key]
    assert (crashed.state, crashed.attempts, crashed.claimed_by) == (
        "uncertain",
        1,
        doomed.worker,
    )
    assert sum(1 for r in rows if r.kind == "review") == 2  # one record per nudge
    other = next(r for r in rows if r.kind == "review" and r.id != crashed.id)
    assert other.state == "sent" and other.claimed_by == restarted.worker
    (alert,) = [d for d in platform.deliveries if d.to == ADMIN]
    assert alert.sender == "B" and "may not have arrived" in alert.text
    assert f"--resend {crashed.id}" in alert.text
