"""Stopping the background loops the web app runs (purges, prunes, connections)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

PATIENCE = 1.0  # seconds to wait after each cancel before cancelling again


async def stop_tasks(tasks: Iterable[asyncio.Task[object]]) -> None:
    """Cancel ``tasks`` and wait until every one has ended.

    One cancel is not always enough on Python 3.11: ``asyncio.wait_for`` (which
    ``Runtime.db`` uses) swallows a cancellation that arrives just as its inner call
    finishes, and a loop would then go on to its next long sleep. So cancel again until
    they have all ended.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=PATIENCE)
