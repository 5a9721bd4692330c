"""The Slack harness: the real web app with the Slack adapter, served on 127.0.0.1 (free
port), talking to the local fake of Slack's Web API; requests signed as Slack signs them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from adapters.slack.app import SlackAdapter
from adapters.slack.config import load
from bot.extensions import Extension
from bot.handlers import default_router
from bot.router import Router
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web import create_app
from persona_store.models import UsageEvent
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_wire import (
    FORM,
    interactivity_body,
    signed_headers,
    slash_body,
)

SECRET = "5f0b5d0e8a1c4e2f9b7a6c3d2e1f0a9b"
BOT_TOKEN = "xoxb-1111-2222-fakeT1token"
ADMIN_EMAIL = "admin@tallyworks.example"
MANAGER_EMAIL = "manager@tallyworks.example"
OWNER_EMAIL = "fiona.owner@tallyworks.example"  # owns Finance Fiona in the samples
# OAuth (many workspaces): the app's credentials and each workspace's bot token.
CLIENT_ID = "1111.2222"
CLIENT_SECRET = "c0ffee0c0ffee0c0ffee0c0ffee0c0ff"
STATE_SECRET = "state-secret-for-tests-0123456789"
TOKENS = {"TA": "xoxb-aaaa-team-a-token", "TB": "xoxb-bbbb-team-b-token"}


@dataclass
class Slack:
    """The app under test and everything a test needs to talk to it like Slack does."""

    fake: FakeSlackAPI
    client: TestClient
    runtime: Runtime
    router: Router
    adapter: SlackAdapter
    secret: str = SECRET

    async def post(
        self,
        body: str | bytes,
        content_type: str,
        *,
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        sign: bool = True,
    ) -> ClientResponse:
        all_headers = (
            signed_headers(self.secret, body, content_type=content_type, timestamp=timestamp)
            if sign
            else {"Content-Type": content_type}
        )
        all_headers.update(headers or {})
        return await self.client.post("/slack/events", data=body, headers=all_headers)

    async def slash(self, text: str, **form: Any) -> ClientResponse:
        form.setdefault("response_url", self.fake.response_url())
        return await self.post(slash_body(text, **form), FORM)

    async def click(self, payload: dict[str, Any]) -> ClientResponse:
        return await self.post(interactivity_body(payload), FORM)

    async def event(self, body: dict[str, Any], *, retry: int | None = None) -> ClientResponse:
        headers = (
            {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
            if retry
            else None
        )
        return await self.post(json.dumps(body), "application/json", headers=headers)

    def usage(self) -> list[UsageEvent]:
        self.runtime.usage.flush()
        with self.runtime.store.session() as s:
            return list(s.scalars(select(UsageEvent).order_by(UsageEvent.id)))


def slack_settings(db_url: str, fake: FakeSlackAPI, **env: str) -> Settings:
    base = {
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": fake.api_url,
        "PERSONA_BOT_ADMINS": ADMIN_EMAIL,
        "PERSONA_BOT_MANAGERS": MANAGER_EMAIL,
    }
    base.update(env)
    return Settings.from_env({k: v for k, v in base.items() if v}, database_url=db_url)


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlackAPI]:
    fake = await FakeSlackAPI().start()
    fake.add_workspace("T1", BOT_TOKEN, name="Tallyworks")
    fake.add_user("T1", "U1", "sam.seller@tallyworks.example", "sam.seller")
    fake.add_user("T1", "UOWNER", OWNER_EMAIL, "fiona.owner")
    fake.add_user("T1", "UADMIN", ADMIN_EMAIL, "ada.admin")
    fake.add_user("T1", "UMANAGER", MANAGER_EMAIL, "max.manager")
    yield fake
    await fake.close()


MakeSlack = Callable[..., Awaitable[Slack]]


@pytest.fixture
async def make_slack(tmp_path: Path, fake_slack: FakeSlackAPI) -> AsyncIterator[MakeSlack]:
    """Start the app: ``await make_slack(deadline=0.2, SLACK_CLIENT_ID=...)``."""
    started: list[tuple[TestClient, Runtime]] = []

    async def start(
        *, deadline: float = 2.0, configure: Callable[[Router], None] | None = None, **env: str
    ) -> Slack:
        settings = slack_settings(f"sqlite:///{tmp_path / 'slack.db'}", fake_slack, **env)
        runtime = Runtime.open(settings, seed=True)
        router = default_router(runtime)
        if configure:
            configure(router)
        config = load(settings)
        assert config is not None
        adapter = SlackAdapter(config, runtime, router, deadline=deadline)
        extension = Extension("slack", mount_web=lambda app, rt, r: adapter.mount(app))
        app = create_app(runtime, router, [extension])
        client = TestClient(TestServer(app, host="127.0.0.1", port=0))
        await client.start_server()
        started.append((client, runtime))
        return Slack(fake_slack, client, runtime, router, adapter)

    yield start
    for client, runtime in started:
        await client.close()
        runtime.close()


@pytest.fixture
async def slack(make_slack: MakeSlack) -> Slack:
    """The single-workspace app (workspace T1, the default organization)."""
    return await make_slack()


@pytest.fixture
async def oauth_slack(make_slack: MakeSlack, fake_slack: FakeSlackAPI) -> Slack:
    """The OAuth app (many workspaces); workspaces TA and TB can install it."""
    fake_slack.oauth_clients[CLIENT_ID] = CLIENT_SECRET
    for team, token in TOKENS.items():
        workspace = fake_slack.add_workspace(team, token, name=f"Company {team[-1]}")
        fake_slack.add_user(team, "U1", f"u1@{team.lower()}.example", "u1")
        fake_slack.oauth_codes[f"code-{team}"] = workspace
    return await make_slack(
        SLACK_BOT_TOKEN="",
        SLACK_CLIENT_ID=CLIENT_ID,
        SLACK_CLIENT_SECRET=CLIENT_SECRET,
        SLACK_STATE_SECRET=STATE_SECRET,
    )
