"""The delivery worker against a recording platform over HTTP: rate limits (429 with
Retry-After), server errors, unreachable recipients, and a worker that dies mid-send.

Time is the injectable clock except in the last test, which runs the real service loop
against the wall clock to show that it sleeps exactly as long as the platform asked.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from bot.handlers import default_router
from bot.model import Reply
from bot.notify import Recipient
from bot.runtime import Runtime
from bot.settings import Settings
from persona_store import outbox
from scheduler.config import SchedulerConfig, with_home_org
from scheduler.service import SchedulerService
from scheduler.tick import run_tick
from scheduler.worker import DeliveryWorker
from tests.conftest import command
from tests.fakes.platform import FakePlatform, HttpNotifier
from tests.scheduler_support import FakeClock, persona, utc

START = utc(2030, 3, 6, 10)  # a Wednesday
ADMIN = "admin@example.com"


class World:
    """A runtime at a simulated time with overdue personas, delivering to the fake."""

    def __init__(self, db_url: str, notifier: HttpNotifier | None, **env: str) -> None:
        self.clock = FakeClock(START)
        # This week's digest (Sunday) is not due yet: these tests are about nudges.
        env = {"PERSONA_BOT_DIGEST_DAY": "sun", **env}
        self.settings = Settings.from_env(env, database_url=db_url)
        self.runtime = Runtime.open(self.settings, seed=False, clock=self.clock)
        if notifier is not None:
            self.runtime.notifiers["slack"] = notifier
        config = SchedulerConfig.from_settings(self.settings)
        self.config = with_home_org(config, self.runtime.default_org_id)

    def personas(self, count: int, *, owner: str | None = "owner{i}@example.com") -> None:
        specs = [
            persona(f"persona-{i:03d}", owner.format(i=i) if owner else None) for i in range(count)
        ]
        # Last reviewed 91 days ago: due yesterday, not yet escalated.
        self.runtime.store.import_personas(
            self.runtime.default_org_id, specs, "test", now=START - timedelta(days=91)
        )

    def worker(self, name: str = "w1", seed: int = 1) -> DeliveryWorker:
        return DeliveryWorker(self.runtime, self.config, name=name, rng=random.Random(seed))

    async def tick(self) -> None:
        rt = self.runtime
        await rt.db(run_tick, rt.store, self.config.rules, self.clock.now)

    def rows(self) -> list[outbox.OutboxRow]:
        return outbox.rows(self.runtime.engine)

    async def drive(
        self, worker: DeliveryWorker, done: object, *, steps: int = 500
    ) -> list[tuple[float, outbox.OutboxRow, bool]]:
        """Run the worker, then move the clock to when it next has work, until ``done()``.
        Returns each postponement: (seconds after the run that decided it, the row, whether
        it was attempted (a retry) or only handed back unattempted)."""
        decisions: list[tuple[float, outbox.OutboxRow, bool]] = []
        for _ in range(steps):
            before = {r.id: (r.next_attempt_at, r.attempts) for r in self.rows()}
            ran_at = self.clock.now
            await worker.run_until_idle()
            for r in self.rows():
                old = before.get(r.id)
                if (
                    r.state == "pending"
                    and old is not None
                    and old != (r.next_attempt_at, r.attempts)
                ):
                    delay = (r.next_attempt_at - ran_at).total_seconds()
                    decisions.append((delay, r, r.attempts > old[1]))
            if done():  # type: ignore[operator]
                return decisions
            self.clock.advance(seconds=await worker.seconds_until_due(3600))
        raise AssertionError("the worker did not finish")


@pytest.fixture
def world_factory(db_url: str) -> Iterator[object]:
    worlds: list[World] = []

    def make(notifier: HttpNotifier | None, **env: str) -> World:
        world = World(db_url, notifier, **env)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.runtime.close()


async def test_rate_limited_platform_gets_everything_once_within_the_backoff_bounds(
    world_factory, platform: FakePlatform, notifier: HttpNotifier
) -> None:
    world: World = world_factory(notifier, PERSONA_BOT_OUTBOX_BATCH="10")
    platform.clock = lambda: world.clock.now.timestamp()
    platform.rate_limit_every, platform.retry_after = 7, 2.0
    world.personas(40)
    await world.tick()
    worker = world.worker()
    decisions = await world.drive(worker, lambda: len(platform.deliveries) >= 40)

    # Everything arrived, nothing twice.
    assert Counter(platform.keys()) == {
        f"review/persona:{r.persona_id}/2030-03-05": 1 for r in world.rows()
    }
    limited = [q for q in platform.requests if q.status == 429]
    assert len(limited) >= 5
    # Nothing reached the platform before its Retry-After had passed, from any row.
    for q in limited:
        later = [r for r in platform.requests if r.number > q.number]
        assert all(r.at >= q.at + 2.0 for r in later), (q, later[:1])
    # Each decision waited at least Retry-After and at most Retry-After plus the jitter.
    # Each row that met a 429 waited at least Retry-After and at most Retry-After plus the
    # jitter; the rows of the same batch were handed back until the Retry-After was over.
    retries = [delay for delay, _, attempted in decisions if attempted]
    assert len(retries) == len(limited)
    assert all(2.0 <= delay <= 2.0 * 1.25 for delay in retries)
    ends = {q.at + 2.0 for q in limited}
    released = [row for _, row, attempted in decisions if not attempted]
    assert released and all(row.next_attempt_at.timestamp() in ends for row in released)
    # One attempt per request that reached the platform: released rows were not charged.
    rows = world.rows()
    assert {r.state for r in rows} == {"sent"}
    assert sum(r.attempts for r in rows) == len(platform.requests) == 40 + len(limited)


async def test_server_errors_back_off_exponentially_then_fail_visibly(
    world_factory, platform: FakePlatform, notifier: HttpNotifier
) -> None:
    world: World = world_factory(
        notifier,
        PERSONA_BOT_ADMINS="U_ADMIN",
        PERSONA_BOT_OUTBOX_MAX_ATTEMPTS="3",
        PERSONA_BOT_OUTBOX_BACKOFF_SECONDS="10",
    )
    world.personas(1)
    platform.answer_next(3, status=500)
    service = SchedulerService(world.runtime, world.config, worker=world.worker())
    await service.tick()
    decisions = await world.drive(
        service.worker, lambda: any(r.state == "failed" for r in world.rows())
    )
    delays = [delay for delay, row, attempted in decisions if attempted and row.kind == "review"]
    assert len(delays) == 2
    assert 10 <= delays[0] <= 12.5 and 20 <= delays[1] <= 25
    (nudge,) = [r for r in world.rows() if r.kind == "review"]
    assert (nudge.state, nudge.attempts) == ("failed", 3)
    assert "gave up after 3 attempts" in (nudge.last_error or "")
    assert platform.deliveries == [] and len(platform.requests) == 3

    router = default_router(world.runtime)
    world.runtime.home_workspaces["slack"] = {"T1"}
    health = await router.dispatch(command(router, "health", user="U_ADMIN"))
    text = str(health.blocks)
    assert "Nudges and digests not delivered" in text
    assert "review nudge for Persona 000 to owner0@example.com: failed" in text
    assert health.data["undelivered"] == 1
    metrics = world.runtime.metrics.render().decode()
    assert "persona_bot_outbox_rows_failed 1.0" in metrics
    assert "persona_bot_outbox_failed_total 1.0" in metrics
    assert "persona_bot_outbox_attempts_total 3.0" in metrics


async def test_unreachable_owners_go_to_the_admins_never_nowhere(
    world_factory, platform: FakePlatform, notifier: HttpNotifier
) -> None:
    world: World = world_factory(notifier, PERSONA_BOT_ADMINS=f"{ADMIN},U_GONE")
    platform.known = {ADMIN, "owner0@example.com"}
    world.personas(2)  # owner1 is unknown on the platform
    world.runtime.store.import_personas(
        world.runtime.default_org_id,
        [persona("ownerless", None)],
        "test",
        now=START - timedelta(days=91),
    )
    await world.tick()
    worker = world.worker()
    await world.drive(worker, lambda: not [r for r in world.rows() if r.state == "pending"])
    by_key = {d.key: d for d in platform.deliveries}
    assert set(d.to for d in platform.deliveries) == {"owner0@example.com", ADMIN}
    alerts = [d for d in platform.deliveries if d.key.startswith("alert/")]
    assert len(alerts) == 2 and all(d.to == ADMIN for d in alerts)
    texts = " ".join(d.text for d in alerts)
    assert "could not be delivered" in texts and "owner1@example.com" in texts
    assert "Ownerless is due for review and has no owner" in texts
    states = Counter((r.kind, r.recipient_label, r.state) for r in world.rows())
    assert states == {
        ("review", "owner0@example.com", "sent"): 1,
        ("review", "owner1@example.com", "alerted"): 1,
        ("review", "nobody", "alerted"): 1,
        ("alert", ADMIN, "sent"): 2,
        ("alert", "U_GONE", "failed"): 2,  # an admin nobody can reach: failed, visible
    }
    assert len(by_key) == len(platform.deliveries)


async def test_without_admins_an_unreachable_owner_is_a_visible_failure(
    world_factory, platform: FakePlatform, notifier: HttpNotifier
) -> None:
    world: World = world_factory(notifier)
    platform.known = set()
    world.personas(1)
    await world.tick()
    await world.drive(world.worker(), lambda: not [r for r in world.rows() if r.state == "pending"])
    (row,) = world.rows()
    assert row.state == "failed"
    assert "PERSONA_BOT_ADMINS" in (row.last_error or "")
    problems = outbox.delivery_problems(world.runtime.engine, row.org_id, world.clock.now)
    assert [(p.state, p.recipient) for p in problems] == [("failed", "owner0@example.com")]


class SimulatedCrash(BaseException):
    """The process dies: nothing after this line of the worker runs."""


class CrashAfterSend:
    """Delivers through the real notifier, then kills the worker before it can record it."""

    platform = "slack"

    def __init__(self, inner: HttpNotifier) -> None:
        self.inner = inner

    async def send(self, recipient: Recipient, reply: Reply) -> str:
        await self.inner.send(recipient, reply)
        raise SimulatedCrash


async def test_a_worker_killed_between_send_and_mark_leaves_one_delivery_and_one_record(
    world_factory, platform: FakePlatform, notifier: HttpNotifier
) -> None:
    world: World = world_factory(notifier, PERSONA_BOT_ADMINS=ADMIN)
    world.personas(2)
    await world.tick()
    rt = world.runtime
    rt.notifiers["slack"] = CrashAfterSend(notifier)  # type: ignore[assignment]
    with pytest.raises(SimulatedCrash):
        await world.worker("doomed").run_once()
    assert len(platform.deliveries) == 1
    delivered_key = platform.deliveries[0].key

    # The restart: a new worker, the real notifier, and time passing beyond the lease.
    rt.notifiers["slack"] = notifier
    world.clock.advance(seconds=world.config.lease.total_seconds() + 1)
    await world.tick()
    survivor = world.worker("restarted")
    await world.drive(survivor, lambda: len(platform.deliveries) == 3)
    for _ in range(3):  # later ticks and runs change nothing
        world.clock.advance(hours=1)
        await world.tick()
        await survivor.run_until_idle()

    keys = Counter(platform.keys())
    assert keys[delivered_key] == 1  # never sent twice
    (crashed,) = [r for r in world.rows() if "/".join(r.key) == delivered_key]
    assert (crashed.state, crashed.attempts, crashed.claimed_by) == ("uncertain", 1, "doomed")
    assert sum(1 for r in world.rows() if r.key == crashed.key) == 1  # recorded once
    # The other row the dead worker had only claimed went out normally.
    assert sorted(d.to for d in platform.deliveries) == sorted(
        ["owner0@example.com", "owner1@example.com", ADMIN]
    )
    (alert,) = [d for d in platform.deliveries if d.to == ADMIN]
    assert "may not have arrived" in alert.text
    assert f"persona-bot nudges --resend {crashed.id}" in alert.text
    problems = outbox.delivery_problems(rt.engine, crashed.org_id, world.clock.now)
    assert [(p.row_id, p.state) for p in problems] == [(crashed.id, "uncertain")]


async def test_the_service_honours_retry_after_in_real_time(
    sqlite_url: str, platform: FakePlatform, notifier: HttpNotifier
) -> None:
    settings = Settings.from_env(
        {"PERSONA_BOT_OUTBOX_POLL_SECONDS": "5", "PERSONA_BOT_OUTBOX_BATCH": "3"},
        database_url=sqlite_url,
    )
    runtime = Runtime.open(settings, seed=False)
    try:
        now = datetime.now(START.tzinfo)
        runtime.store.import_personas(
            runtime.default_org_id,
            [persona(f"p-{i}", f"o{i}@example.com") for i in range(5)],
            "test",
            now=now - timedelta(days=91),
        )
        runtime.notifiers["slack"] = notifier
        platform.answer_next(2, status=429, retry_after=1.0)
        service = SchedulerService(runtime, SchedulerConfig.from_settings(settings))
        await service.start()  # its first tick is immediate
        try:
            await platform.wait_for(lambda: len(platform.deliveries) == 5, timeout=20)
        finally:
            await service.stop()
    finally:
        runtime.close()
    first, second = [q for q in platform.requests if q.status == 429]
    assert all(q.at >= first.at + 1.0 for q in platform.requests[first.number :])
    assert all(q.at >= second.at + 1.0 for q in platform.requests[second.number :])
    # Not the 5 s poll: the worker slept until the Retry-After was over (plus jitter).
    elapsed = platform.deliveries[-1].at - first.at
    assert 2.0 <= elapsed <= 2 * 1.25 + 1.0, elapsed
    assert Counter(platform.keys()).most_common(1)[0][1] == 1


async def test_another_organizations_problems_stay_in_that_organization(
    world_factory, platform: FakePlatform, notifier: HttpNotifier
) -> None:
    world: World = world_factory(notifier, PERSONA_BOT_ADMINS=ADMIN)
    platform.known = {ADMIN}
    store = world.runtime.store
    other = store.org_for_tenant("slack", "T_OTHER", "Other company")
    store.import_personas(
        other, [persona("theirs", "stranger@other.example")], "t", now=START - timedelta(days=110)
    )
    await world.tick()
    await world.drive(world.worker(), lambda: not [r for r in world.rows() if r.state == "pending"])
    assert platform.deliveries == []  # the home organization's admin hears nothing of it
    states = {(r.kind, r.state) for r in world.rows()}
    assert states == {("review", "failed"), ("escalation", "failed")}
    problems = outbox.delivery_problems(world.runtime.engine, other, world.clock.now)
    assert len(problems) == 2
    assert "no admins to tell" in " ".join(p.error or "" for p in problems)
    home = outbox.delivery_problems(world.runtime.engine, world.runtime.default_org_id, START)
    assert home == []
