"""Bounded mailboxes for the benchmark's fakes: what the bot sent, kept until a benchmark
takes it, so that a long run checks every answer without the fake's memory growing.

``Mailbox`` keeps messages under a key (a ``response_url``, a ``trigger_id``, the id of the
activity a Teams reply answers); ``take`` waits up to a timeout for the first one and removes
them all. ``Feed`` keeps messages nobody asked for yet (proactive ones) in order; ``drain``
returns and removes them. Both drop their oldest entries beyond a limit, and count what
they dropped, so a benchmark that stops reading costs bounded memory and is told so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from typing import Any

from aiohttp import web

LIMIT = 10_000


class Mailbox:
    def __init__(self, limit: int = LIMIT) -> None:
        self._limit = limit
        self._items: OrderedDict[str, list[Any]] = OrderedDict()
        self._arrived: dict[str, asyncio.Event] = {}
        self.dropped = 0

    def put(self, key: str, item: Any) -> None:
        self._items.setdefault(key, []).append(item)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)
            self.dropped += 1
        arrived = self._arrived.get(key)
        if arrived is not None:
            arrived.set()

    async def take(self, key: str, within: float) -> list[Any]:
        """Everything sent under ``key``: at once if it is there, else the first that arrives
        within ``within`` seconds (an empty list when nothing does)."""
        if key not in self._items:
            arrived = self._arrived.setdefault(key, asyncio.Event())
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), within)
            finally:
                self._arrived.pop(key, None)
        return self._items.pop(key, [])

    def __len__(self) -> int:
        return len(self._items)


class Feed:
    def __init__(self, limit: int = LIMIT) -> None:
        self._items: deque[Any] = deque(maxlen=limit)
        self.total = 0
        self.drained = 0

    def put(self, item: Any) -> None:
        self.total += 1
        self._items.append(item)

    def drain(self) -> list[Any]:
        items = list(self._items)
        self._items.clear()
        self.drained += len(items)
        return items

    @property
    def dropped(self) -> int:
        return self.total - self.drained - len(self._items)


async def take_route(boxes: dict[str, Mailbox], request: web.Request) -> web.Response:
    """``GET /take/{box}/{key}?timeout=S``: the messages of ``key``, as a JSON list."""
    box = boxes.get(request.match_info["box"])
    if box is None:
        raise web.HTTPNotFound()
    try:
        timeout = min(60.0, max(0.0, float(request.query.get("timeout", "0"))))
    except ValueError:
        raise web.HTTPBadRequest(text="timeout must be a number") from None
    return web.json_response(await box.take(request.match_info["key"], timeout))
