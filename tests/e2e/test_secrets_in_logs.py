"""No secret ever reaches a log line, a printed message or a reply, on the good paths and the
bad ones.

Every secret is a fresh random value: the Slack signing secret, bot token, app-level token,
OAuth client and state secrets, the Microsoft app password, the dashboard secret, and the
database password (PostgreSQL through a URL with a password when configured; SQLite
otherwise, where only the configuration objects can carry one). Logging is set up as
``persona-bot serve`` sets it up, at DEBUG, with the aiohttp access log switched on as well;
both what the secret filter lets out and what code tried to log before the filter are kept.
The web app then serves Slack (HTTP and Socket Mode), Teams and the dashboard through normal
and failing flows: forged and replayed requests, Slack answering 500, the Bot Connector and
Entra ID refusing the bot, the database going away, a handler crashing. ``persona-bot serve``
itself runs as a subprocess at DEBUG, and the CLI commands that print configuration or errors
run too. Nothing may contain a secret, a bearer token, a JWT or, outside the answer to the
person who asked for it, a signed dashboard link.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import logging
import os
import re
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit, urlunsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from botframework.connector.auth import MicrosoftAppCredentials
from msrest.authentication import Authentication

from adapters.slack.app import SlackAdapter
from adapters.slack.config import load
from adapters.teams.app import bot_configuration, mount_teams
from adapters.teams.config import TeamsConfig
from bot.cli import main
from bot.extensions import Extension
from bot.handlers import default_router
from bot.logs import REDACTED, setup_logging
from bot.model import Reply
from bot.router import Turn
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web import create_app
from persona_store.db import create_db_engine
from scheduler.config import SchedulerConfig
from tests.conftest import postgres_base_url
from tests.e2e.slack.test_slack_serve import Serve, free_port
from tests.e2e.teams_kit import (
    ANN_ID,
    APP_ID,
    FAST_RETRY,
    TENANT_A,
    StaticCredentialsFactory,
    edited,
    payload,
)
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.openid import FakeOpenId
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_wire import (
    FORM,
    actions_payload,
    event_body,
    interactivity_body,
    signed_headers,
    slash_body,
)
from tests.fakes.tcp_proxy import TcpProxy
from tests.polling import eventually

ADMIN_EMAIL = "admin@tallyworks.example"
BEARER = re.compile(r"Bearer\s+[\w.~+/=-]{6,}", re.IGNORECASE)
JWT = re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}")
SLACK_TOKEN = re.compile(r"\bx(?:ox[abpr]|app)-[\w-]{6,}")
DASHBOARD_LINK = re.compile(r"\b\d+\.\d+\.[0-9a-f]{64}\b")  # a signed link: its holder reads


def fresh(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


@dataclass
class Secrets:
    """Every secret of one run; each recognisable in any text."""

    signing: str = field(default_factory=lambda: fresh("signing"))
    bot_token: str = field(default_factory=lambda: fresh("xoxb-10-20-"))
    app_token: str = field(default_factory=lambda: fresh("xapp-1-A1-"))
    client_secret: str = field(default_factory=lambda: fresh("clientsecret"))
    state_secret: str = field(default_factory=lambda: fresh("statesecret"))
    ms_password: str = field(default_factory=lambda: fresh("mspassword~"))
    dashboard: str = field(default_factory=lambda: fresh("dashboard"))
    db_password: str | None = field(default_factory=lambda: fresh("db/pass@word:"))
    outbound_token: str = field(default_factory=lambda: fresh("outbound"))
    workspace_token: str = field(default_factory=lambda: fresh("xoxb-30-40-"))  # via OAuth
    inbound_tokens: list[str] = field(default_factory=list)  # Teams JWTs sent to the bot

    def named(self) -> dict[str, str]:
        values = {k: v for k, v in vars(self).items() if isinstance(v, str)}
        values.update({f"inbound token {i}": t for i, t in enumerate(self.inbound_tokens)})
        return values


def leaks(text: str, known: Secrets, *, links: bool = True) -> list[str]:
    """What of ``known`` (in any usual encoding), or any bearer token, JWT, Slack token or
    (``links``) signed dashboard link, ``text`` contains."""
    found = []
    for name, value in known.named().items():
        forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
        found += [f"{name} ({form[:12]}…)" for form in forms if form in text]
    patterns = [("bearer token", BEARER), ("JWT", JWT), ("Slack token", SLACK_TOKEN)]
    if links:
        patterns.append(("dashboard link", DASHBOARD_LINK))
    for kind, pattern in patterns:
        found += [f"{kind}: {m[:24]}…" for m in pattern.findall(text)]
    return found


# logging as serve sets it up ---------------------------------------------------------------


@dataclass
class Logs:
    shown: io.StringIO  # what the secret filter let out: what operators read
    attempted: io.StringIO  # the same records before the filter


@contextlib.contextmanager
def serve_logging(settings: Settings) -> Iterator[Logs]:
    """``setup_logging`` at DEBUG as ``serve`` does, its stream captured, plus the aiohttp
    access log (off in serve) and a second handler that sees records before the filter."""
    root = logging.getLogger()
    access = logging.getLogger("aiohttp.access")
    saved = (root.handlers[:], root.level, access.level)
    logs = Logs(io.StringIO(), io.StringIO())
    try:
        setup_logging("DEBUG", settings.secrets)
        [handler] = root.handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(logs.shown)
        before_filter = logging.StreamHandler(logs.attempted)
        before_filter.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        before_filter.addFilter(lambda record: not deliberate(record))
        root.handlers.insert(0, before_filter)
        access.setLevel(logging.DEBUG)
        yield logs
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        access.setLevel(saved[2])


def deliberate(record: logging.LogRecord) -> bool:
    """The crash a test causes on purpose, with secrets in its message."""
    exc = record.exc_info[1] if record.exc_info else None
    return isinstance(exc, Boom)


# the database ------------------------------------------------------------------------------


@pytest.fixture
def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, TcpProxy | None]]:
    """PostgreSQL through a proxy a test can cut, with a password in the URL (the test server
    trusts local connections, so any password works), else SQLite. The URL has ``{pw}``
    where the password goes."""
    if postgres_base_url() is None:
        yield f"sqlite:///{tmp_path / 'secrets.db'}", None
        return
    parts = urlsplit(str(request.getfixturevalue("pg_url")))
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.start()
    netloc = f"{parts.username or 'postgres'}:{{pw}}@127.0.0.1:{proxy.port}"
    try:
        yield urlunsplit(parts._replace(netloc=netloc)), proxy
    finally:
        proxy.close()


def with_password(template: str, password: str | None) -> str:
    return template.replace("{pw}", quote(password or "", safe=""))


def secrets_for(database_url: str) -> Secrets:
    """Fresh secrets; a database password only where the database takes one."""
    known = Secrets()
    if "{pw}" not in database_url:
        known.db_password = None
    return known


# the bot: Slack (HTTP and Socket Mode), Teams and the dashboard in one web app ---------------


class Boom(RuntimeError):
    """A handler crash whose message quotes secrets, as a careless library might."""


REFUSED_BY_ENTRA = (
    "Failed to get access token with error: invalid_client, error_description: AADSTS7000215: "
    "Invalid client secret provided. Ensure the secret being sent in the request is the "
    "client secret value, not the client secret ID."
)


@dataclass
class TokenService:
    """Stands in for Entra ID: the bot's outbound token, or a refusal when told to."""

    token: str
    refuse: bool = False


class SwitchableCredentials(MicrosoftAppCredentials):
    def __init__(self, app_id: str, tenant: str | None, scope: str, service: TokenService):
        super().__init__(app_id, "", tenant, scope)
        self.service = service

    def get_access_token(self, force_refresh: bool = False) -> str:
        if self.service.refuse:
            raise PermissionError(REFUSED_BY_ENTRA)  # what botframework raises on a refusal
        return self.service.token


class SwitchableCredentialsFactory(StaticCredentialsFactory):
    def __init__(self, service: TokenService, password: str) -> None:
        super().__init__(APP_ID, password, TENANT_A)
        self.service = service

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Authentication:
        if not await self.is_valid_app_id(app_id):
            raise PermissionError("Invalid app_id")
        return SwitchableCredentials(app_id, self.tenant_id, oauth_scope, self.service)


@dataclass
class Bot:
    client: TestClient
    runtime: Runtime
    fake: FakeSlackAPI
    connector: FakeBotConnector
    issuer: FakeOpenId
    known: Secrets
    tokens: TokenService
    answers: list[str] = field(default_factory=list)  # every body sent back to a client

    async def _keep(self, resp: aiohttp.ClientResponse) -> int:
        self.answers.append(await resp.text())
        return int(resp.status)

    async def slack(
        self,
        body: str,
        content_type: str = FORM,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> int:
        signed = signed_headers(
            secret or self.known.signing, body, content_type=content_type, timestamp=timestamp
        )
        return await self._keep(await self.client.post("/slack/events", data=body, headers=signed))

    async def slash(self, text: str, user: str = "U1", key: str = "r1") -> int:
        return await self.slack(
            slash_body(text, user=user, response_url=self.fake.response_url(key))
        )

    async def teams(self, body: Mapping[str, Any], *, token: str | None = None) -> int:
        if token is None:
            token = self.issuer.token(audience=APP_ID, service_url=str(body["serviceUrl"]))
        self.known.inbound_tokens.append(token)
        headers = {"Authorization": f"Bearer {token}"}
        return await self._keep(await self.client.post("/api/messages", json=body, headers=headers))

    def teams_message(self, text: str) -> dict[str, Any]:
        return edited(payload("personal_message", self.connector.url), text=text)

    async def get(self, path: str) -> int:
        return await self._keep(await self.client.get(path))


def bot_env(
    known: Secrets,
    database_url: str,
    fake: FakeSlackAPI,
    connector: FakeBotConnector,
    issuer: FakeOpenId,
    **more: str,
) -> dict[str, str]:
    return {
        "PERSONA_BOT_DATABASE_URL": with_password(database_url, known.db_password),
        "PERSONA_BOT_DASHBOARD_SECRET": known.dashboard,
        "PERSONA_BOT_ADMINS": f"{ADMIN_EMAIL},admin@example.com",
        "PERSONA_BOT_SCHEDULER": "0",
        "SLACK_SIGNING_SECRET": known.signing,
        "SLACK_BOT_TOKEN": known.bot_token,
        "SLACK_APP_TOKEN": known.app_token,
        "SLACK_API_URL": fake.api_url,
        "MICROSOFT_APP_ID": APP_ID,
        "MICROSOFT_APP_PASSWORD": known.ms_password,
        "MICROSOFT_APP_TENANT_ID": TENANT_A,
        "PERSONA_BOT_TEAMS_OPENID_METADATA_URL": issuer.metadata_url,
        "PERSONA_BOT_TEAMS_EMULATOR_OPENID_METADATA_URL": issuer.metadata_url,
        "PERSONA_BOT_TEAMS_ALLOWED_SERVICE_URLS": connector.url,
        **more,
    }


@contextlib.asynccontextmanager
async def fakes(known: Secrets) -> AsyncIterator[tuple[FakeSlackAPI, FakeBotConnector, FakeOpenId]]:
    fake = await FakeSlackAPI().start()
    fake.add_workspace("T1", known.bot_token, name="Tallyworks")
    fake.add_user("T1", "U1", "sam.seller@tallyworks.example", "sam.seller")
    fake.add_user("T1", "UADMIN", ADMIN_EMAIL, "ada.admin")
    fake.app_tokens.add(known.app_token)
    try:
        async with FakeBotConnector() as connector, FakeOpenId() as issuer:
            connector.add_member(ANN_ID, name="Ann Example", email="admin@example.com")
            yield fake, connector, issuer
    finally:
        await fake.close()


@contextlib.asynccontextmanager
async def running_bot(
    known: Secrets,
    settings: Settings,
    fake: FakeSlackAPI,
    connector: FakeBotConnector,
    issuer: FakeOpenId,
) -> AsyncIterator[Bot]:
    runtime = await asyncio.to_thread(Runtime.open, settings, seed=True)
    try:
        router = default_router(runtime)

        async def boom(turn: Turn) -> Reply:
            quoted = [known.bot_token, known.ms_password, known.dashboard, known.db_password]
            raise Boom(f"upstream refused {' / '.join(q for q in quoted if q)}")

        router.add("boom", boom, advertise=False)
        slack_config = load(settings)
        assert slack_config is not None and slack_config.socket_mode and slack_config.http
        slack = SlackAdapter(slack_config, runtime, router)
        tokens = TokenService(known.outbound_token)
        teams_config = TeamsConfig.from_settings(settings)
        teams = functools.partial(
            mount_teams,
            config=teams_config,
            credentials_factory=SwitchableCredentialsFactory(tokens, known.ms_password),
            retry=FAST_RETRY,
        )
        extensions = [
            Extension("slack", mount_web=lambda app, rt, r: slack.mount(app)),
            Extension("teams", mount_web=teams),
        ]
        app = create_app(runtime, router, extensions)
        async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
            yield Bot(client, runtime, fake, connector, issuer, known, tokens)
    finally:
        await asyncio.to_thread(runtime.close)


# the flows -----------------------------------------------------------------------------------


def link_in(text: str) -> str:
    match = re.search(r"https?://[^\s>|\"]+/dashboard\?t=[\w.%-]+", text)
    assert match, text
    parts = urlsplit(match.group(0))
    return f"{parts.path}?{parts.query}"


async def slack_flows(bot: Bot) -> str:
    """Slack through HTTP and Socket Mode, good and bad; the admin's dashboard link."""
    fake = bot.fake
    await fake.wait_for("apps.connections.open")
    assert await bot.slash("fiona") == 200
    assert await bot.slash("stats 7", user="UADMIN") == 200
    assert await bot.slash("dashboard", user="UADMIN") == 200
    [dm] = await fake.wait_for("chat.postMessage")
    link = link_in(json.dumps(dm.params))
    rate = actions_payload("pb:rate:0", "finance-fiona", response_url=fake.response_url("rated"))
    assert await bot.slack(interactivity_body(rate)) == 200
    await fake.wait_for("response_url", path="rated")
    for name in ("app_mention.json", "app_home_opened.json"):
        assert await bot.slack(json.dumps(event_body(name)), "application/json") == 200
    await fake.wait_for("chat.postEphemeral")
    await fake.wait_for("views.publish")
    form = dict(parse_qsl(slash_body("list", response_url=fake.response_url("socket"))))
    envelope = {"envelope_id": "env-1", "type": "slash_commands", "payload": form}
    await fake.socket_outbox.put({**envelope, "accepts_response_payload": True})
    await fake.wait_for_socket_ack("env-1")

    # Refused: forged, stale, replayed, malformed.
    body = slash_body("review fiona", user="UADMIN")
    assert await bot.slack(body, secret="not-the-signing-secret") == 401
    assert await bot.slack(body, timestamp=int(time.time()) - 600) == 401
    now = int(time.time())
    assert [await bot.slack(body, timestamp=now) for _ in range(2)] == [200, 401]
    assert await bot.slack("%%%&&&===") == 400

    # Slack failing: 500s, a refused token, a dropped connection.
    fake.fail("users.info", "internal_error", status=500)
    assert await bot.slash("carlos") == 200
    fake.fail("chat.postEphemeral", "fatal_error", status=500)
    mention = event_body("app_mention.json", event_id="Ev0SECOND", text="<@UBOT> list")
    assert await bot.slack(json.dumps(mention), "application/json") == 200
    await fake.wait_for("chat.postEphemeral", count=2)
    fake.fail("views.publish", "invalid_auth")
    home = event_body("app_home_opened.json", event_id="Ev0HOME2")
    assert await bot.slack(json.dumps(home), "application/json") == 200
    await fake.wait_for("views.publish", count=2)
    fake.fail("response_url", "internal_error", status=500)
    rate = actions_payload("pb:rate:1", "finance-fiona", response_url=fake.response_url("lost"))
    assert await bot.slack(interactivity_body(rate)) == 200
    await fake.wait_for("response_url", path="lost")
    fake.fail("chat.postMessage", "<disconnect>")
    assert await bot.slash("dashboard", user="UADMIN") == 200  # answered in place instead
    await fake.wait_for("chat.postMessage", count=2)

    assert await bot.slash("boom") == 200  # a crash in a handler: an apology
    return link


async def teams_flows(bot: Bot) -> None:
    """Teams: answers, forged tokens, the connector and Entra ID refusing the bot, a crash."""
    assert await bot.teams(bot.teams_message("fiona")) == 201
    assert await bot.teams(bot.teams_message("stats 7")) == 201  # Ann is an admin
    await bot.connector.wait_for(count=2)

    body = bot.teams_message("fiona")
    service = str(body["serviceUrl"])
    unknown_key = bot.issuer.token(audience=APP_ID, service_url=service, kid="x", key_name="x")
    wrong_audience = bot.issuer.token(audience="another-app", service_url=service)
    for forged in (unknown_key, wrong_audience, "not.a.jwt"):
        assert await bot.teams(body, token=forged) == 401

    bot.connector.fail_next(401)  # the connector refuses the bot's token
    assert await bot.teams(bot.teams_message("carlos")) == 201
    bot.connector.fail_next(500)
    assert await bot.teams(bot.teams_message("paula")) == 201
    bot.tokens.refuse = True  # Entra ID refuses the app's credentials
    assert await bot.teams(bot.teams_message("ivan")) == 201
    bot.tokens.refuse = False
    assert await bot.teams(bot.teams_message("boom")) == 201
    sent = await bot.connector.wait_for(count=3)
    assert all(r.headers.get("Authorization") == f"Bearer {bot.known.outbound_token}" for r in sent)


async def dashboard_flows(bot: Bot, link: str) -> None:
    assert await bot.get(link) == 200
    query = link.split("?", 1)[1]
    for path in ("/dashboard/summary.csv", "/dashboard/events.csv"):
        assert await bot.get(f"{path}?{query}") == 200
    assert await bot.get("/dashboard?t=1.9999999999.0000") == 403
    assert await bot.get("/metrics") == 200


async def outage_flows(bot: Bot, proxy: TcpProxy | None, database_url: str) -> None:
    """The database goes away while the bot is asked things, then comes back."""
    if proxy is not None:
        proxy.cut()
    else:
        files = sqlite_files(database_url)
        await asyncio.to_thread(bot.runtime.engine.dispose)
        for path in files:
            if path.exists():
                path.rename(path.with_name(path.name + ".away"))
    assert await bot.slash("stats 7", user="UADMIN") == 200
    assert await bot.slash("deal D-1 won 500") == 200
    assert await bot.get("/readyz") == 503
    assert await bot.teams(bot.teams_message("stats 7")) in (201, 503)
    if proxy is not None:
        proxy.restore()
    else:
        await asyncio.to_thread(bot.runtime.engine.dispose)
        for path in files:
            path.unlink(missing_ok=True)
            away = path.with_name(path.name + ".away")
            if away.exists():
                away.rename(path)

    async def ready() -> bool:
        return await bot.get("/readyz") == 200

    await eventually(ready, within=20, what="the database to come back (/readyz 200)", interval=0.1)


def sqlite_files(database_url: str) -> list[Path]:
    main_file = Path(urlsplit(database_url).path.removeprefix("/"))
    if not main_file.is_absolute():
        main_file = Path("/") / main_file
    return [main_file.with_name(main_file.name + suffix) for suffix in ("", "-wal", "-shm")]


# the tests -----------------------------------------------------------------------------------


async def test_serving_slack_teams_and_the_dashboard_logs_no_secret(
    database: tuple[str, TcpProxy | None],
) -> None:
    database_url, proxy = database
    known = secrets_for(database_url)
    async with fakes(known) as (fake, connector, issuer):
        settings = Settings.from_env(bot_env(known, database_url, fake, connector, issuer))
        with serve_logging(settings) as logs:
            async with running_bot(known, settings, fake, connector, issuer) as bot:
                link = await slack_flows(bot)
                await teams_flows(bot)
                await dashboard_flows(bot, link)
                await outage_flows(bot, proxy, database_url)
        posted = json.dumps([c.params for c in fake.calls]) + json.dumps(
            [r.body for r in connector.records]
        )
    shown, attempted = logs.shown.getvalue(), logs.attempted.getvalue()
    # The flows really ran into the failures they were meant to.
    for expected in (
        "Slack request refused: missing, wrong or stale signature",
        "Slack request refused: the same signed request was received before",
        "Slack message failed",
        "Teams answer to a message not delivered: HTTP 401",
        "Teams turn failed",
        "command 'boom' from slack failed",
        "command 'boom' from teams failed",
        "POST /slack/events",
    ):
        assert expected in shown, expected
    assert leaks(shown, known) == []
    quoted = 4 if known.db_password else 3
    assert shown.count(f"upstream refused {' / '.join([REDACTED] * quoted)}") == 2
    assert f"GET /dashboard?t={link.split('t=')[1].rsplit('.', 1)[0]}.{REDACTED}" in shown
    # Nothing but the deliberate crash (and the access log's links) tried to log a secret.
    assert leaks(attempted, known, links=False) == []
    # Replies and what the bot sent Slack and Teams (bodies; the tokens go in headers) hold
    # no secret; the dashboard link goes to the admin who asked, and only there.
    assert leaks("\n".join(bot.answers), known, links=False) == []
    assert leaks(posted, known, links=False) == []


def test_configuration_objects_show_no_secret() -> None:
    known = Secrets()
    password = quote(known.db_password or "", safe="")
    env = {
        "PERSONA_BOT_DATABASE_URL": f"postgresql://persona:{password}@db.internal:5432/personas",
        "PERSONA_BOT_DASHBOARD_SECRET": known.dashboard,
        "SLACK_SIGNING_SECRET": known.signing,
        "SLACK_BOT_TOKEN": known.bot_token,
        "SLACK_APP_TOKEN": known.app_token,
        "MICROSOFT_APP_ID": APP_ID,
        "MICROSOFT_APP_PASSWORD": known.ms_password,
        "MICROSOFT_APP_TENANT_ID": TENANT_A,
    }
    settings = Settings.from_env(env)
    oauth = Settings.from_env(
        {
            **env,
            "SLACK_BOT_TOKEN": "",
            "SLACK_CLIENT_ID": "1111.2222",
            "SLACK_CLIENT_SECRET": known.client_secret,
            "SLACK_STATE_SECRET": known.state_secret,
        }
    )
    teams = TeamsConfig.from_settings(settings)
    shown = [
        repr(settings),
        str(settings),
        f"{settings}",
        repr(oauth),
        repr(load(settings)),
        repr(load(oauth)),
        repr(teams),
        repr(bot_configuration(teams)),
        repr(SchedulerConfig.from_settings(settings)),
        repr(create_db_engine(settings.database_url)),
    ]
    assert leaks("\n".join(shown), known) == []
    # Still useful: which database, and that the rest of the configuration is there.
    assert "database_url='postgresql+psycopg://persona:***@db.internal:5432/personas'" in shown[0]
    assert "microsoft_app_id=" in shown[0] and "slack_client_id='1111.2222'" in shown[3]
    assert known.ms_password == bot_configuration(teams).APP_PASSWORD  # botbuilder gets it
    # The log filter knows the database password, as written and as URL-encoded.
    assert {known.db_password, password} <= set(settings.secrets)
    assert {known.client_secret, known.state_secret} <= set(oauth.secrets)


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """``main`` sets logging up for the process (writing to the captured stderr); put the
    test run's handlers back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        yield
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_the_command_line_prints_and_logs_no_secret(
    database: tuple[str, TcpProxy | None], capsys: pytest.CaptureFixture[str]
) -> None:
    database_url, _ = database
    known = secrets_for(database_url)
    env = {
        "PERSONA_BOT_DATABASE_URL": with_password(database_url, known.db_password),
        "PERSONA_BOT_DASHBOARD_SECRET": known.dashboard,
        "SLACK_SIGNING_SECRET": known.signing,
        "SLACK_BOT_TOKEN": known.bot_token,
        "MICROSOFT_APP_ID": APP_ID,
        "MICROSOFT_APP_PASSWORD": known.ms_password,
        "MICROSOFT_APP_TENANT_ID": TENANT_A,
    }
    closed_port = free_port()  # nothing listens there: the database is unavailable
    unreachable = {
        **env,
        "PERSONA_BOT_DATABASE_URL": (
            f"postgresql://persona:{quote(known.ms_password)}@127.0.0.1:{closed_port}/personas"
        ),
    }
    runs: list[tuple[list[str], dict[str, str], int]] = [
        (["migrate"], env, 0),
        (["lookup", "fiona"], env, 0),  # loads the sample personas
        (["health"], env, 0),
        (["stats", "--days", "7", "--json"], env, 0),
        (["dashboard-link"], env, 0),
        (["orgs"], env, 0),
        (["history", "fiona"], env, 0),
        (["migrate", "--check"], env, 0),
        (["health"], unreachable, 1),
        (["migrate"], unreachable, 1),
        (["serve"], {**env, "SLACK_BOT_TOKEN": f"xoxp-{known.bot_token}"}, 2),  # a user token
        (["serve"], {**env, "MICROSOFT_APP_TENANT_ID": ""}, 2),
    ]
    with logging_restored():
        for argv, environ, code in runs:
            assert main(["--log-level", "DEBUG", *argv], environ=environ) == code, argv
    out = capsys.readouterr()
    printed = out.out + out.err
    assert "cannot use the database postgresql+psycopg://persona:***@127.0.0.1" in printed
    assert "SLACK_BOT_TOKEN must be a bot token" in printed
    assert "/dashboard?t=" in out.out  # dashboard-link prints the link it was asked for
    assert leaks(printed, known, links=False) == []
    assert leaks(printed.replace(out.out, ""), known) == []  # and logs no link


async def test_oauth_installs_log_no_client_state_or_workspace_secret(
    database: tuple[str, TcpProxy | None],
) -> None:
    database_url, _ = database
    known = secrets_for(database_url)
    fake = await FakeSlackAPI().start()
    fake.oauth_clients["1111.2222"] = known.client_secret
    fake.oauth_codes["code-TA"] = fake.add_workspace("TA", known.workspace_token, name="A")
    fake.add_user("TA", "U1", "u1@a.example", "u1")
    env = {
        "PERSONA_BOT_DATABASE_URL": with_password(database_url, known.db_password),
        "PERSONA_BOT_DASHBOARD_SECRET": known.dashboard,
        "SLACK_SIGNING_SECRET": known.signing,
        "SLACK_CLIENT_ID": "1111.2222",
        "SLACK_CLIENT_SECRET": known.client_secret,
        "SLACK_STATE_SECRET": known.state_secret,
        "SLACK_API_URL": fake.api_url,
    }
    settings = Settings.from_env(env)
    answers: list[str] = []
    try:
        with serve_logging(settings) as logs:
            runtime = await asyncio.to_thread(Runtime.open, settings, seed=True)
            config = load(settings)
            assert config is not None and config.mode == "oauth"
            slack = SlackAdapter(config, runtime, default_router(runtime))
            extension = Extension("slack", mount_web=lambda app, rt, r: slack.mount(app))
            app = create_app(runtime, slack.router, [extension])
            async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:

                async def redirect(code: str, state: str, cookie: str) -> int:
                    resp = await client.get(
                        "/slack/oauth_redirect",
                        params={"code": code, "state": state},
                        headers={"Cookie": f"slack-app-oauth-state={cookie}"},
                    )
                    answers.append(await resp.text())
                    return resp.status

                async def start_install() -> str:
                    page = await client.get("/slack/install")
                    html = await page.text()
                    answers.append(html)
                    state = re.search(r"state=([^&\"]+)", html)
                    assert state, html
                    return state.group(1)

                state = await start_install()
                assert await redirect("code-TA", "made-up", "made-up") == 401
                assert await redirect("no-such-code", state, state) >= 400
                fake.fail("oauth.v2.access", "internal_error", status=500)
                failing = await start_install()
                assert await redirect("code-TA", failing, failing) >= 400
                fresh_state = await start_install()
                assert await redirect("code-TA", fresh_state, fresh_state) == 200, answers[-1]
                body = slash_body("fiona", team="TA", response_url=fake.response_url())
                resp = await client.post(
                    "/slack/events",
                    data=body,
                    headers=signed_headers(known.signing, body, content_type=FORM),
                )
                assert resp.status == 200
                answers.append(await resp.text())
                revoked = event_body("tokens_revoked.json", team_id="TA")
                revoked["team_id"] = "TA"
                raw = json.dumps(revoked)
                resp = await client.post(
                    "/slack/events",
                    data=raw,
                    headers=signed_headers(known.signing, raw, content_type="application/json"),
                )
                assert resp.status == 200
            await asyncio.to_thread(runtime.close)
    finally:
        await fake.close()
    assert [c.params["code"] for c in fake.of("oauth.v2.access")][-1] == "code-TA"
    shown = logs.shown.getvalue()
    assert "persona-bot was installed in Slack workspace TA" in shown
    assert leaks(shown, known) == []
    assert leaks(logs.attempted.getvalue(), known) == []
    assert leaks("\n".join(answers), known) == []


@pytest.mark.slow
async def test_persona_bot_serve_at_debug_logs_no_secret(
    database: tuple[str, TcpProxy | None],
) -> None:
    database_url, _ = database
    known = secrets_for(database_url)
    async with fakes(known) as (fake, connector, issuer):
        port = free_port()
        prefixes = ("SLACK_", "PERSONA_BOT_", "MICROSOFT_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        env.update(bot_env(known, database_url, fake, connector, issuer))
        env.update(PERSONA_BOT_SCHEDULER="1", PYTHONUNBUFFERED="1")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "--log-level", "DEBUG", "serve", "--port", str(port),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        serve = Serve(process, port)
        try:
            async with aiohttp.ClientSession() as session:
                await serve.ready(session)
                url = f"http://127.0.0.1:{port}"
                for text, secret, status in (
                    ("fiona", known.signing, 200),
                    ("stats 7", "not-the-signing-secret", 401),
                ):
                    body = slash_body(text, response_url=fake.response_url())
                    headers = signed_headers(secret, body, content_type=FORM)
                    async with session.post(f"{url}/slack/events", data=body, headers=headers) as r:
                        assert r.status == status, await r.text()
                activity = edited(payload("personal_message", connector.url), text="fiona")
                forged = issuer.token(audience="another-app", service_url=connector.url)
                known.inbound_tokens.append(forged)
                async with session.post(
                    f"{url}/api/messages",
                    json=activity,
                    headers={"Authorization": f"Bearer {forged}"},
                ) as r:
                    assert r.status == 401
                for path in ("/readyz", "/metrics"):
                    async with session.get(f"{url}{path}") as r:
                        assert r.status == 200
            assert await serve.stop(signal.SIGTERM) == 0, serve.output
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    output = serve.output
    banner = f"persona-bot serving on http://127.0.0.1:{port} (Slack: single workspace, "
    assert banner in output and f"Teams: SingleTenant app {APP_ID}" in output, output
    if known.db_password:
        assert "; database postgresql+psycopg://postgres:***@127.0.0.1:" in output
    assert "Slack Socket Mode connected" in output
    assert " DEBUG " in output  # the run really logged at DEBUG
    assert leaks(output, known) == []
