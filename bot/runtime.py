"""Everything a running bot holds: settings, database, store, usage writer, caches, notifiers.

Built once by the CLI (``Runtime.open``) and passed to the router, the web app and the
adapters explicitly; there are no module-level singletons. Blocking database work runs in a
small thread pool through ``await runtime.db(fn, ...)`` so that it never stalls the event loop,
and a database that does not answer within a few seconds becomes ``TemporarilyUnavailable``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.catalog import CatalogCache
from bot.errors import TemporarilyUnavailable
from bot.metrics import Metrics
from bot.notify import Notifier
from bot.settings import Settings, SettingsError
from persona_store import migrate
from persona_store.db import create_db_engine, is_sqlite
from persona_store.records import StoredPersona
from persona_store.schema import load_sample_personas
from persona_store.store import PersonaStore
from persona_store.usage import UsageRecorder

log = logging.getLogger(__name__)
T = TypeVar("T")

DB_TIMEOUT = 3.0


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Runtime:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        clock: Callable[[], datetime] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = PersonaStore(engine)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.metrics = metrics or Metrics()
        self.usage = UsageRecorder(engine)
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="db")
        self.catalogs = CatalogCache(self.store, self.db)
        self.notifiers: dict[str, Notifier] = {}
        self.default_org_id = 0
        # Workspaces/tenants of the default organization (the single-workspace install's
        # team, the configured Teams tenant), registered by the adapters.
        self.home_workspaces: dict[str, set[str]] = {}
        # Sends change notes after an edit: (org_id, persona, editor id) -> notes queued.
        # Set by the extension that delivers proactive messages (the scheduler's outbox).
        self.change_notifier: Callable[[int, StoredPersona, str], Awaitable[int]] | None = None
        self._org_cache: dict[tuple[str, str], int] = {}
        self.metrics.counter_from(
            "persona_bot_usage_events_written", "Usage events written", lambda: self.usage.written
        )
        self.metrics.gauge_from(
            "persona_bot_usage_events_queued",
            "Usage events waiting to be written",
            lambda: self.usage.queued,
        )
        self.metrics.counter_from(
            "persona_bot_usage_events_dropped",
            "Usage events dropped because the queue was full",
            lambda: self.usage.dropped,
        )

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        run_migrations: bool = True,
        seed: bool | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> Runtime:
        """Connect, migrate, make sure the default organization exists, load samples."""
        connect_args: dict[str, Any] = {}
        if not is_sqlite(settings.database_url):
            # Fail fast when PostgreSQL is away, and notice a silently dead connection
            # (keepalives) instead of waiting on it forever.
            connect_args = {
                "connect_timeout": 3,
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
            }
        engine = (
            create_db_engine(settings.database_url, connect_args=connect_args)
            if connect_args
            else create_db_engine(settings.database_url)
        )
        if run_migrations:
            migrate.upgrade(engine)
        runtime = cls(settings, engine, clock=clock)
        runtime.default_org_id = runtime.store.default_org(settings.org_name)
        if settings.load_samples if seed is None else seed:
            runtime.seed_samples()
        if settings.org_slug:
            chosen = runtime.store.org_by_slug(settings.org_slug)
            if chosen is None:
                known = ", ".join(o["slug"] for o in runtime.store.list_orgs())
                engine.dispose()
                raise SettingsError(
                    f"there is no organization '{settings.org_slug}' (known: {known}); "
                    "`persona-bot orgs` lists them"
                )
            runtime.default_org_id = chosen
        runtime.usage.start()
        return runtime

    def seed_samples(self) -> bool:
        specs = load_sample_personas()
        loaded = self.store.seed_if_empty(self.default_org_id, specs, "persona-bot (samples)")
        if loaded:
            log.info("loaded %d sample personas into an empty database", len(specs))
        return loaded

    async def db(
        self, fn: Callable[..., T], *args: Any, db_timeout: float = DB_TIMEOUT, **kwargs: Any
    ) -> T:
        """Run blocking database work in the pool; outages become TemporarilyUnavailable.

        ``db_timeout`` is for the few long reads (summaries); commands keep the default.
        """
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._executor, call), timeout=db_timeout
            )
        except TimeoutError:
            raise TemporarilyUnavailable("the database did not answer in time") from None
        except Exception as exc:
            if _is_outage(exc):
                raise TemporarilyUnavailable("the database cannot be reached") from exc
            raise

    async def org_for(self, platform: str, workspace: str, name: str | None = None) -> int:
        """The organization of a workspace/tenant (``home`` ones share the default org)."""
        key = (platform, workspace)
        org_id = self._org_cache.get(key)
        if org_id is None:
            if platform in ("console", "cli", "web") or not workspace:
                org_id = self.default_org_id
            else:
                home = workspace in self.home_workspaces.get(platform, set())
                org_id = await self.db(
                    self.store.org_for_tenant, platform, workspace, name, home=home
                )
            self._org_cache[key] = org_id
        return org_id

    def ready(self) -> tuple[bool, str]:
        """Database reachable and migrations current."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            if not migrate.is_up_to_date(self.engine):
                return False, "database schema is not up to date: run persona-bot migrate"
        except Exception as exc:
            return False, f"database unavailable: {type(exc).__name__}"
        return True, "ok"

    def close(self, timeout: float = 10.0) -> None:
        """Flush usage events and release the database."""
        if not self.usage.close(timeout):
            log.error("some usage events could not be written before shutdown")
        self._executor.shutdown(wait=True, cancel_futures=False)
        self.engine.dispose()
