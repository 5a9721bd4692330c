"""The batched usage writer: nothing lost on flush, retried while the database is away."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from sqlalchemy import Engine, func, select

from persona_store import migrate
from persona_store.db import create_db_engine
from persona_store.models import UsageEvent
from persona_store.store import PersonaStore
from persona_store.usage import UsageRecord, UsageRecorder, now_ms, usage_counts, write_usage


@pytest.fixture
def engine(db_url: str):  # type: ignore[no-untyped-def]
    eng = create_db_engine(db_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def event(org_id: int, i: int = 0, command: str = "lookup") -> UsageRecord:
    return UsageRecord(
        org_id=org_id, ts=now_ms(), platform="slack", user_id=f"U{i}", command=command
    )


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(UsageEvent)).scalar_one()


def test_a_burst_is_written_in_batches_and_flush_waits_for_all(engine: Engine) -> None:
    org = PersonaStore(engine).default_org()
    batches: list[int] = []

    def counting_writer(eng: Engine, records: Sequence[UsageRecord]) -> None:
        batches.append(len(records))
        write_usage(eng, records)

    recorder = UsageRecorder(engine, batch_size=100, writer=counting_writer)
    recorder.start()
    for i in range(1000):
        recorder.record(event(org, i))
    assert recorder.close(timeout=20)
    assert count(engine) == 1000 == recorder.written
    assert max(batches) <= 100 and len(batches) < 1000  # batched, not one commit each


def test_events_wait_while_the_database_is_down_and_are_written_after(engine: Engine) -> None:
    org = PersonaStore(engine).default_org()
    database_up = threading.Event()
    failures = threading.Event()

    def flaky_writer(eng: Engine, records: Sequence[UsageRecord]) -> None:
        if not database_up.is_set():
            failures.set()
            raise ConnectionError("database restarting")
        write_usage(eng, records)

    recorder = UsageRecorder(engine, flush_interval=0.01, max_backoff=0.05, writer=flaky_writer)
    recorder.start()
    for i in range(50):
        recorder.record(event(org, i))
    assert failures.wait(10)
    assert count(engine) == 0 and recorder.queued == 50
    assert recorder.write_failures >= 1 and "restarting" in (recorder.last_error or "")
    database_up.set()
    assert recorder.flush(timeout=10)
    assert count(engine) == 50 and recorder.dropped == 0
    recorder.close()


def test_a_full_queue_drops_and_counts_instead_of_growing(engine: Engine) -> None:
    org = PersonaStore(engine).default_org()
    recorder = UsageRecorder(engine, max_queue=10)  # not started: nothing drains it
    for i in range(15):
        recorder.record(event(org, i))
    assert recorder.queued == 10 and recorder.dropped == 5
    assert recorder.close()
    assert count(engine) == 10


def test_counts_per_command_and_persona(engine: Engine) -> None:
    store = PersonaStore(engine)
    org = store.default_org()
    other = store.org_for_tenant("slack", "T_OTHER")
    write_usage(engine, [event(org, 1), event(org, 2), event(org, 2, "list"), event(other, 3)])
    counts = usage_counts(engine, org, since_ms=0)
    assert counts["by_command"] == {"lookup": 2, "list": 1}
    assert counts["users"] == 2
    assert counts["unmatched"] == 2


def test_over_long_platform_ids_do_not_poison_a_batch(engine: Engine) -> None:
    org = PersonaStore(engine).default_org()
    long_id = "29:" + "x" * 300
    record = UsageRecord(
        org_id=org,
        ts=now_ms(),
        platform="teams",
        user_id=long_id,
        command="lookup",
        channel="19:" + "c" * 300,
        deal_id="D" * 300,
    )
    write_usage(engine, [record, event(org)])
    with engine.connect() as conn:
        users = conn.execute(select(UsageEvent.user_id).order_by(UsageEvent.id)).scalars().all()
    assert users == [long_id[:128], "U0"]
