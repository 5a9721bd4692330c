"""Stopping background loops, even one that swallowed a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from bot import tasks
from bot.tasks import stop_tasks


async def test_a_loop_that_swallows_a_cancellation_is_still_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks, "PATIENCE", 0.05)
    started, swallowed = asyncio.Event(), asyncio.Event()

    async def loop() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()  # as asyncio.wait_for does when its inner call just finished
        await asyncio.Event().wait()  # the loop's next long sleep

    task = asyncio.create_task(loop())
    await started.wait()
    await asyncio.wait_for(stop_tasks([task]), timeout=10)
    assert swallowed.is_set() and task.cancelled()


async def test_finished_tasks_are_left_alone() -> None:
    async def quick() -> int:
        return 1

    task = asyncio.create_task(quick())
    await task
    await stop_tasks([task])
    assert task.result() == 1
