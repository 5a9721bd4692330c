"""The web app skeleton: liveness, readiness, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.handlers import default_router
from bot.runtime import Runtime
from bot.web import create_app
from persona_store import migrate


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[TestClient]:
    app = create_app(runtime, default_router(runtime))
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as c:
        yield c


async def test_health_and_readiness(client: TestClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"
    resp = await client.get("/readyz")
    assert resp.status == 200 and (await resp.json())["status"] == "ready"


async def test_readiness_fails_when_migrations_are_behind(
    client: TestClient, runtime: Runtime
) -> None:
    migrate.downgrade(runtime.engine, "base")
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert "migrate" in (await resp.json())["detail"]


async def test_metrics_count_requests_and_usage(client: TestClient, runtime: Runtime) -> None:
    await client.get("/healthz")
    await client.get("/no-such-page")
    text = await (await client.get("/metrics")).text()
    assert 'persona_bot_http_requests_total{route="/healthz",status="200"} 1.0' in text
    assert 'route="unmatched",status="404"' in text
    assert "persona_bot_usage_events_written_total 0.0" in text
    assert "persona_bot_http_request_seconds_bucket" in text
