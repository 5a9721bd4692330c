"""Waiting in tests: poll a condition with a deadline, the one way tests wait for something.

``await eventually(lambda: fake.delivered(...), what="the reply")`` checks the condition every
``POLL_INTERVAL`` seconds and returns its first truthy value; when ``within`` seconds pass first
it fails with an AssertionError that names what was awaited, the time allowed and, when a
``details`` callable is given, what it says about the state at that moment.

The condition may be a plain callable, one that returns an awaitable (an ``async def``, e.g.
one that asks a server), or, with ``in_thread=True``, a blocking callable (a database query)
run in a worker thread so that the event loop goes on serving meanwhile. A condition that
raises ends the wait with its exception: the way to give up early, e.g. when the process
being waited for has exited.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

POLL_INTERVAL = 0.02  # seconds between two checks: quick to notice, cheap on a loaded machine


@overload
async def eventually(
    condition: Callable[[], Awaitable[T | None]],
    *,
    what: str,
    within: float = ...,
    details: Callable[[], object] | None = ...,
    interval: float = ...,
) -> T: ...


@overload
async def eventually(
    condition: Callable[[], T | None],
    *,
    what: str,
    within: float = ...,
    details: Callable[[], object] | None = ...,
    interval: float = ...,
    in_thread: bool = ...,
) -> T: ...


async def eventually(
    condition: Callable[[], object],
    *,
    what: str,
    within: float = 10.0,
    details: Callable[[], object] | None = None,
    interval: float = POLL_INTERVAL,
    in_thread: bool = False,
) -> object:
    """The first truthy value of ``condition()``, checked every ``interval`` seconds; an
    AssertionError naming ``what`` (and ``details()``) if none comes within ``within`` s.

    A synchronous condition's truthy value is returned without the event loop running in
    between, so the caller acts on exactly the state the condition saw."""
    deadline = time.monotonic() + within
    while True:
        if in_thread:
            value = await asyncio.to_thread(condition)
        else:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            message = f"timed out after {within:g} s waiting for {what}"
            if details is not None:
                said = await asyncio.to_thread(details) if in_thread else details()
                message = f"{message}; {said}"
            raise AssertionError(message)
        await asyncio.sleep(interval)
