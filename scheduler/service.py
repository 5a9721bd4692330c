"""The scheduler of one process: APScheduler as the timer, the outbox as the record.

APScheduler 3 cannot share a job store between processes (its FAQ: duplicate or missed
runs), and its SQLAlchemy job store unpickles rows from the database; so each process keeps
its one job in an in-memory store and the job holds no state. Every ``tick_seconds`` it
reads what is due from the database and records it in the outbox (``scheduler.tick``);
several replicas ticking at once record each item once. The tick is idempotent and catches
up by itself, so the job runs with ``coalesce=True`` (runs missed while the loop was busy or
the machine asleep collapse into one) and ``misfire_grace_time=None`` (a late run is still
wanted, however late; APScheduler's default grace of one second would drop it). Downtime is
covered by one immediate tick at start: what fell due while the bot was down is recorded
once and sent once.

Delivery is a separate long-running task rather than a second interval job: it sleeps until
the earliest pending row is due (so a ``Retry-After`` of two seconds means about two
seconds, not the next poll), is woken at once when a tick records something, and finishes
the row in hand on shutdown, handing back the rows it claimed but did not start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import web
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import OperationalError

from bot.errors import TemporarilyUnavailable
from scheduler.config import SchedulerConfig, with_home_org
from scheduler.tick import TickResult, run_tick
from scheduler.worker import DeliveryWorker, register_metrics

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


class SchedulerService:
    def __init__(
        self, runtime: Runtime, config: SchedulerConfig, *, worker: DeliveryWorker | None = None
    ) -> None:
        self.runtime = runtime
        self.config = with_home_org(config, runtime.default_org_id)
        self.worker = worker or DeliveryWorker(runtime, self.config)
        register_metrics(runtime, self.worker)
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": MemoryJobStore()},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=config.rules.timezone,
        )
        self.ticks = 0
        runtime.metrics.counter_from(
            "persona_bot_scheduler_ticks",
            "Scheduler ticks run by this process (each decides what is due)",
            lambda: float(self.ticks),
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def tick(self) -> TickResult | None:
        """Record what is due now; wake the worker when something new was recorded."""
        runtime = self.runtime
        try:
            # Not ``runtime.db``: its few seconds' limit is for answering people; a tick over
            # many personas may take longer, and nobody is waiting for it.
            result = await asyncio.to_thread(
                run_tick, runtime.store, self.config.rules, runtime.clock()
            )
        except OperationalError as exc:
            log.warning("scheduler tick skipped, the database cannot be reached: %s", exc)
            return None
        except Exception:
            log.exception("scheduler tick failed")
            return None
        self.ticks += 1
        if result.queued:
            log.info(
                "queued %d: %s",
                len(result.queued),
                ", ".join(str(item.payload.get("label", item.kind)) for item in result.queued[:5])
                + (" ..." if len(result.queued) > 5 else ""),
            )
            self.wake()
        return result

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        # APScheduler logs every run of every job at INFO: two lines a minute per replica
        # that say nothing. Failures and missed runs are still logged (WARNING and up).
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
        self._stopping = False
        self.worker.stopping = False
        self.scheduler.add_job(
            self.tick,
            IntervalTrigger(seconds=self.config.tick_seconds),
            id="tick",
            name="decide what is due",
            next_run_time=datetime.now(UTC),  # at once: catch up on what fell due while down
            replace_existing=True,
        )
        self.scheduler.start()
        self._task = asyncio.create_task(self._deliver_forever(), name="outbox-worker")
        log.info(
            "scheduler running: tick every %g s, worker %s, delivering through %s",
            self.config.tick_seconds,
            self.worker.name,
            ", ".join(sorted(self.runtime.notifiers)) or "nothing yet (no chat platform)",
        )

    async def _deliver_forever(self) -> None:
        while not self._stopping:
            delay = self.config.poll_seconds
            try:
                await self.worker.run_until_idle()
                delay = await self.worker.seconds_until_due(self.config.poll_seconds)
            except TemporarilyUnavailable as exc:
                log.warning("outbox worker waiting for the database: %s", exc)
            except Exception:
                log.exception("outbox worker failed; trying again in %g s", delay)
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.01))
            self._wake.clear()

    async def stop(self) -> None:
        """Stop ticking, let the worker finish the row in hand, hand back the others."""
        self._stopping = True
        self.worker.stopping = True
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.wake()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.config.send_timeout + 5)
            except TimeoutError:
                self._task.cancel()
                log.error("outbox worker did not stop in time; its sends become uncertain")
            except Exception:
                log.exception("outbox worker stopped with an error")
            self._task = None
        try:
            await self.worker.release_claims()
        except Exception as exc:  # the lease expiry hands them back later anyway
            log.warning("could not hand back claimed outbox rows: %s", exc)


# Where ``persona-bot serve`` keeps its scheduler in the web app.
SERVICE = web.AppKey("scheduler", SchedulerService)
