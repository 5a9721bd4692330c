"""The outbox on SQLite and PostgreSQL: unique keys, exclusive claims, guarded transitions,
the lease policy, and concurrent enqueues and claims that neither deadlock nor double up."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from persona_store import migrate, outbox
from persona_store.db import create_db_engine
from persona_store.outbox import DueItem, OutboxRow
from persona_store.store import PersonaStore
from tests.scheduler_support import utc

NOW = utc(2030, 3, 1, 9)
LEASE = timedelta(minutes=5)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_db_engine(db_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def org(engine: Engine) -> int:
    return PersonaStore(engine).default_org()


def items(org: int, count: int, kind: str = "review") -> list[DueItem]:
    return [
        DueItem(kind, f"persona:{i}", "2030-03-01", org, {"to": {"email": f"o{i}@x.example"}})
        for i in range(count)
    ]


def test_the_same_item_is_recorded_once(engine: Engine, org: int) -> None:
    first = outbox.enqueue(engine, items(org, 3), NOW)
    assert [i.subject for i in first] == ["persona:0", "persona:1", "persona:2"]
    again = outbox.enqueue(engine, [*items(org, 4), *items(org, 2)], NOW + timedelta(minutes=1))
    assert [i.subject for i in again] == ["persona:3"]
    rows = outbox.rows(engine)
    assert len(rows) == 4 and {r.state for r in rows} == {"pending"}
    assert outbox.counts_by_state(engine)["pending"] == 4


def test_claims_are_exclusive_and_transitions_guarded(engine: Engine, org: int) -> None:
    outbox.enqueue(engine, items(org, 5), NOW)
    a = outbox.claim(engine, "a", NOW, limit=3, lease=LEASE)
    b = outbox.claim(engine, "b", NOW, limit=3, lease=LEASE)
    assert len(a) == 3 and len(b) == 2
    assert not {r.id for r in a} & {r.id for r in b}
    assert outbox.claim(engine, "c", NOW, limit=3, lease=LEASE) == []
    row = a[0]
    # Only the claimer moves its row on.
    assert not outbox.begin_send(engine, row.id, "b", NOW, lease=LEASE)
    assert outbox.begin_send(engine, row.id, "a", NOW, lease=LEASE)
    assert not outbox.mark_sent(engine, row.id, "b", NOW, message_id="x", via="slack")
    assert outbox.mark_sent(engine, row.id, "a", NOW, message_id="m1", via="slack")
    sent = outbox.get(engine, row.id)
    assert sent is not None and (sent.state, sent.attempts, sent.message_id) == ("sent", 1, "m1")
    assert not outbox.mark_retry(engine, row.id, "a", NOW, at=NOW, error="late")


def test_expired_claim_before_sending_is_delivered_by_another_worker(
    engine: Engine, org: int
) -> None:
    outbox.enqueue(engine, items(org, 1), NOW)
    (row,) = outbox.claim(engine, "dead", NOW, limit=5, lease=LEASE)
    later = NOW + LEASE + timedelta(seconds=1)
    recovery = outbox.recover_expired(engine, later, lambda r: [])
    assert (recovery.requeued, recovery.uncertain) == (1, ())
    (again,) = outbox.claim(engine, "alive", later, limit=5, lease=LEASE)
    assert again.id == row.id and again.attempts == 0  # nothing was sent, nothing counted
    assert not outbox.begin_send(engine, row.id, "dead", later, lease=LEASE)


def test_expired_send_is_uncertain_and_alerted_once_never_resent(engine: Engine, org: int) -> None:
    outbox.enqueue(engine, items(org, 1), NOW)
    (row,) = outbox.claim(engine, "dead", NOW, limit=5, lease=LEASE)
    assert outbox.begin_send(engine, row.id, "dead", NOW, lease=LEASE)

    def alerts(r: OutboxRow) -> list[DueItem]:
        return [DueItem("alert", f"outbox:{r.id} to admin", f"uncertain#{r.resends}", r.org_id, {})]

    assert outbox.recover_expired(engine, NOW + LEASE / 2, alerts).uncertain == ()
    later = NOW + LEASE + timedelta(seconds=1)
    first = outbox.recover_expired(engine, later, alerts)
    second = outbox.recover_expired(engine, later + LEASE * 2, alerts)
    assert [r.id for r in first.uncertain] == [row.id] and second.uncertain == ()
    states = Counter((r.kind, r.state) for r in outbox.rows(engine))
    assert states == {("review", "uncertain"): 1, ("alert", "pending"): 1}
    assert outbox.claim(engine, "alive", later, limit=5, lease=LEASE)[0].kind == "alert"
    # The dead worker's late answer still settles it: it did arrive.
    assert outbox.mark_sent(engine, row.id, "dead", later, message_id="m", via="slack")
    # An operator may queue an uncertain or failed row again, once.
    outbox.enqueue(engine, items(org, 2), NOW)
    (other,) = [r for r in outbox.rows(engine) if r.subject == "persona:1"]
    outbox.claim(engine, "w", later, limit=10, lease=LEASE)
    outbox.mark_failed(engine, other.id, "w", later, error="gave up")
    requeued = outbox.resend(engine, other.id, later)
    assert requeued is not None and (requeued.state, requeued.attempts, requeued.resends) == (
        "pending",
        0,
        1,
    )
    assert outbox.resend(engine, other.id, later) is None


def test_snoozes_belong_to_one_cycle_and_a_review_clears_it(engine: Engine, org: int) -> None:
    store = PersonaStore(engine)
    from tests.scheduler_support import persona

    pid = store.save_persona(org, persona("snoozy", "s@x.example"), "t", now=NOW).id
    cycle, changed = outbox.snooze(engine, pid, "2030-05-30", NOW + timedelta(days=7), NOW)
    assert changed and cycle.snoozes == 1
    cycle, changed = outbox.snooze(engine, pid, "2030-05-30", NOW + timedelta(days=8), NOW)
    assert not changed and cycle.snoozed_until == NOW + timedelta(days=7)  # a double click
    later = NOW + timedelta(days=7, seconds=1)
    cycle, changed = outbox.snooze(engine, pid, "2030-05-30", later + timedelta(days=7), later)
    assert changed and cycle.snoozes == 2
    cycle, _ = outbox.snooze(engine, pid, "2030-08-28", later + timedelta(days=7), later)
    assert cycle.snoozes == 1  # a new cycle starts counting again
    outbox.enqueue(
        engine,
        [DueItem("reminder", f"persona:{pid}", "2030-08-28#1", org, {}, pid)],
        later,
    )
    assert outbox.clear_cycle(engine, pid, later) == 1
    assert outbox.review_cycles(engine, [pid]) == {}
    assert [r.state for r in outbox.rows(engine)] == ["cancelled"]


def test_concurrent_replicas_enqueue_and_claim_each_row_once(engine: Engine, org: int) -> None:
    """Four threads stand in for four replicas: each records the same 120 items (in its own
    shuffled order: enqueue sorts them) and then claims until nothing is left."""
    wanted = items(org, 120)
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def replica(name: str) -> None:
        try:
            mine = wanted[:]
            random.Random(name).shuffle(mine)
            barrier.wait()
            outbox.enqueue(engine, mine, NOW)
            got: list[int] = []
            while batch := outbox.claim(engine, name, NOW, limit=7, lease=LEASE):
                got.extend(r.id for r in batch)
            claimed[name] = got
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(f"r{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    everything = [row_id for got in claimed.values() for row_id in got]
    assert len(everything) == 120 and len(set(everything)) == 120
    assert len(outbox.rows(engine)) == 120


def test_owners_hear_before_the_admins_hear_about_them(engine: Engine, org: int) -> None:
    same_tick = [
        DueItem("digest", "org:1 to m", "2030-W09", org, {}),
        DueItem("escalation", "persona:1 to admin", "2030-02-14", org, {}),
        DueItem("review", "persona:1", "2030-02-14", org, {}),
    ]
    outbox.enqueue(engine, same_tick, NOW)  # inserted in key order: escalation before review
    order = [outbox.claim(engine, "w", NOW, limit=1, lease=LEASE)[0].kind for _ in range(3)]
    assert order == ["review", "escalation", "digest"]
