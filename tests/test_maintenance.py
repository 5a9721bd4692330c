"""Retention (the daily purge and ``persona-bot purge-usage``), the dashboard link on the
command line, and the usage writer's logging during an outage."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import Engine

from bot.cli import main
from bot.dashboard import verify
from bot.handlers import default_router
from bot.maintenance import PURGE_TASK, purge_forever
from bot.runtime import Runtime
from bot.web import create_app
from persona_store.app_secrets import get_or_create_secret
from persona_store.db import create_db_engine
from persona_store.store import PersonaStore
from persona_store.summary import to_ms
from persona_store.usage import UsageRecord, UsageRecorder, usage_events_page, write_usage
from tests.conftest import make_settings
from tests.polling import eventually


def old_and_new(runtime: Runtime) -> None:
    now = runtime.clock()
    org = runtime.default_org_id
    write_usage(
        runtime.engine,
        [
            UsageRecord(org, to_ms(now - timedelta(days=d)), "slack", "U1", "list")
            for d in (1, 100, 800, 900)
        ],
    )


def remaining_days(runtime: Runtime) -> list[int]:
    now = runtime.clock()
    rows = usage_events_page(runtime.engine, runtime.default_org_id, 0, to_ms(now), None, 100)
    return sorted(round((to_ms(now) - row[0]) / 86_400_000) for row in rows)


async def test_the_purge_task_runs_with_the_app_and_stops_with_it(runtime: Runtime) -> None:
    old_and_new(runtime)
    task = asyncio.create_task(purge_forever(runtime, first_after=0, every=3600))
    await eventually(
        lambda: remaining_days(runtime) == [1, 100],
        in_thread=True,
        what="the purge to run (usage events 1 and 100 days old left)",
        details=lambda: f"usage events left are {remaining_days(runtime)} days old",
    )
    task.cancel()
    app = create_app(runtime, default_router(runtime))
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)):
        assert not app[PURGE_TASK].done()
    assert app[PURGE_TASK].cancelled()


def test_purge_usage_on_the_command_line_honours_the_retention(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = Runtime.open(make_settings(sqlite_url), seed=False)
    old_and_new(runtime)
    runtime.close()
    env = {"PERSONA_BOT_USAGE_RETENTION_DAYS": "90"}
    assert main(["--db", sqlite_url, "purge-usage"], environ=env) == 0
    assert "3 usage events older than 90 days deleted" in capsys.readouterr().out
    runtime = Runtime.open(make_settings(sqlite_url), seed=False)
    try:
        assert remaining_days(runtime) == [1]
    finally:
        runtime.close()


def test_dashboard_link_on_the_command_line(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"PERSONA_BOT_PUBLIC_URL": "https://bot.example.com"}
    assert main(["--db", sqlite_url, "dashboard-link", "--days", "30"], environ=env) == 0
    url = urlparse(capsys.readouterr().out.strip())
    assert (url.scheme, url.netloc, url.path) == ("https", "bot.example.com", "/dashboard")
    query = parse_qs(url.query)
    engine = create_db_engine(sqlite_url)
    try:
        secret = get_or_create_secret(engine, "dashboard")
        org = PersonaStore(engine).default_org()
        assert verify(secret, query["t"][0], datetime.now(UTC)) == org
        assert verify(secret, query["t"][0], datetime.now(UTC) + timedelta(hours=25)) is None
    finally:
        engine.dispose()
    assert query["days"] == ["30"]


def test_an_outage_is_one_warning_and_one_recovery_note(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    up = threading.Event()
    attempts: list[int] = []

    def flaky(engine: Engine, records: Sequence[UsageRecord]) -> None:
        attempts.append(len(records))
        if not up.is_set():
            raise ConnectionError("connection refused")
        write_usage(engine, records)

    recorder = UsageRecorder(runtime.engine, flush_interval=0.01, max_backoff=0.02, writer=flaky)
    with caplog.at_level(logging.DEBUG, logger="persona_store.usage"):
        recorder.start()
        recorder.record(UsageRecord(runtime.default_org_id, 1, "slack", "U1", "list"))
        assert not recorder.flush(timeout=0.5)
        assert len(attempts) >= 3
        up.set()
        assert recorder.close(timeout=10)
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [m for lvl, m in levels if lvl == "WARNING"] == [
        "usage events not written yet (ConnectionError: connection refused); will retry"
    ]
    assert any(lvl == "INFO" and "written again after" in m for lvl, m in levels)
    assert recorder.written == 1 and recorder.write_failures == len(attempts) - 1
