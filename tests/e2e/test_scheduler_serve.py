"""The scheduler inside the web app of ``persona-bot serve``: started with the app, it sends
at once what fell due while the bot was down, stops with the app, and a restart sends
nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

import scheduler
from bot.handlers import default_router
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web import create_app
from persona_store import outbox
from tests.fakes.platform import RecordingNotifier
from tests.polling import eventually
from tests.scheduler_support import persona


@pytest.fixture
def runtime(sqlite_url: str) -> Iterator[Runtime]:
    settings = Settings.from_env({"PERSONA_BOT_DIGEST_DAY": "sun"}, database_url=sqlite_url)
    rt = Runtime.open(settings, seed=False)
    now = datetime.now(UTC)
    rt.store.import_personas(
        rt.default_org_id,
        [persona(f"p-{i}", f"owner{i}@example.com") for i in range(3)],
        "test",
        now=now - timedelta(days=100),  # fell due ten days ago, while the bot was down
    )
    yield rt
    rt.close()


async def serve_once(runtime: Runtime) -> scheduler.SchedulerService:
    """Start the app with the scheduler extension, wait until it is idle, stop it."""
    app = create_app(runtime, default_router(runtime), [scheduler.extension])
    service = app[scheduler.SERVICE]
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        assert (await client.get("/healthz")).status == 200
        await eventually(lambda: service.ticks >= 1, what="the scheduler's first tick")
        await eventually(
            lambda: not outbox.rows(runtime.engine, states=["pending", "claimed"]),
            what="the outbox to be idle (no row pending or claimed)",
            details=lambda: f"rows: {[(r.label, r.state) for r in outbox.rows(runtime.engine)]}",
        )
        metrics = await (await client.get("/metrics")).text()
        assert "persona_bot_outbox_rows_sent" in metrics
    assert not service.scheduler.running
    return service


async def test_serve_sends_what_fell_due_once_and_a_restart_sends_nothing_again(
    runtime: Runtime,
) -> None:
    notifier = RecordingNotifier("slack", runtime.clock)
    runtime.notifiers["slack"] = notifier
    await serve_once(runtime)
    assert sorted(s.to for s in notifier.sent) == [f"owner{i}@example.com" for i in range(3)]
    await serve_once(runtime)
    assert len(notifier.sent) == 3
    assert {r.state for r in outbox.rows(runtime.engine)} == {"sent"}


async def test_serve_without_the_scheduler_when_switched_off(sqlite_url: str) -> None:
    settings = Settings.from_env({"PERSONA_BOT_SCHEDULER": "0"}, database_url=sqlite_url)
    rt = Runtime.open(settings, seed=False)
    try:
        app = create_app(rt, default_router(rt), [scheduler.extension])
        assert scheduler.SERVICE not in app
    finally:
        rt.close()
