"""The outbox: every proactive message (review nudge, reminder, escalation, alert, digest)
recorded once, with its delivery state, so that nothing is sent twice and nothing is lost.

Each row has a unique key (kind, subject, period), e.g. ("review", "persona:7",
"2027-03-15"): the scheduler of every replica may decide the same thing is due, but
``enqueue`` inserts with ``ON CONFLICT DO NOTHING`` in a stable key order, so the row exists
once and concurrent replicas cannot deadlock on each other's inserts.

A row moves ``pending -> claimed -> sending -> sent``. ``claim`` takes due pending rows with
``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so each row goes to exactly one worker;
SQLite has no row locks, but every transaction there starts with ``BEGIN IMMEDIATE`` (see
``persona_store.db``), which serialises claims; one process per SQLite file is the supported
set-up. Every transition is a guarded UPDATE (``WHERE state = ... AND claimed_by = me``), so
a worker whose lease was taken over can never overwrite the new owner's result.

Leases and the send window: a worker commits ``sending`` (and one attempt) immediately before
it calls the platform, and ``sent`` immediately after. When a lease expires:

* a row still ``claimed`` was never handed to a platform: it goes back to ``pending`` and is
  delivered normally;
* a row in ``sending`` may or may not have reached the platform (the worker died during the
  call or before it could record the result). Neither Slack nor Teams takes an idempotency
  key for a post, so re-sending could deliver it twice. It becomes ``uncertain`` and the
  admins get an alert naming it (``persona-bot nudges --resend ID`` sends it again if the
  recipient says it never arrived). Nothing is re-sent blindly and nothing is lost silently.
  A send that the platform took but never answered (a timeout) is the same case, recorded at
  once by its worker (``mark_uncertain``).

Other end states: ``failed`` (gave up after the bounded attempts, or a permanent platform
error), ``alerted`` (the recipient is unreachable on every platform; the admins were told),
``cancelled`` (no longer due, e.g. the persona was reviewed before its reminder went out).
Every function takes ``now`` explicitly so tests can walk time with an injectable clock.

The review-cycle state of a persona (snoozes) lives in ``review_state``, keyed by the cycle's
due date, so a review (which moves the due date) starts a fresh cycle by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    case,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from persona_store.health import DeliveryProblem
from persona_store.models import Base

PENDING = "pending"
CLAIMED = "claimed"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
ALERTED = "alerted"
UNCERTAIN = "uncertain"
CANCELLED = "cancelled"
STATES = (PENDING, CLAIMED, SENDING, SENT, FAILED, ALERTED, UNCERTAIN, CANCELLED)
# Kinds whose rows belong to a persona's review cycle (cancelled when it is reviewed).
CYCLE_KINDS = ("review", "reminder", "escalation")
INSERT_CHUNK = 500  # rows per INSERT statement (SQLite limits bound parameters)


class OutboxEntry(Base):
    """One proactive message and its delivery state."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("kind", "subject", "period"),
        # The claim scan: due pending rows, oldest first.
        Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(400))
    period: Mapped[str] = mapped_column(String(40))
    persona_id: Mapped[int | None] = mapped_column(
        ForeignKey("persona.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    resends: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    lease_until: Mapped[datetime | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    # What to send and to whom: {"to": {"user_id"|"email"|"channel": ..., "platform": ...},
    # "label": "review nudge for Finance Fiona", ...kind-specific fields}.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    message_id: Mapped[str | None] = mapped_column(String(200))
    sent_via: Mapped[str | None] = mapped_column(String(16))
    sent_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class ReviewState(Base):
    """Snoozes in the current review cycle of a persona (the cycle is its due date)."""

    __tablename__ = "review_state"

    persona_id: Mapped[int] = mapped_column(
        ForeignKey("persona.id", ondelete="CASCADE"), primary_key=True
    )
    due_on: Mapped[str] = mapped_column(String(10))  # ISO date of the cycle's due date
    snoozed_until: Mapped[datetime | None] = mapped_column()
    snoozes: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column()


T = cast(Table, OutboxEntry.__table__)
RS = cast(Table, ReviewState.__table__)
# Among rows due at the same moment (one tick after downtime), the owner hears before the
# admins hear about the owner; keys alone would sort escalations before reviews.
CLAIM_ORDER = case(
    {"review": 0, "reminder": 1, "alert": 2, "escalation": 3}, value=T.c.kind, else_=4
)


@dataclass(frozen=True)
class DueItem:
    """Something the scheduler decided is due: one future outbox row."""

    kind: str
    subject: str
    period: str
    org_id: int
    payload: Mapping[str, Any] = field(default_factory=dict)
    persona_id: int | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.subject, self.period)


@dataclass(frozen=True)
class OutboxRow:
    """An outbox row as the worker and the CLI see it."""

    id: int
    org_id: int
    kind: str
    subject: str
    period: str
    persona_id: int | None
    state: str
    attempts: int
    resends: int
    payload: Mapping[str, Any]
    next_attempt_at: datetime
    lease_until: datetime | None
    claimed_by: str | None
    last_error: str | None
    message_id: str | None
    sent_via: str | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.subject, self.period)

    @property
    def label(self) -> str:
        return str(self.payload.get("label") or f"{self.kind} {self.subject} {self.period}")

    @property
    def recipient_label(self) -> str:
        to = self.payload.get("to") or {}
        who = to.get("user_id") or to.get("email") or to.get("channel")
        return str(who) if who else "nobody"


@dataclass(frozen=True)
class ReviewCycle:
    """The snooze state of a persona's review cycle."""

    persona_id: int
    due_on: str
    snoozed_until: datetime | None
    snoozes: int


def _row(mapping: Any) -> OutboxRow:
    return OutboxRow(**{name: mapping[name] for name in OutboxRow.__dataclass_fields__})


_SELECT_ROWS = select(*(T.c[name] for name in OutboxRow.__dataclass_fields__))


def _select_rows() -> Any:
    return _SELECT_ROWS  # statements are immutable: built once, refined per query


def _insert_statement(conn: Connection) -> Any:
    # Both dialects spell "insert unless the key exists" the same way in SQLAlchemy.
    if conn.dialect.name == "postgresql":
        return postgresql.insert(T)
    return sqlite.insert(T)


def _insert_items(conn: Connection, items: Iterable[DueItem], now: datetime) -> list[DueItem]:
    # One key order for everyone: two replicas inserting overlapping sets take the unique
    # index locks in the same order, so they wait for each other instead of deadlocking.
    ordered = sorted({item.key: item for item in items}.values(), key=lambda i: i.key)
    inserted: set[tuple[str, str, str]] = set()
    for start in range(0, len(ordered), INSERT_CHUNK):
        chunk = ordered[start : start + INSERT_CHUNK]
        statement = (
            _insert_statement(conn)
            .values(
                [
                    {
                        "org_id": item.org_id,
                        "kind": item.kind,
                        "subject": item.subject,
                        "period": item.period,
                        "persona_id": item.persona_id,
                        "state": PENDING,
                        "attempts": 0,
                        "resends": 0,
                        "next_attempt_at": now,
                        "payload": dict(item.payload),
                        "created_at": now,
                        "updated_at": now,
                    }
                    for item in chunk
                ]
            )
            .on_conflict_do_nothing(index_elements=["kind", "subject", "period"])
            .returning(T.c.kind, T.c.subject, T.c.period)
        )
        inserted |= {tuple(r) for r in conn.execute(statement)}
    return [item for item in ordered if item.key in inserted]


def enqueue(engine: Engine, items: Iterable[DueItem], now: datetime) -> list[DueItem]:
    """Record due items; those already recorded are left alone. Returns the new ones."""
    items = list(items)
    if not items:
        return []
    with engine.begin() as conn:
        return _insert_items(conn, items, now)


def claim(
    engine: Engine, worker: str, now: datetime, *, limit: int, lease: timedelta
) -> list[OutboxRow]:
    """Take up to ``limit`` due pending rows for ``worker``; no other worker gets them."""
    with engine.begin() as conn:
        ids = list(
            conn.scalars(
                select(T.c.id)
                .where(T.c.state == PENDING, T.c.next_attempt_at <= now)
                .order_by(T.c.next_attempt_at, CLAIM_ORDER, T.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            return []
        conn.execute(
            update(T)
            .where(T.c.id.in_(ids), T.c.state == PENDING)
            .values(state=CLAIMED, claimed_by=worker, lease_until=now + lease, updated_at=now)
        )
        rows = conn.execute(
            _select_rows()
            .where(T.c.id.in_(ids), T.c.state == CLAIMED, T.c.claimed_by == worker)
            .order_by(T.c.next_attempt_at, CLAIM_ORDER, T.c.id)
        ).mappings()
        return [_row(r) for r in rows]


def _guarded(
    engine: Engine, row_id: int, worker: str, states: Sequence[str], **values: Any
) -> bool:
    with engine.begin() as conn:
        result = conn.execute(
            update(T)
            .where(T.c.id == row_id, T.c.claimed_by == worker, T.c.state.in_(states))
            .values(**values)
        )
        return bool(result.rowcount)


def begin_send(
    engine: Engine, row_id: int, worker: str, now: datetime, *, lease: timedelta
) -> bool:
    """Record that ``worker`` hands the row to a platform now (one more attempt).

    False when the claim was lost (its lease expired and another worker took the row).
    """
    return _guarded(
        engine,
        row_id,
        worker,
        (CLAIMED,),
        state=SENDING,
        attempts=T.c.attempts + 1,
        lease_until=now + lease,
        updated_at=now,
    )


def mark_sent(
    engine: Engine, row_id: int, worker: str, now: datetime, *, message_id: str, via: str
) -> bool:
    """The platform accepted the message. Also settles a row marked uncertain meanwhile."""
    return _guarded(
        engine,
        row_id,
        worker,
        (SENDING, UNCERTAIN),
        state=SENT,
        sent_at=now,
        message_id=message_id[:200],
        sent_via=via[:16],
        lease_until=None,
        last_error=None,
        updated_at=now,
    )


def mark_retry(
    engine: Engine, row_id: int, worker: str, now: datetime, *, at: datetime, error: str
) -> bool:
    """A failure that may pass: try again at ``at``."""
    return _guarded(
        engine,
        row_id,
        worker,
        (SENDING,),
        state=PENDING,
        next_attempt_at=at,
        last_error=error[:2000],
        claimed_by=None,
        lease_until=None,
        updated_at=now,
    )


def mark_failed(engine: Engine, row_id: int, worker: str, now: datetime, *, error: str) -> bool:
    """Give up: shown in health and metrics until someone resends it."""
    return _guarded(
        engine,
        row_id,
        worker,
        (CLAIMED, SENDING),
        state=FAILED,
        last_error=error[:2000],
        lease_until=None,
        updated_at=now,
    )


def mark_cancelled(engine: Engine, row_id: int, worker: str, now: datetime, *, reason: str) -> bool:
    """No longer due (reviewed, archived, snoozed again): nothing to send."""
    return _guarded(
        engine,
        row_id,
        worker,
        (CLAIMED,),
        state=CANCELLED,
        last_error=reason[:2000],
        lease_until=None,
        updated_at=now,
    )


def release(engine: Engine, row_id: int, worker: str, now: datetime, *, at: datetime) -> bool:
    """Hand a claimed row back untouched (no attempt counted), due again at ``at``."""
    return _guarded(
        engine,
        row_id,
        worker,
        (CLAIMED,),
        state=PENDING,
        next_attempt_at=at,
        claimed_by=None,
        lease_until=None,
        updated_at=now,
    )


def mark_alerted(
    engine: Engine,
    row_id: int,
    worker: str,
    now: datetime,
    *,
    error: str,
    alerts: Sequence[DueItem],
) -> bool:
    """The recipient is unreachable everywhere: record it and queue the admins' alerts in
    the same transaction, so the alert cannot be lost between the two."""
    return _settle_with_alerts(engine, row_id, worker, now, ALERTED, error, alerts)


def mark_uncertain(
    engine: Engine,
    row_id: int,
    worker: str,
    now: datetime,
    *,
    error: str,
    alerts: Sequence[DueItem],
) -> bool:
    """The platform took the message and never answered (a timeout): it may have arrived.
    Like a send whose worker died, the row is not re-sent; the admins' alerts are queued in
    the same transaction."""
    return _settle_with_alerts(engine, row_id, worker, now, UNCERTAIN, error, alerts)


def _settle_with_alerts(
    engine: Engine,
    row_id: int,
    worker: str,
    now: datetime,
    state: str,
    error: str,
    alerts: Sequence[DueItem],
) -> bool:
    """Move a row this worker is sending to ``state`` and queue ``alerts``, atomically."""
    with engine.begin() as conn:
        result = conn.execute(
            update(T)
            .where(T.c.id == row_id, T.c.claimed_by == worker, T.c.state == SENDING)
            .values(state=state, last_error=error[:2000], lease_until=None, updated_at=now)
        )
        if not result.rowcount:
            return False
        _insert_items(conn, alerts, now)
        return True


@dataclass(frozen=True)
class Recovery:
    requeued: int  # claimed rows whose worker vanished before sending: delivered normally
    uncertain: tuple[OutboxRow, ...]  # rows whose worker vanished while sending


def recover_expired(
    engine: Engine, now: datetime, make_alerts: Callable[[OutboxRow], Sequence[DueItem]]
) -> Recovery:
    """Apply the lease policy (see the module docstring) to rows whose lease expired."""
    with engine.begin() as conn:
        requeued = conn.execute(
            update(T)
            .where(T.c.state == CLAIMED, T.c.lease_until < now)
            .values(state=PENDING, claimed_by=None, lease_until=None, updated_at=now)
        ).rowcount
        expired = [
            _row(r)
            for r in conn.execute(
                _select_rows()
                .where(T.c.state == SENDING, T.c.lease_until < now)
                .order_by(T.c.id)
                .with_for_update(skip_locked=True)
            ).mappings()
        ]
        uncertain: list[OutboxRow] = []
        alerts: list[DueItem] = []
        for row in expired:
            changed = conn.execute(
                update(T)
                .where(T.c.id == row.id, T.c.state == SENDING, T.c.lease_until < now)
                .values(
                    state=UNCERTAIN,
                    last_error=(
                        f"worker {row.claimed_by} stopped while sending (attempt {row.attempts})"
                    ),
                    updated_at=now,
                )
            ).rowcount
            if changed:
                uncertain.append(row)
                alerts.extend(make_alerts(row))
        _insert_items(conn, alerts, now)
    return Recovery(int(requeued or 0), tuple(uncertain))


def resend(engine: Engine, row_id: int, now: datetime) -> OutboxRow | None:
    """Queue a failed, uncertain or alerted row again with fresh attempts (an operator's
    decision after checking with the recipient). None when the row is not in such a state."""
    with engine.begin() as conn:
        changed = conn.execute(
            update(T)
            .where(T.c.id == row_id, T.c.state.in_((FAILED, UNCERTAIN, ALERTED)))
            .values(
                state=PENDING,
                attempts=0,
                resends=T.c.resends + 1,
                next_attempt_at=now,
                claimed_by=None,
                lease_until=None,
                updated_at=now,
            )
        ).rowcount
        if not changed:
            return None
        return _row(conn.execute(_select_rows().where(T.c.id == row_id)).mappings().one())


def get(engine: Engine, row_id: int) -> OutboxRow | None:
    with engine.connect() as conn:
        found = conn.execute(_select_rows().where(T.c.id == row_id)).mappings().first()
    return _row(found) if found else None


def rows(
    engine: Engine,
    *,
    kinds: Sequence[str] | None = None,
    states: Sequence[str] | None = None,
    persona_ids: Sequence[int] | None = None,
    since: datetime | None = None,
) -> list[OutboxRow]:
    """Rows matching every given filter, oldest first."""
    query = _select_rows()
    if kinds is not None:
        query = query.where(T.c.kind.in_(kinds))
    if states is not None:
        query = query.where(T.c.state.in_(states))
    if persona_ids is not None:
        query = query.where(T.c.persona_id.in_(persona_ids))
    if since is not None:
        query = query.where(T.c.created_at >= since)
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(query.order_by(T.c.id)).mappings()]


def existing(
    engine: Engine, keys: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], OutboxRow]:
    """The rows already recorded under any of ``keys`` (looked up on the unique index)."""
    wanted = sorted(set(keys))
    found: dict[tuple[str, str, str], OutboxRow] = {}
    if not wanted:
        return found
    with engine.connect() as conn:
        for start in range(0, len(wanted), INSERT_CHUNK):
            chunk = wanted[start : start + INSERT_CHUNK]
            # Three IN lists walk the unique index on SQLite and PostgreSQL alike (a row-value
            # IN scans it on SQLite); the few extra rows of the cross product are dropped.
            query = _select_rows().where(
                T.c.kind.in_(sorted({k for k, _, _ in chunk})),
                T.c.subject.in_(sorted({s for _, s, _ in chunk})),
                T.c.period.in_(sorted({p for _, _, p in chunk})),
            )
            keep = set(chunk)
            for r in conn.execute(query).mappings():
                row = _row(r)
                if row.key in keep:
                    found[row.key] = row
    return found


def earliest_due(engine: Engine) -> datetime | None:
    """When the next pending row becomes due (None when nothing is pending)."""
    with engine.connect() as conn:
        return conn.scalar(select(func.min(T.c.next_attempt_at)).where(T.c.state == PENDING))


def counts_by_state(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        found = {
            str(state): int(n)
            for state, n in conn.execute(select(T.c.state, func.count()).group_by(T.c.state))
        }
    return {state: int(found.get(state, 0)) for state in STATES}


def delivery_problems(
    engine: Engine,
    org_id: int,
    now: datetime,
    *,
    within: timedelta = timedelta(days=30),
    stuck_after: timedelta = timedelta(minutes=15),
) -> list[DeliveryProblem]:
    """What ``/persona health`` reports: rows that failed, may not have arrived, could not
    reach their recipient (recently), or have waited long past their time (nobody is
    delivering: no scheduler running, or no chat platform configured)."""
    with engine.connect() as conn:
        found = conn.execute(
            _select_rows()
            .where(
                T.c.org_id == org_id,
                (T.c.state.in_((FAILED, UNCERTAIN, ALERTED)) & (T.c.updated_at >= now - within))
                | ((T.c.state == PENDING) & (T.c.next_attempt_at < now - stuck_after)),
            )
            .order_by(T.c.updated_at.desc(), T.c.id.desc())
            .limit(50)
        ).mappings()
        problems = []
        for r in found:
            row = _row(r)
            error = row.last_error
            if row.state == PENDING:
                error = f"waiting since {row.next_attempt_at:%Y-%m-%d %H:%M} UTC" + (
                    f"; last error: {row.last_error}" if row.last_error else ""
                )
            problems.append(
                DeliveryProblem(
                    row_id=row.id,
                    kind=row.kind,
                    state=row.state,
                    label=row.label,
                    recipient=row.recipient_label,
                    error=error,
                    since=row.updated_at,
                )
            )
    return problems


# review cycles ---------------------------------------------------------------------------


def review_cycles(engine: Engine, persona_ids: Iterable[int]) -> dict[int, ReviewCycle]:
    ids = sorted(set(persona_ids))
    if not ids:
        return {}
    table = RS
    out: dict[int, ReviewCycle] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), INSERT_CHUNK):
            for r in conn.execute(
                select(table).where(table.c.persona_id.in_(ids[start : start + INSERT_CHUNK]))
            ).mappings():
                out[r["persona_id"]] = ReviewCycle(
                    r["persona_id"], r["due_on"], r["snoozed_until"], r["snoozes"]
                )
    return out


def snooze(
    engine: Engine, persona_id: int, due_on: str, until: datetime, now: datetime
) -> tuple[ReviewCycle, bool]:
    """Snooze the cycle ``due_on`` of a persona until ``until``. Returns the cycle and
    whether this call snoozed it (False: it was already snoozed past ``now``, e.g. a double
    click, and nothing changed)."""
    table = RS
    for _ in range(2):  # a concurrent first snooze may insert the row under us
        try:
            with engine.begin() as conn:
                current = (
                    conn.execute(
                        select(table).where(table.c.persona_id == persona_id).with_for_update()
                    )
                    .mappings()
                    .first()
                )
                if current is None:
                    conn.execute(
                        table.insert().values(
                            persona_id=persona_id,
                            due_on=due_on,
                            snoozed_until=until,
                            snoozes=1,
                            updated_at=now,
                        )
                    )
                    return ReviewCycle(persona_id, due_on, until, 1), True
                if (
                    current["due_on"] == due_on
                    and current["snoozed_until"] is not None
                    and current["snoozed_until"] > now
                ):
                    return (
                        ReviewCycle(
                            persona_id, due_on, current["snoozed_until"], current["snoozes"]
                        ),
                        False,
                    )
                snoozes = current["snoozes"] + 1 if current["due_on"] == due_on else 1
                conn.execute(
                    update(table)
                    .where(table.c.persona_id == persona_id)
                    .values(due_on=due_on, snoozed_until=until, snoozes=snoozes, updated_at=now)
                )
                return ReviewCycle(persona_id, due_on, until, snoozes), True
        except IntegrityError:
            continue
    raise RuntimeError(f"could not snooze persona {persona_id}")  # pragma: no cover


def clear_cycle(engine: Engine, persona_id: int, now: datetime) -> int:
    """A review ends the cycle: forget its snoozes and cancel its queued messages.
    Returns how many queued messages were cancelled."""
    with engine.begin() as conn:
        conn.execute(delete(RS).where(RS.c.persona_id == persona_id))
        return int(
            conn.execute(
                update(T)
                .where(
                    T.c.persona_id == persona_id,
                    T.c.kind.in_(CYCLE_KINDS),
                    T.c.state == PENDING,
                )
                .values(state=CANCELLED, last_error="reviewed", updated_at=now)
            ).rowcount
            or 0
        )
