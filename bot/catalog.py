"""Per-organization cache of the active personas and their lookup index.

Looking personas up is the hot path: the cache answers without touching the database. Every
persona change bumps the organization's catalog version; a cached catalog re-checks that
version at most every ``check_every`` seconds (one indexed read), so a change made by another
replica or by ``persona-bot import`` shows up within that time, and a change made here at once.
While the database cannot be reached, a cached catalog keeps answering.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.errors import TemporarilyUnavailable
from persona_store.lookup import PersonaIndex
from persona_store.records import StoredPersona
from persona_store.store import PersonaStore

RunDb = Callable[..., Awaitable[Any]]
T = TypeVar("T")
MEMO_SIZE = 1024  # derived values (rendered cards) kept per catalog version


@dataclass
class Catalog:
    org_id: int
    version: int
    personas: tuple[StoredPersona, ...]
    index: PersonaIndex
    checked_at: float
    extras: dict[str, Any] = field(default_factory=dict)  # derived indexes, e.g. the matcher
    _by_key: dict[str, StoredPersona] = field(default_factory=dict, repr=False)
    _memo: dict[Hashable, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_key = {p.key: p for p in self.personas}

    def get(self, key: str) -> StoredPersona | None:
        return self._by_key.get(key)

    def memo(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()``, kept for ``key`` as long as this catalog version is the current one.

        For values derived from the personas alone (a persona's card): a change makes a new
        catalog, so nothing kept here outlives the personas it was made from.
        """
        try:
            value: T = self._memo[key]
        except KeyError:
            value = build()
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = value
        return value


class CatalogCache:
    def __init__(self, store: PersonaStore, run_db: RunDb, *, check_every: float = 2.0) -> None:
        self._store = store
        self._run_db = run_db
        self._check_every = check_every
        self._catalogs: dict[int, Catalog] = {}

    async def get(self, org_id: int) -> Catalog:
        catalog = self._catalogs.get(org_id)
        now = time.monotonic()
        if catalog is not None and now - catalog.checked_at < self._check_every:
            return catalog
        try:
            version = await self._run_db(self._store.catalog_version, org_id)
        except TemporarilyUnavailable:
            if catalog is None:
                raise
            # The database is away: the personas we hold are still the best answer.
            catalog.checked_at = now
            return catalog
        if catalog is not None and catalog.version == version:
            catalog.checked_at = now
            return catalog
        personas = await self._run_db(self._store.list_personas, org_id)
        catalog = Catalog(org_id, version, tuple(personas), PersonaIndex(personas), now)
        self._catalogs[org_id] = catalog
        return catalog

    def invalidate(self, org_id: int) -> None:
        self._catalogs.pop(org_id, None)
