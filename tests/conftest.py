"""Shared fixtures: databases (SQLite always, PostgreSQL when configured), runtimes, routers.

PostgreSQL tests run when ``PERSONA_BOT_TEST_DATABASE_URL`` points at a database (CI sets it
to the local server); each test gets a schema of its own there, dropped afterwards, so runs
never see each other's rows. Without the variable those tests are skipped, with that reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from bot.handlers import default_router
from bot.model import Command, ConversationRef, UserRef
from bot.router import Router
from bot.runtime import Runtime
from bot.settings import Settings
from persona_store.db import normalise_url
from tests.fakes.platform import FakePlatform, HttpNotifier

PG_ENV = "PERSONA_BOT_TEST_DATABASE_URL"
PG_SKIP = f"PostgreSQL tests skipped: set {PG_ENV} (for example postgresql://postgres@127.0.0.1:5432/test)"
DATA = Path(__file__).parent / "data"


def postgres_base_url() -> str | None:
    url = os.environ.get(PG_ENV, "").strip()
    return normalise_url(url) if url else None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    base = postgres_base_url()
    if base is None:
        pytest.skip(PG_SKIP)
    schema = f"pbtest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'persona-bot.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each store test runs on SQLite and, when configured, on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


def make_settings(db_url: str, **env: str) -> Settings:
    return Settings.from_env(env, database_url=db_url)


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return make_settings(sqlite_url, PERSONA_BOT_ADMINS="U_ADMIN,admin@example.com")


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.open(settings, seed=True)
    yield rt
    rt.close()


@pytest.fixture
def router(runtime: Runtime) -> Router:
    # Workspace T1 is the install's own workspace: it sees the default organization.
    runtime.home_workspaces["slack"] = {"T1"}
    return default_router(runtime)


def command(
    router: Router,
    text: str,
    *,
    user: str = "U1",
    email: str | None = None,
    platform: str = "slack",
    workspace: str = "T1",
    channel: str = "C1",
) -> Command:
    """A command as a platform adapter would build it from typed text."""
    return router.command_from_text(
        text,
        UserRef(id=user, name=user.lower(), email=email),
        ConversationRef(platform=platform, workspace=workspace, channel=channel),  # type: ignore[arg-type]
    )


def at(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


# A recording platform over HTTP and a Notifier that delivers to it (the scheduler's tests).


@pytest.fixture
async def platform() -> AsyncIterator[FakePlatform]:
    fake = FakePlatform()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def notifier(platform: FakePlatform) -> AsyncIterator[HttpNotifier]:
    http = HttpNotifier("slack", platform.url)
    yield http
    await http.close()
