"""Many workspaces: OAuth installs kept in persona-bot's own database.

slack_sdk's SQLAlchemy installation and OAuth-state stores do the SQL, on the tables that
migration 0002 creates (never ``create_tables()``). They are synchronous, so the async
wrappers here run them in the runtime's database pool, and a small cache keeps token
look-ups off the database on the hot path. OAuth ``state`` values are signed with
``SLACK_STATE_SECRET`` on top of being stored once: a forged or tampered state is refused
before any database work. Each installed workspace gets an organization of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.async_cacheable_installation_store import (
    AsyncCacheableInstallationStore,
)
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Engine, select

from bot.runtime import Runtime
from persona_store.models import PlatformTenant

from .config import BOT_SCOPES, SlackConfig

log = logging.getLogger(__name__)

STATE_SECONDS = 600
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
RunDb = Callable[..., Awaitable[Any]]
OnInstalled = Callable[[Installation], Awaitable[None]]


class DatabaseInstallationStore(AsyncInstallationStore):
    """slack_sdk's SQLAlchemy installation store, run off the event loop."""

    def __init__(
        self, store: SQLAlchemyInstallationStore, run: RunDb, on_saved: OnInstalled | None = None
    ) -> None:
        self._store = store
        self._run = run
        self._on_saved = on_saved

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        await self._run(self._store.save, installation)
        if self._on_saved is not None:
            await self._on_saved(installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await self._run(self._store.save_bot, bot)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        return await self._run(
            self._store.find_bot,
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return await self._run(
            self._store.find_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._run(self._store.delete_bot, enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await self._run(
            self._store.delete_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
        )


class SignedStateStore(AsyncOAuthStateStore):
    """OAuth ``state`` values stored once (slack_sdk's SQLAlchemy store) and signed with
    ``SLACK_STATE_SECRET``; ``consume`` refuses an unsigned or tampered value outright."""

    def __init__(self, store: SQLAlchemyOAuthStateStore, secret: str, run: RunDb) -> None:
        self._store = store
        self._key = secret.encode()
        self._run = run

    @property
    def logger(self) -> logging.Logger:
        return log

    def _sign(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        value: str = await self._run(self._store.issue)
        return f"{value}.{self._sign(value)}"

    async def async_consume(self, state: str) -> bool:
        value, _, signature = state.rpartition(".")
        if not value or not hmac.compare_digest(signature, self._sign(value)):
            log.warning("Slack OAuth callback with a forged or tampered state refused")
            return False
        return bool(await self._run(self._store.consume, value))


def installation_store(
    config: SlackConfig, runtime: Runtime, on_saved: OnInstalled | None = None
) -> AsyncCacheableInstallationStore:
    assert config.client_id is not None
    store = SQLAlchemyInstallationStore(client_id=config.client_id, engine=runtime.engine)
    return AsyncCacheableInstallationStore(DatabaseInstallationStore(store, runtime.db, on_saved))


def oauth_settings(
    config: SlackConfig, runtime: Runtime, store: AsyncInstallationStore
) -> AsyncOAuthSettings:
    """Everything Bolt's OAuth flow needs, passed explicitly (Bolt never reads the
    environment for it)."""
    assert config.client_id and config.client_secret and config.state_secret
    states = SQLAlchemyOAuthStateStore(expiration_seconds=STATE_SECONDS, engine=runtime.engine)
    redirect = f"{config.public_url}{REDIRECT_PATH}" if config.public_url else None
    return AsyncOAuthSettings(
        client_id=config.client_id,
        client_secret=config.client_secret,
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        redirect_uri=redirect,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        authorization_url=config.authorization_url,
        installation_store=store,
        installation_store_bot_only=True,
        state_store=SignedStateStore(states, config.state_secret, runtime.db),
        state_expiration_seconds=STATE_SECONDS,
        logger=log,
    )


def teams_of(engine: Engine, org_id: int) -> list[str]:
    """The Slack workspaces linked to an organization."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(PlatformTenant.external_id)
            .where(PlatformTenant.platform == "slack", PlatformTenant.org_id == org_id)
            .order_by(PlatformTenant.id)
        )
        return [row[0] for row in rows]
