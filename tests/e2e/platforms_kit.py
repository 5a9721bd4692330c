"""The whole web app with both chat platforms at once: Slack (one workspace, or many through
OAuth) and Teams (bot mode, real tokens from the fake issuer), served on 127.0.0.1 against
the local fakes of Slack's Web API and the Bot Connector.

``both_platforms`` yields the harness objects the Slack and Teams tests already use
(``Slack`` from the Slack conftest, ``TeamsHarness`` from ``teams_kit``), both pointing at
the same server, runtime and router, so their helpers (signed slash commands, activities
with tokens, reading replies back) work unchanged on the shared app.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import TestClient, TestServer

from adapters.slack.app import SlackAdapter
from adapters.slack.config import load
from adapters.teams.app import TEAMS, mount_teams
from adapters.teams.config import TeamsConfig
from bot.extensions import Extension
from bot.handlers import default_router
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web import create_app
from tests.e2e.slack.conftest import (
    BOT_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    SECRET,
    STATE_SECRET,
    TOKENS,
    Slack,
)
from tests.e2e.teams_kit import (
    FAST_RETRY,
    PASSWORD,
    StaticCredentialsFactory,
    TeamsHarness,
    bot_env,
)
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.openid import FakeOpenId
from tests.fakes.slack_api import FakeSlackAPI

SlackMode = Literal["single", "oauth"]


@dataclass
class Platforms:
    """One running app; ``slack`` and ``teams`` are two views of it."""

    client: TestClient
    runtime: Runtime
    slack: Slack
    teams: TeamsHarness


def _slack_env(fake: FakeSlackAPI, mode: SlackMode) -> dict[str, str]:
    env = {"SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url}
    if mode == "single":
        fake.add_workspace("T1", BOT_TOKEN, name="Tallyworks")
        env["SLACK_BOT_TOKEN"] = BOT_TOKEN
        return env
    fake.oauth_clients[CLIENT_ID] = CLIENT_SECRET
    for team, token in TOKENS.items():
        fake.add_workspace(team, token, name=f"Company {team[-1]}")
    env.update(
        SLACK_CLIENT_ID=CLIENT_ID,
        SLACK_CLIENT_SECRET=CLIENT_SECRET,
        SLACK_STATE_SECRET=STATE_SECRET,
    )
    return env


@asynccontextmanager
async def both_platforms(
    database_url: str,
    *,
    slack_mode: SlackMode = "single",
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Platforms]:
    """Start the app with Slack and Teams; ``env`` adds or overrides settings."""
    fake = await FakeSlackAPI().start()
    try:
        async with FakeBotConnector() as connector, FakeOpenId() as issuer:
            environ = {
                **bot_env(issuer, connector),
                **_slack_env(fake, slack_mode),
                **(env or {}),
            }
            settings = Settings.from_env(environ, database_url=database_url)
            runtime = Runtime.open(settings, seed=True)
            try:
                router = default_router(runtime)
                config = load(settings)
                assert config is not None
                adapter = SlackAdapter(config, runtime, router)
                teams_config = replace(TeamsConfig.from_settings(settings), typing_after=5.0)
                factory = StaticCredentialsFactory(
                    settings.microsoft_app_id, PASSWORD, settings.microsoft_app_tenant_id
                )
                extensions = [
                    Extension("slack", mount_web=lambda app, rt, r: adapter.mount(app)),
                    Extension(
                        "teams",
                        mount_web=functools.partial(
                            mount_teams,
                            config=teams_config,
                            credentials_factory=factory,
                            retry=FAST_RETRY,
                        ),
                    ),
                ]
                app = create_app(runtime, router, extensions)
                async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
                    slack = Slack(fake, client, runtime, router, adapter)
                    teams = TeamsHarness(client, runtime, router, connector, issuer, app[TEAMS])
                    yield Platforms(client, runtime, slack, teams)
            finally:
                runtime.close()
    finally:
        await fake.close()


async def install_slack(slack: Slack, team: str) -> int:
    """Install the OAuth app into ``team`` through /slack/install and back (the way a
    browser does); the organization the workspace now maps to."""
    fake = slack.fake
    workspace = next(w for w in fake.workspaces.values() if w.team_id == team)
    code = f"code-{team}"
    fake.oauth_codes[code] = workspace
    page = await slack.client.get("/slack/install")
    assert page.status == 200
    found = re.search(r'href="([^"]+/oauth/v2/authorize[^"]+)"', await page.text())
    assert found is not None
    state = parse_qs(urlsplit(found.group(1).replace("&amp;", "&")).query)["state"][0]
    done = await slack.client.get(
        "/slack/oauth_redirect",
        params={"code": code, "state": state},
        headers={"Cookie": f"slack-app-oauth-state={state}"},
    )
    assert done.status == 200, await done.text()
    return await slack.runtime.org_for("slack", team)
