"""Shared set-up of the Teams end-to-end tests: the real web app with the Teams extension,
a fake Bot Connector (the activities' serviceUrl), a fake token issuer, recorded payloads.

``teams_harness`` starts everything on 127.0.0.1 with free ports. In "bot" mode (an app id
is configured) every ``post`` carries a token signed by the fake issuer, so activities pass
the real Bot Framework validation; outbound calls carry a fixed test token instead of one
from Entra ID (the only thing replaced, through ``mount_teams``' credentials factory).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from botframework.connector.auth import (
    MicrosoftAppCredentials,
    PasswordServiceClientCredentialFactory,
)
from msrest.authentication import Authentication

from adapters.teams.app import TEAMS, TeamsApp, mount_teams
from adapters.teams.config import TeamsConfig
from adapters.teams.notifier import RetryPolicy
from bot.extensions import Extension
from bot.handlers import default_router
from bot.router import Router
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web import create_app
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.openid import FakeOpenId

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "teams"
APP_ID = "1d9f5a40-5c6e-4c3b-8f3a-2b7e9c0d4e55"
TENANT_A = "3b9c7d2e-1f4a-4c8e-9d2b-6a5e8f1c0a11"  # the configured tenant: default org
TENANT_B = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"  # another company
PASSWORD = "app-password-never-logged"
OUTBOUND_TOKEN = "outbound-test-token"
ANN_AAD = "5d0f1e2a-7b3c-4d9e-8f10-a1b2c3d4e5f6"
ANN_ID = "29:1hUu0mOq8tDo4yZkLb2XHk7c0Ra9y5QyQ0ghq3mKq8vTnUeZ0n6sVwQbWcR1pYl2XjTqzGm4fA"


@functools.cache
def _raw(name: str) -> str:
    return (PAYLOADS / f"{name}.json").read_text(encoding="utf-8")


def payload(name: str, service_url: str, *, tenant: str | None = None) -> dict[str, Any]:
    """A recorded activity, pointed at the fake connector (and moved to another tenant)."""
    body: dict[str, Any] = json.loads(_raw(name))
    body["serviceUrl"] = service_url
    if tenant is not None:
        body["conversation"]["tenantId"] = tenant
        body.setdefault("channelData", {})["tenant"] = {"id": tenant}
    return body


def edited(body: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(dict(body))
    result.update(changes)
    return result


class StaticTokenCredentials(MicrosoftAppCredentials):
    """The bot's outbound credentials, with a fixed token instead of a call to Entra ID."""

    def get_access_token(self, force_refresh: bool = False) -> str:
        return OUTBOUND_TOKEN


class StaticCredentialsFactory(PasswordServiceClientCredentialFactory):
    """botbuilder's password factory (so inbound app id checks are the real ones) whose
    credentials never leave the machine."""

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Authentication:
        if await self.is_authentication_disabled():
            return MicrosoftAppCredentials.empty()
        if not await self.is_valid_app_id(app_id):
            raise PermissionError("Invalid app_id")
        return StaticTokenCredentials(app_id, "", self.tenant_id, oauth_scope)


def bot_env(issuer: FakeOpenId, connector: FakeBotConnector, **extra: str) -> dict[str, str]:
    return {
        "MICROSOFT_APP_ID": APP_ID,
        "MICROSOFT_APP_PASSWORD": PASSWORD,
        "MICROSOFT_APP_TENANT_ID": TENANT_A,
        "PERSONA_BOT_TEAMS_OPENID_METADATA_URL": issuer.metadata_url,
        "PERSONA_BOT_TEAMS_EMULATOR_OPENID_METADATA_URL": issuer.metadata_url,
        "PERSONA_BOT_TEAMS_ALLOWED_SERVICE_URLS": connector.url,
        "PERSONA_BOT_ADMINS": "admin@example.com",
        **extra,
    }


@dataclass
class TeamsHarness:
    client: TestClient
    runtime: Runtime
    router: Router
    connector: FakeBotConnector
    issuer: FakeOpenId | None
    teams: TeamsApp

    def payload(self, name: str, *, tenant: str | None = None) -> dict[str, Any]:
        return payload(name, self.connector.url, tenant=tenant)

    async def post(
        self,
        body: Any,
        *,
        token: str | None = None,
        sign: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> ClientResponse:
        """POST an activity to /api/messages, with a valid token unless told otherwise."""
        all_headers = dict(headers or {})
        if token is None and sign and self.issuer is not None and isinstance(body, Mapping):
            token = self.issuer.token(audience=APP_ID, service_url=str(body.get("serviceUrl")))
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        if isinstance(body, bytes | str):
            all_headers.setdefault("Content-Type", "application/json")
            return await self.client.post("/api/messages", data=body, headers=all_headers)
        return await self.client.post("/api/messages", json=body, headers=all_headers)

    def usage_events(self) -> int:
        self.runtime.usage.flush()
        from sqlalchemy import func, select

        from persona_store.models import UsageEvent

        with self.runtime.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(UsageEvent)) or 0)

    def references(self) -> int:
        return self.teams.book.store.count()


FAST_RETRY = RetryPolicy(attempts=4, backoff=0.01, max_wait=1.0)


@asynccontextmanager
async def teams_harness(
    database_url: str,
    *,
    bot_mode: bool = True,
    env: Mapping[str, str] | None = None,
    typing_after: float = 0.4,
    key_fetch_timeout: float = 5.0,
    more_service_urls: tuple[str, ...] = (),
) -> AsyncIterator[TeamsHarness]:
    """The real web app with Teams on 127.0.0.1, a fake connector and (in bot mode) issuer."""
    async with FakeBotConnector() as connector, FakeOpenId() as issuer:
        environ = dict(env or {})
        if bot_mode:
            environ = {**bot_env(issuer, connector), **environ}
        if more_service_urls:
            allowed = environ.get("PERSONA_BOT_TEAMS_ALLOWED_SERVICE_URLS", connector.url)
            environ["PERSONA_BOT_TEAMS_ALLOWED_SERVICE_URLS"] = ",".join(
                (allowed, *more_service_urls)
            )
        settings = Settings.from_env(environ, database_url=database_url)
        runtime = Runtime.open(settings, seed=True)
        try:
            config = replace(
                TeamsConfig.from_settings(settings),
                typing_after=typing_after,
                key_fetch_timeout=key_fetch_timeout,
            )
            factory = StaticCredentialsFactory(
                settings.microsoft_app_id, PASSWORD, settings.microsoft_app_tenant_id
            )
            extension = Extension(
                name="teams",
                mount_web=functools.partial(
                    mount_teams, config=config, credentials_factory=factory, retry=FAST_RETRY
                ),
            )
            router = default_router(runtime)
            app = create_app(runtime, router, [extension])
            async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
                yield TeamsHarness(
                    client, runtime, router, connector, issuer if bot_mode else None, app[TEAMS]
                )
        finally:
            runtime.close()


ACTION_TYPES = {"Action.Submit", "Action.ShowCard", "Action.OpenUrl", "Action.Execute"}


def assert_valid_card(card: Mapping[str, Any] | None, *, actions: bool | None = None) -> None:
    """The checks Teams' renderer would fail on: type, version, a body of known elements
    with no empty text, well-formed actions, and the size limit."""
    from adapters.teams.translate import CARD_LIMIT, card_size

    assert card is not None, "the reply carries no Adaptive Card"
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.5"
    body = card["body"]
    assert isinstance(body, list) and body, "the card has no body"
    for element in body:
        kind = element["type"]
        if kind == "RichTextBlock":
            assert element["inlines"], element
            for inline in element["inlines"]:
                assert inline["type"] == "TextRun" and inline["text"].strip(), element
        elif kind == "TextBlock":
            assert element["text"].strip(), element
        elif kind == "FactSet":
            assert element["facts"], element
            assert all(f["title"].strip() and f["value"].strip() for f in element["facts"])
        elif kind == "Image":
            assert element["url"].startswith("https://") and element["altText"]
        else:
            raise AssertionError(f"unexpected element {kind}")
    if actions is not None:
        assert bool(card.get("actions")) == actions, card.get("actions")
    if "actions" in card:
        assert card["actions"], "an empty actions list"
    for action in card.get("actions", []):
        assert action["type"] in ACTION_TYPES and action["title"].strip()
        if action["type"] == "Action.Submit":
            assert isinstance(action["data"]["verb"], str) and "args" in action["data"]
        if action["type"] == "Action.ShowCard":
            inner = action["card"]
            assert inner["type"] == "AdaptiveCard" and inner["body"] and inner["actions"]
    assert card_size(card) <= CARD_LIMIT
