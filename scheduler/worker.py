"""The delivery worker: claims outbox rows, sends each through the platforms' Notifiers, and
records the outcome.

Exactly once, as far as the platforms allow: a row is claimed by one worker (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL), marked ``sending`` right before the platform call and ``sent``
right after it. A worker that dies in between leaves a ``sending`` row; once its lease
expires any worker marks it ``uncertain`` and alerts the admins instead of sending it again
(Slack and Teams take no idempotency key, so a re-send could be a duplicate). Rows a dead
worker had only claimed are simply delivered by the next one. See ``persona_store.outbox``.

Who gets it: the row's address (a persona owner's email or user id, an admin, a channel) is
tried on each registered Notifier in turn (only the named platform when the address names
one). ``Undeliverable`` moves on to the next platform; when no platform knows the recipient,
the admins (or the escalation channel) get an alert and the row is ``alerted``; never
silently nowhere. A retryable ``DeliveryError`` (rate limit, 5xx, no connection) stops there,
so a message that may have arrived is not sent through a second platform, and is retried
with exponential backoff and jitter, not before the platform's ``Retry-After``; while a
platform is rate limited this worker sends nothing else through it. After ``max_attempts``
the row is ``failed``: ``/persona health`` and ``/metrics`` show it. A send the platform took
but never answered (the notifier's own timeout, or ``send_timeout``) may have arrived: like
the send of a worker that died, it becomes ``uncertain`` and the admins are alerted, and it
is not sent again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.errors import TemporarilyUnavailable
from bot.model import Reply
from bot.notify import DeliveryError, Notifier, Recipient, Undeliverable
from persona_store import outbox
from persona_store.outbox import DueItem, OutboxRow
from scheduler.config import SchedulerConfig, with_home_org
from scheduler.due import admin_addresses, describe
from scheduler.messages import reply_for

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

# Kinds addressed to the admins themselves: when they cannot be reached there is nobody
# left to alert, so such a row fails (and shows in health) instead.
ADMIN_KINDS = frozenset({"escalation", "alert"})
# Kinds whose undeliverable messages are recorded as failed without alerting the admins.
QUIET_KINDS = ADMIN_KINDS | {"change"}
MARK_SENT_TRIES = 5


def worker_name() -> str:
    """A name unique to this process, recorded on the rows it claims."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def backoff_delay(
    attempts: int,
    retry_after: float | None,
    *,
    base: float,
    cap: float,
    jitter: float,
    rng: random.Random,
) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt.

    The platform's ``Retry-After`` wins when given (never earlier); otherwise ``base``
    doubling per attempt, capped. Either is stretched by up to ``jitter`` (a fraction) at
    random, so that replicas and rows do not all come back at the same instant.
    """
    if retry_after is not None and retry_after > 0:
        delay = retry_after
    else:
        delay = min(cap, base * 2 ** max(0, attempts - 1))
    return delay * (1 + rng.uniform(0, jitter))


class _Unreachable(Exception):
    """No platform knows the recipient."""


class _Permanent(Exception):
    """A platform refused the message for good (and no other platform took it)."""


class _Uncertain(Exception):
    """The platform took the message and never answered: it may have arrived."""


class _Retry(Exception):
    def __init__(self, platform: str, error: DeliveryError) -> None:
        super().__init__(f"{platform}: {error}")
        self.platform = platform
        self.retry_after = error.retry_after


@dataclass
class WorkerStats:
    """Process-local counters, exported through ``/metrics``."""

    attempts: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    alerted: int = 0
    cancelled: int = 0
    uncertain: int = 0
    requeued: int = 0
    states: dict[str, int] = field(default_factory=dict)  # outbox rows per state, last seen


class DeliveryWorker:
    """Delivers outbox rows through ``runtime.notifiers``; safe to run in every replica."""

    def __init__(
        self,
        runtime: Runtime,
        config: SchedulerConfig,
        *,
        name: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.runtime = runtime
        self.config = with_home_org(config, runtime.default_org_id)
        self.name = name or worker_name()
        self.rng = rng or random.Random()
        self.stats = WorkerStats()
        self.stopping = False  # set on shutdown: finish the row in hand, start no other
        self._blocked: dict[str, datetime] = {}  # platform -> rate limited until

    # the loop ---------------------------------------------------------------------------

    async def run_once(self, now: datetime | None = None) -> int:
        """Recover expired leases, then claim and deliver one batch. Returns rows handled."""
        rt = self.runtime
        now = now or rt.clock()
        recovery = await rt.db(outbox.recover_expired, rt.engine, now, self._uncertain_alerts)
        self.stats.requeued += recovery.requeued
        for row in recovery.uncertain:
            self.stats.uncertain += 1
            log.error(
                "%s to %s may not have arrived: worker %s stopped while sending it; "
                "the admins are alerted, it is not re-sent",
                row.label,
                row.recipient_label,
                row.claimed_by,
            )
        if not rt.notifiers:
            return 0  # nothing can deliver: leave the rows pending for when a platform is set up
        if any(until > now for until in self._blocked.values()):
            return 0  # rate limited: claim nothing until the platform's Retry-After is over
        rows = await rt.db(
            outbox.claim,
            rt.engine,
            self.name,
            now,
            limit=self.config.batch_size,
            lease=self.config.lease,
        )
        for row in rows:
            if self.stopping:
                await rt.db(outbox.release, rt.engine, row.id, self.name, now, at=now)
                continue
            await self.deliver(row)
        return len(rows)

    async def run_until_idle(self, now: datetime | None = None, *, max_batches: int = 100) -> int:
        """Deliver batch after batch until nothing is due (or ``max_batches``)."""
        handled = 0
        for _ in range(max_batches):
            if self.stopping:
                break
            count = await self.run_once(now)
            handled += count
            if count == 0:
                break
        await self.refresh_counts()
        return handled

    async def refresh_counts(self) -> None:
        self.stats.states = await self.runtime.db(outbox.counts_by_state, self.runtime.engine)

    async def seconds_until_due(self, longest: float) -> float:
        """How long the loop may sleep: until the next pending row is due (or the platform's
        Retry-After is over, when that is later), at most ``longest``."""
        rt = self.runtime
        now = rt.clock()
        wake = now + timedelta(seconds=longest)
        earliest = await rt.db(outbox.earliest_due, rt.engine)
        if earliest is not None:
            blocked = max((u for u in self._blocked.values() if u > now), default=earliest)
            wake = min(wake, max(earliest, blocked))
        return max(0.0, (wake - now).total_seconds())

    async def release_claims(self) -> None:
        """On shutdown: hand back rows claimed but not yet sent, for the other replicas."""
        rt = self.runtime
        for row in await rt.db(outbox.rows, rt.engine, states=[outbox.CLAIMED]):
            if row.claimed_by == self.name:
                await rt.db(outbox.release, rt.engine, row.id, self.name, rt.clock(), at=rt.clock())

    # one row ----------------------------------------------------------------------------

    async def deliver(self, row: OutboxRow) -> None:
        rt, engine = self.runtime, self.runtime.engine
        now = rt.clock()
        try:
            reply, reason = await rt.db(reply_for, rt, row, now)
        except TemporarilyUnavailable:
            raise  # the row stays claimed; its lease hands it back
        except Exception as exc:  # a bug building this message: bounded like a failed send
            log.exception("could not build the %s", row.label)
            lease = self.config.lease
            if await rt.db(outbox.begin_send, engine, row.id, self.name, now, lease=lease):
                error = f"could not build the message: {type(exc).__name__}: {exc}"
                await self._retry(row, row.attempts + 1, error, None, None)
            return
        if reply is None:
            await rt.db(outbox.mark_cancelled, engine, row.id, self.name, now, reason=reason)
            self.stats.cancelled += 1
            log.info("%s cancelled: %s", row.label, reason)
            return
        to = row.payload.get("to")
        candidates = self._candidates(to)
        blocked = max((self._blocked.get(p, now) for p, _ in candidates), default=now)
        if blocked > now:
            await rt.db(outbox.release, engine, row.id, self.name, now, at=blocked)
            return
        if not await rt.db(
            outbox.begin_send, engine, row.id, self.name, now, lease=self.config.lease
        ):
            log.warning("%s: claim lost before sending (lease expired)", row.label)
            return
        self.stats.attempts += 1
        attempts = row.attempts + 1
        try:
            if not to:
                raise _Unreachable("nobody to send it to")
            message_id, via = await self._send(row, to, candidates, reply)
        except _Unreachable as exc:
            await self._unreachable(row, str(exc), no_recipient=not to)
        except _Retry as exc:
            await self._retry(row, attempts, str(exc), exc.retry_after, exc.platform)
        except _Uncertain as exc:
            await self._uncertain(row, str(exc))
        except _Permanent as exc:
            await self._fail(row, str(exc))
        except Exception as exc:  # a bug in a notifier: retry, bounded like any failure
            log.exception("sending %s failed unexpectedly", row.label)
            await self._retry(row, attempts, f"{type(exc).__name__}: {exc}", None, None)
        else:
            await self._record_sent(row, message_id, via)

    def _candidates(self, to: object) -> list[tuple[str, Notifier]]:
        notifiers = sorted(self.runtime.notifiers.items())
        platform = to.get("platform") if isinstance(to, dict) else None
        if platform:
            return [(name, n) for name, n in notifiers if name == platform]
        return notifiers

    async def _send(
        self,
        row: OutboxRow,
        to: dict[str, str],
        candidates: Sequence[tuple[str, Notifier]],
        reply: Reply,
    ) -> tuple[str, str]:
        refusals: list[str] = []
        permanent = False
        for platform, notifier in candidates:
            recipient = Recipient(
                org_id=row.org_id,
                user_id=to.get("user_id"),
                email=to.get("email"),
                channel=to.get("channel"),
                platform=platform,  # type: ignore[arg-type]
            )
            try:
                message_id = await asyncio.wait_for(
                    notifier.send(recipient, reply), timeout=self.config.send_timeout
                )
            except Undeliverable as exc:
                refusals.append(f"{platform}: {exc}")
            except DeliveryError as exc:
                if exc.uncertain:
                    raise _Uncertain(f"{platform}: {exc}") from exc
                if exc.retryable:
                    raise _Retry(platform, exc) from exc
                refusals.append(f"{platform}: {exc}")
                permanent = True
            except TimeoutError as exc:
                raise _Uncertain(
                    f"{platform}: no answer within {self.config.send_timeout:g} s"
                ) from exc
            else:
                return str(message_id), platform
        if not candidates:
            refusals.append(f"no {to.get('platform') or 'chat'} notifier is configured")
        if permanent:
            raise _Permanent("; ".join(refusals))
        raise _Unreachable("; ".join(refusals))

    async def _record_sent(self, row: OutboxRow, message_id: str, via: str) -> None:
        rt = self.runtime
        # The message is out: recording it must survive a database blip, or the row would
        # end up uncertain although we know it arrived.
        for attempt in range(MARK_SENT_TRIES):
            try:
                ok = await rt.db(
                    outbox.mark_sent,
                    rt.engine,
                    row.id,
                    self.name,
                    rt.clock(),
                    message_id=message_id,
                    via=via,
                )
            except TemporarilyUnavailable:
                if attempt == MARK_SENT_TRIES - 1:
                    log.error("%s was sent (%s) but could not be recorded", row.label, message_id)
                    return
                await asyncio.sleep(0.5 * 2**attempt)
                continue
            if not ok:
                # Either an earlier try did commit (its answer was lost), or the row was
                # handed to an operator's resend meanwhile.
                now_row = await rt.db(outbox.get, rt.engine, row.id)
                ok = now_row is not None and now_row.message_id == message_id
            if ok:
                self.stats.sent += 1
                log.info("%s sent to %s via %s", row.label, row.recipient_label, via)
            else:
                log.warning("%s was sent after its claim had been taken over", row.label)
            return

    async def _retry(
        self,
        row: OutboxRow,
        attempts: int,
        error: str,
        retry_after: float | None,
        platform: str | None,
    ) -> None:
        rt = self.runtime
        now = rt.clock()
        if platform is not None and retry_after:
            self._blocked[platform] = now + timedelta(seconds=retry_after)
        if attempts >= self.config.max_attempts:
            await self._fail(row, f"gave up after {attempts} attempts: {error}")
            return
        delay = backoff_delay(
            attempts,
            retry_after,
            base=self.config.backoff_base,
            cap=self.config.backoff_cap,
            jitter=self.config.jitter,
            rng=self.rng,
        )
        at = now + timedelta(seconds=delay)
        await rt.db(outbox.mark_retry, rt.engine, row.id, self.name, now, at=at, error=error)
        self.stats.retried += 1
        log.warning("%s: %s; retry %d in %.1f s", row.label, error, attempts + 1, delay)

    async def _fail(self, row: OutboxRow, error: str) -> None:
        rt = self.runtime
        await rt.db(outbox.mark_failed, rt.engine, row.id, self.name, rt.clock(), error=error)
        self.stats.failed += 1
        log.error("%s to %s failed: %s", row.label, row.recipient_label, error)

    async def _uncertain(self, row: OutboxRow, error: str) -> None:
        rt = self.runtime
        await rt.db(
            outbox.mark_uncertain,
            rt.engine,
            row.id,
            self.name,
            rt.clock(),
            error=error,
            alerts=self._uncertain_alerts(row, error),
        )
        self.stats.uncertain += 1
        log.error(
            "%s to %s may not have arrived (%s); the admins are alerted, it is not re-sent",
            row.label,
            row.recipient_label,
            error,
        )

    async def _unreachable(self, row: OutboxRow, error: str, *, no_recipient: bool) -> None:
        rt = self.runtime
        alerts = (
            []
            if row.kind in QUIET_KINDS
            else self._alerts(row, "no-recipient" if no_recipient else "unreachable", error)
        )
        if not alerts:
            home = self.config.rules.home_org
            if row.kind in QUIET_KINDS:
                hint = ""
            elif home is not None and row.org_id != home:
                hint = (
                    "; this organization has no admins to tell (the configured ones belong "
                    "to the home organization)"
                )
            else:
                hint = "; set PERSONA_BOT_ADMINS or PERSONA_BOT_ESCALATION_CHANNEL to be told"
            await self._fail(row, f"{error}{hint}")
            return
        await rt.db(
            outbox.mark_alerted,
            rt.engine,
            row.id,
            self.name,
            rt.clock(),
            error=error,
            alerts=alerts,
        )
        self.stats.alerted += 1
        log.warning(
            "%s could not reach %s (%s): admins alerted", row.label, row.recipient_label, error
        )

    def _uncertain_alerts(self, row: OutboxRow, detail: str | None = None) -> list[DueItem]:
        if row.kind == "alert":
            return []
        detail = detail or row.last_error or f"worker {row.claimed_by}"
        return self._alerts(row, "uncertain", detail)

    def _alerts(self, row: OutboxRow, reason: str, detail: str) -> list[DueItem]:
        payload = row.payload
        return [
            DueItem(
                "alert",
                f"outbox:{row.id} to {describe(to)}",
                f"{reason}#{row.resends}",
                row.org_id,
                {
                    "to": to,
                    "label": f"alert about the {row.label}",
                    "reason": reason,
                    "detail": detail[:500],
                    "about_id": row.id,
                    "about_label": row.label,
                    "about_to": row.recipient_label,
                    "persona_key": payload.get("persona_key"),
                    "persona_name": payload.get("persona_name"),
                },
                row.persona_id,
            )
            for to in admin_addresses(self.config.rules, row.org_id)
        ]


def register_metrics(runtime: Runtime, worker: DeliveryWorker) -> None:
    """Outbox gauges (rows per state, as last counted) and this process's counters."""
    m, stats = runtime.metrics, worker.stats
    for state in ("pending", "sending", "sent", "failed", "alerted", "uncertain"):
        m.gauge_from(
            f"persona_bot_outbox_rows_{state}",
            f"Outbox rows in state {state} (all replicas, as last counted)",
            lambda state=state: float(stats.states.get(state, 0)),  # type: ignore[misc]
        )
    counters = {
        "attempts": "Deliveries attempted by this process",
        "sent": "Messages delivered by this process",
        "retried": "Deliveries that failed and will be retried",
        "failed": "Deliveries given up (bounded attempts or a permanent error)",
        "alerted": "Recipients no platform could reach (the admins were alerted)",
        "uncertain": "Sends that may not have arrived (no answer, or a dead worker)",
    }
    for name, doc in counters.items():
        m.counter_from(
            f"persona_bot_outbox_{name}",
            doc,
            lambda name=name: float(getattr(stats, name)),  # type: ignore[misc]
        )
