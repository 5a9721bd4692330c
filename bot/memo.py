"""Renderings of a reply (or of any immutable object) kept while that very object is in use.

A persona card is built once per catalog version (``Catalog.memo``) and handed out to every
lookup of that persona; rendering it as Block Kit or as an Adaptive Card cost more than the
rest of the command. ``RenderMemo`` keeps the last renderings keyed by the reply's identity
(and a variant: share button or not, the command it answers), so a card rendered once is not
rendered again. Keys are identities, not values: hashing a whole card would cost about what
rendering it does, and a reply is immutable, so its identity stands for its content. Each
entry holds its reply, so an identity is never reused while its entry exists. Renderings are
shared between requests: callers must not change them.

Only replies that answer again are worth an entry (``reused``): a fit, a summary or a thanks
is made for one command, and its rendering, kept, would never be looked up, would push a
card out and would hold its memory until 256 later renderings replaced it (the soak
benchmark, ``bench/soak.py``, found these the largest Python allocations that kept turning
over in a running server).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from bot.model import Reply

T = TypeVar("T")


def reused(reply: Reply) -> bool:
    """Whether this very reply object may answer later commands too: a persona card, built
    once per catalog version (``Catalog.memo``) and handed to every lookup of it."""
    return reply.kind == "card"


class RenderMemo(Generic[T]):
    """The last ``size`` renderings of objects, least recently used dropped first."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[int, Hashable], tuple[object, T]] = OrderedDict()

    def get(self, reply: Reply | object, variant: Hashable, render: Callable[[], T]) -> T:
        """``render()`` for this object (a reply, a rendered message's blocks) and variant,
        rendered at most once. The object must not change while it is in use."""
        key = (id(reply), variant)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is reply:
            self._entries.move_to_end(key)
            return entry[1]
        value = render()
        self._entries[key] = (reply, value)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)
