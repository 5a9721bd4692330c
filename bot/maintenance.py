"""Daily housekeeping of the web process: purge usage events past their retention.

``persona-bot serve`` starts one small asyncio task that, shortly after start and then every
day, deletes usage events older than ``PERSONA_BOT_USAGE_RETENTION_DAYS`` (default 730) in
small batches off the event loop. Every replica may run it: deleting what is already gone
is harmless. ``persona-bot purge-usage`` does the same once, from the command line.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from aiohttp import web

from bot.runtime import Runtime
from bot.tasks import stop_tasks
from persona_store.usage import purge_usage

log = logging.getLogger(__name__)

PURGE_EVERY = 24 * 3600.0
FIRST_PURGE_AFTER = 60.0  # let the server settle before the first purge
PURGE_TASK = web.AppKey("usage_purge_task", asyncio.Task[None])


def retention_cutoff_ms(now: datetime, days: int) -> int:
    return int((now - timedelta(days=days)).timestamp() * 1000)


def purge_now(runtime: Runtime) -> int:
    """Delete the events older than the retention period; return how many (blocking)."""
    cutoff = retention_cutoff_ms(runtime.clock(), runtime.settings.usage_retention_days)
    deleted = purge_usage(runtime.engine, cutoff)
    if deleted:
        log.info(
            "purged %d usage events older than %d days",
            deleted,
            runtime.settings.usage_retention_days,
        )
    return deleted


async def purge_forever(
    runtime: Runtime, *, first_after: float = FIRST_PURGE_AFTER, every: float = PURGE_EVERY
) -> None:
    """Purge after ``first_after`` seconds and then every ``every`` seconds, until cancelled."""
    await asyncio.sleep(first_after)
    while True:
        try:
            await asyncio.to_thread(purge_now, runtime)
        except Exception as exc:  # the database may be away: try again tomorrow
            log.warning("usage purge failed (%s: %s); next try in a day", type(exc).__name__, exc)
        await asyncio.sleep(every)


def mount_maintenance(app: web.Application, runtime: Runtime) -> None:
    """Start the purge task with the app and stop it on cleanup."""

    async def start(app: web.Application) -> None:
        app[PURGE_TASK] = asyncio.create_task(purge_forever(runtime), name="usage-purge")

    async def stop(app: web.Application) -> None:
        task = app.get(PURGE_TASK)
        if task is not None:
            await stop_tasks([task])

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
