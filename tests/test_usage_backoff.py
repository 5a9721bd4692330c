"""The usage writer keeps to its backoff while the database is away, however it is woken.

A full queue wakes the writer on every new event, and each flush (``/persona stats``, the
App Home tab, shutdown) wakes it too. While the database is down, those wake-ups must not
turn into write attempts: each attempt is a connection attempt, and concurrent flushes used
to wake each other and the writer in a loop (hundreds of attempts a second).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select

from persona_store import migrate
from persona_store.db import create_db_engine
from persona_store.models import UsageEvent
from persona_store.store import PersonaStore
from persona_store.usage import UsageRecord, UsageRecorder, now_ms, write_usage


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    eng = create_db_engine(sqlite_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def test_wakeups_do_not_hurry_retries_while_the_database_is_down(engine: Engine) -> None:
    org = PersonaStore(engine).default_org()
    down = threading.Event()
    down.set()
    attempts: list[float] = []

    def writer(eng: Engine, records: Sequence[UsageRecord]) -> None:
        attempts.append(time.monotonic())
        if down.is_set():
            raise ConnectionError("connection refused")
        write_usage(eng, records)

    recorder = UsageRecorder(
        engine, batch_size=10, flush_interval=0.01, max_backoff=0.4, writer=writer
    )
    recorder.start()

    def record(count: int) -> None:
        for i in range(count):  # from the 10th on, every one wakes the writer: a full batch
            recorder.record(UsageRecord(org, now_ms(), "slack", f"U{i % 7}", "lookup"))

    started = time.monotonic()
    record(1000)
    with ThreadPoolExecutor(max_workers=4) as pool:
        flushes = [pool.submit(recorder.flush, 1.0) for _ in range(4)]
        record(1000)
        assert [f.result() for f in flushes] == [False] * 4  # nothing could be written
    elapsed = time.monotonic() - started

    # Backoff starts at 0.1 s and doubles: never more than one attempt per 0.1 s on average.
    assert 1 <= len(attempts) <= 3 + elapsed / 0.1, (len(attempts), round(elapsed, 2))
    assert recorder.write_failures == len(attempts)
    assert recorder.queued == 2000 and recorder.dropped == 0

    down.clear()
    assert recorder.flush(timeout=10)
    assert recorder.close()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(UsageEvent)).scalar_one() == 2000
    assert recorder.written == 2000
