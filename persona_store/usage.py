"""Usage events: a non-blocking, batched writer and the basic counts read back from them.

Every command is one usage event. Writing one row per request with its own commit would cost
more than the command itself, so ``UsageRecorder`` keeps a bounded in-memory queue that a
background thread flushes in batches every few hundred milliseconds and on shutdown. While
the database is unreachable the batch stays queued and is retried with backoff; events are
only dropped when the bound is hit, and then counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, tuple_

from persona_store.models import Organization, Persona, UsageEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UsageRecord:
    """One command as it happened; ``ts`` is epoch milliseconds."""

    org_id: int
    ts: int
    platform: str
    user_id: str
    command: str
    channel: str | None = None
    persona_id: int | None = None
    query: str | None = None
    matched: bool = False
    score: float | None = None
    deal_id: str | None = None
    latency_ms: float | None = None


_RECORD_FIELDS = tuple(f.name for f in fields(UsageRecord))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _storable(text: str) -> str:
    """Text every database accepts: no NUL (PostgreSQL refuses it) and no unpaired surrogate
    (no UTF-8 encoder takes one), each of which would fail the whole batch forever."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def write_usage(engine: Engine, records: Sequence[UsageRecord]) -> None:
    """Insert records in one statement and one transaction."""
    if not records:
        return
    # Flat records: a shallow dict each (dataclasses.asdict deep-copies every value).
    rows = [{name: getattr(r, name) for name in _RECORD_FIELDS} for r in records]
    for row in rows:
        # Column limits: a longer value must not fail the whole batch (it would be retried
        # forever); platform ids over 128 characters are rare and stay recognisable cut.
        if row["query"] is not None:
            row["query"] = _storable(row["query"][:1000])
        row["user_id"] = _storable(row["user_id"][:128])
        if row["channel"] is not None:
            row["channel"] = _storable(row["channel"][:128])
        if row["deal_id"] is not None:
            row["deal_id"] = _storable(row["deal_id"][:128])
        row["command"] = _storable(row["command"][:32])
    with engine.begin() as conn:
        conn.execute(insert(UsageEvent), rows)


class UsageRecorder:
    """Bounded queue of usage records, written in batches by one background thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_queue: int = 100_000,
        batch_size: int = 500,
        flush_interval: float = 0.25,
        max_backoff: float = 5.0,
        writer: Callable[[Engine, Sequence[UsageRecord]], None] = write_usage,
    ) -> None:
        self._engine = engine
        self._writer = writer
        self._queue: deque[UsageRecord] = deque()
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._interval = flush_interval
        self._max_backoff = max_backoff
        self._cond = threading.Condition()
        self._closing = False
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dropped = 0
        self.write_failures = 0
        self._failing = 0  # consecutive failed writes: the current outage
        self.last_error: str | None = None

    @property
    def queued(self) -> int:
        return len(self._queue) + self._in_flight

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="usage-writer", daemon=True)
            self._thread.start()

    def record(self, record: UsageRecord) -> None:
        """Queue one record; never blocks on the database."""
        with self._cond:
            if len(self._queue) >= self._max_queue:
                self.dropped += 1
                return
            self._queue.append(record)
            if len(self._queue) >= self._batch_size:
                self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything queued so far; True when the queue drained within ``timeout``."""
        if self._thread is None:
            self._drain_inline()
            return not self._queue
        deadline = time.monotonic() + timeout
        with self._cond:
            # One wake-up for the writer, then wait for it to say a batch was written.
            # Waking it again on every wait would let concurrent flushes wake each other
            # (and the writer) in a loop while the database is away.
            self._cond.notify_all()
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Flush and stop the writer thread. True when nothing was left behind."""
        drained = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=max(timeout, 1.0))
            self._thread = None
        if self._queue:
            log.error("usage writer stopped with %d events not written", len(self._queue))
        return drained and not self._queue

    def _take_batch(self) -> list[UsageRecord]:
        batch: list[UsageRecord] = []
        while self._queue and len(batch) < self._batch_size:
            batch.append(self._queue.popleft())
        self._in_flight = len(batch)
        return batch

    def _write(self, batch: list[UsageRecord]) -> bool:
        try:
            self._writer(self._engine, batch)
        except Exception as exc:  # the database may be restarting: keep the batch
            self.write_failures += 1
            self._failing += 1
            self.last_error = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
            # One warning per outage, not one per retry: retries come every few hundred ms.
            level = logging.WARNING if self._failing == 1 else logging.DEBUG
            log.log(level, "usage events not written yet (%s); will retry", self.last_error)
            with self._cond:
                self._queue.extendleft(reversed(batch))
                self._in_flight = 0
            return False
        if self._failing:
            log.info("usage events written again after %d failed attempts", self._failing)
            self._failing = 0
        with self._cond:
            self.written += len(batch)
            self._in_flight = 0
            self._cond.notify_all()
        return True

    def _drain_inline(self) -> None:
        while self._queue:
            with self._cond:
                batch = self._take_batch()
            if not self._write(batch):
                return

    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._cond:
                if backoff:
                    # After a failure, retry only once the backoff has passed, however often
                    # a full queue or a flush wakes us: an outage must not become a loop of
                    # connection attempts.
                    retry_at = time.monotonic() + backoff
                    while not self._closing and (left := retry_at - time.monotonic()) > 0:
                        self._cond.wait(left)
                elif not self._queue and not self._closing:
                    self._cond.wait(self._interval)
                if self._closing:
                    return
                batch = self._take_batch()
            if not batch:
                continue
            if self._write(batch):
                backoff = 0.0
            else:
                backoff = min(self._max_backoff, max(0.1, backoff * 2))


def usage_counts(engine: Engine, org_id: int, since_ms: int) -> dict[str, Any]:
    """Events per command and lookups per persona since ``since_ms`` (the basic summary)."""
    with engine.connect() as conn:
        by_command = dict(
            conn.execute(
                select(UsageEvent.command, func.count())
                .where(UsageEvent.org_id == org_id, UsageEvent.ts >= since_ms)
                .group_by(UsageEvent.command)
            ).all()
        )
        by_persona = conn.execute(
            select(Persona.key, Persona.name, func.count(UsageEvent.id))
            .join(Persona, Persona.id == UsageEvent.persona_id)
            .where(UsageEvent.org_id == org_id, UsageEvent.ts >= since_ms)
            .group_by(Persona.key, Persona.name)
            .order_by(func.count(UsageEvent.id).desc(), Persona.key)
        ).all()
        unmatched = conn.execute(
            select(func.count())
            .select_from(UsageEvent)
            .where(
                UsageEvent.org_id == org_id,
                UsageEvent.ts >= since_ms,
                UsageEvent.command.in_(("lookup", "fit")),
                UsageEvent.matched.is_(False),
            )
        ).scalar_one()
        users = conn.execute(
            select(func.count(func.distinct(UsageEvent.user_id))).where(
                UsageEvent.org_id == org_id, UsageEvent.ts >= since_ms
            )
        ).scalar_one()
    return {
        "by_command": {str(k): int(v) for k, v in by_command.items()},
        "by_persona": [{"key": k, "name": n, "events": int(c)} for k, n, c in by_persona],
        "unmatched": int(unmatched),
        "users": int(users),
    }


def last_used_ms(engine: Engine, org_id: int) -> dict[int, int]:
    """The newest usage timestamp of each persona that was ever used."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(UsageEvent.persona_id, func.max(UsageEvent.ts))
            .where(UsageEvent.org_id == org_id, UsageEvent.persona_id.is_not(None))
            .group_by(UsageEvent.persona_id)
        ).all()
    return {int(pid): int(ts) for pid, ts in rows if pid is not None and ts is not None}


def usage_events_page(
    engine: Engine,
    org_id: int,
    start_ms: int,
    end_ms: int,
    after: tuple[int, int] | None,
    limit: int,
) -> list[tuple[Any, ...]]:
    """One page of an organization's raw events in ``[start_ms, end_ms)``, oldest first.

    Rows are ``(ts, platform, user_id, channel, command, persona_key, query, matched, score,
    deal_id, latency_ms, id)``; pass the last row's ``(ts, id)`` as ``after`` for the next
    page (keyset paging along the summary index, so every page costs the same).
    """
    query = (
        select(
            UsageEvent.ts,
            UsageEvent.platform,
            UsageEvent.user_id,
            UsageEvent.channel,
            UsageEvent.command,
            Persona.key,
            UsageEvent.query,
            UsageEvent.matched,
            UsageEvent.score,
            UsageEvent.deal_id,
            UsageEvent.latency_ms,
            UsageEvent.id,
        )
        .outerjoin(Persona, Persona.id == UsageEvent.persona_id)
        .where(UsageEvent.org_id == org_id, UsageEvent.ts >= start_ms, UsageEvent.ts < end_ms)
        .order_by(UsageEvent.ts, UsageEvent.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(UsageEvent.ts, UsageEvent.id) > tuple_(*after))
    with engine.connect() as conn:
        conn.execution_options(read_only=True)
        return [tuple(row) for row in conn.execute(query).all()]


def purge_usage(engine: Engine, older_than_ms: int, *, batch: int = 5000) -> int:
    """Delete events older than ``older_than_ms`` in small transactions; return how many.

    Each transaction deletes at most ``batch`` rows of one organization, found through the
    (organization, timestamp) index, so the table is never locked for long.
    """
    with engine.connect() as conn:
        org_ids = list(conn.scalars(select(Organization.id)))
    total = 0
    for org_id in org_ids:
        while True:
            oldest = (
                select(UsageEvent.id)
                .where(UsageEvent.org_id == org_id, UsageEvent.ts < older_than_ms)
                .limit(batch)
                .scalar_subquery()
            )
            with engine.begin() as conn:
                deleted = conn.execute(delete(UsageEvent).where(UsageEvent.id.in_(oldest))).rowcount
            total += deleted
            if deleted < batch:
                break
    return total


def recent_viewers(
    engine: Engine, org_id: int, persona_id: int, since_ms: int
) -> list[tuple[str, str]]:
    """The (platform, user id) pairs that looked a persona up since ``since_ms``."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(UsageEvent.platform, UsageEvent.user_id)
            .where(
                UsageEvent.org_id == org_id,
                UsageEvent.ts >= since_ms,
                UsageEvent.persona_id == persona_id,
                UsageEvent.command == "lookup",
            )
            .distinct()
            .order_by(UsageEvent.platform, UsageEvent.user_id)
        ).all()
    return [(str(platform), str(user)) for platform, user in rows]
