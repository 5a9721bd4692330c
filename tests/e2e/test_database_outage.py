"""PostgreSQL goes away during a burst of commands, and comes back.

A TCP proxy between the bot and PostgreSQL (the shared server itself is never touched) is cut:
every open connection drops and new ones are refused. A burst of commands from several
people arrives meanwhile. Every reply must come within 3 seconds and be either an answer
(looked up in the cached personas) or the clear "temporarily unavailable" sentence, never
an apology; the web app stays alive and says it is not ready. When the proxy is restored,
every usage event queued during the outage is written: one row per command, none lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot import messages
from bot.catalog import CatalogCache
from bot.handlers import default_router
from bot.model import Reply
from bot.router import Router
from bot.runtime import Runtime
from bot.web import create_app
from persona_store.models import UsageEvent
from tests.conftest import command, make_settings
from tests.fakes.tcp_proxy import TcpProxy
from tests.polling import eventually

pytestmark = pytest.mark.postgres

BURST = [
    ("fiona", "U1"),
    ("finanse fiona", "U2"),
    ("carlos", "U3"),
    ("list", "U4"),
    ("pirate", "U5"),
    ("fit Series B fintech, 300 staff, the CFO worries about audit", "U6"),
    ("fit D-77: Series B fintech, 300 staff, the CFO worries about audit", "U7"),
    ("feedback fiona too US-centric", "U8"),
    ("deal D-77 won 5000", "U9"),
    ("stats 7", "U_ADMIN"),
    ("paula", "U10"),
    ("help", "U11"),
] * 5
ANSWER_KINDS = {"card", "list", "fit", "suggest", "help"}


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    target = urlsplit(pg_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    proxy.start()
    yield proxy
    proxy.close()


def through(pg_url: str, port: int) -> str:
    parts = urlsplit(pg_url)
    user = f"{parts.username}@" if parts.username else ""
    password = f":{parts.password}" if parts.password else ""
    if password:
        user = f"{parts.username}{password}@"
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


def rows(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(UsageEvent)).scalar_one())


async def timed(router: Router, text: str, user: str) -> tuple[Reply, float]:
    started = time.perf_counter()
    reply = await router.dispatch(command(router, text, user=user))
    return reply, time.perf_counter() - started


async def test_a_database_outage_during_a_burst_loses_nothing(pg_url: str, proxy: TcpProxy) -> None:
    settings = make_settings(
        through(pg_url, proxy.port), PERSONA_BOT_ADMINS="U_ADMIN", PERSONA_BOT_SAMPLE_PERSONAS="1"
    )
    runtime = await asyncio.to_thread(Runtime.open, settings, seed=True)
    try:
        runtime.home_workspaces["slack"] = {"T1"}
        # Check the catalog version on every command, so that the burst meets the outage
        # there too (a running bot checks every few seconds).
        runtime.catalogs = CatalogCache(runtime.store, runtime.db, check_every=0.0)
        router = default_router(runtime)
        app = create_app(runtime, router)
        async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
            # Warm up as a running bot would be: organization, catalog and matcher cached.
            warm = [await timed(router, "fiona", "U0"), await timed(router, "fit saas cfo", "U0")]
            assert [r.kind for r, _ in warm] == ["card", "fit"]
            await asyncio.to_thread(runtime.usage.flush)
            before = await asyncio.to_thread(rows, runtime)
            assert before == 2

            proxy.cut()
            replies = await asyncio.gather(*(timed(router, text, user) for text, user in BURST))
            slow = [
                (text, round(s, 2))
                for (text, _), (_, s) in zip(BURST, replies, strict=True)
                if s >= 3.0
            ]
            assert slow == []
            kinds = {}
            for (text, _), (reply, _) in zip(BURST, replies, strict=True):
                assert reply.summary != messages.APOLOGY, text
                if reply.kind == "error":
                    assert reply.summary == messages.UNAVAILABLE, (text, reply.summary)
                else:
                    assert reply.kind in ANSWER_KINDS, (text, reply.kind)
                kinds.setdefault(text.split()[0], set()).add(reply.kind)
            # The cached personas still answer; what must write waits for the database.
            assert kinds["fiona"] == {"card"} and kinds["list"] == {"list"}
            assert kinds["pirate"] == {"suggest"} and kinds["paula"] == {"card"}
            assert kinds["feedback"] == {"error"} and kinds["deal"] == {"error"}
            assert kinds["stats"] == {"error"}

            assert (await client.get("/healthz")).status == 200
            assert (await client.get("/readyz")).status == 503
            await eventually(
                lambda: runtime.usage.write_failures > 0, within=15, what="a failed usage write"
            )
            metrics = await (await client.get("/metrics")).text()
            assert f"persona_bot_usage_events_queued {float(len(BURST))}" in metrics
            assert runtime.usage.written == 2 and runtime.usage.dropped == 0

            proxy.restore()
            await eventually(
                lambda: runtime.usage.queued == 0 and rows(runtime) == before + len(BURST),
                within=20,
                what="writing every queued usage event",
                details=lambda: f"{runtime.usage.queued} queued, {rows(runtime) - before} written",
                interval=0.05,
                in_thread=True,
            )
            assert runtime.usage.dropped == 0
            metrics = await (await client.get("/metrics")).text()
            assert f"persona_bot_usage_events_written_total {float(2 + len(BURST))}" in metrics
            assert "persona_bot_usage_events_dropped_total 0.0" in metrics
            assert (await client.get("/readyz")).status == 200
            again = await router.dispatch(command(router, "feedback fiona back again"))
            assert "Thanks" in again.summary
    finally:
        await asyncio.to_thread(runtime.close)
