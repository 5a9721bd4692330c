"""Wiring of the Teams adapter into the web app: ``POST /api/messages``.

botbuilder's ``CloudAdapter`` runs each activity through ``ConfigurationBotFrameworkAuthentication``
(configured explicitly from Settings, never from the environment) wrapped in
``TeamsAuthentication``, then through ``PersonaTeamsBot``. The route reads the request itself
instead of ``CloudAdapter.process`` so that a malformed body is a 4xx, never a 500:

- not JSON, not an object, or missing the fields every activity has: 400 (415 for another
  content type, 413 above the web app's body limit);
- no valid token while an app id is configured: 401, before anything is stored or counted;
- a service URL outside the allowed Bot Connector hosts: 403;
- signing keys that cannot be fetched: 503, so the Bot Framework tries again.

``on_turn_error`` is the last resort: it logs the crash and apologises in the conversation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web
from botbuilder.core import TurnContext, serializer_helper
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity, CallerIdConstants
from botframework.connector.auth import AuthenticationConstants, ServiceClientCredentialsFactory
from msrest.exceptions import HttpOperationError
from msrest.serialization import Model

from adapters.teams.auth import KeysUnavailable, SigningKeys, TeamsAuthentication
from adapters.teams.config import TeamsConfig
from adapters.teams.connector import CachingCredentialsFactory, ConnectorPool, ServiceUrlRefused
from adapters.teams.handler import PersonaTeamsBot
from adapters.teams.notifier import RetryPolicy, TeamsNotifier
from adapters.teams.references import ReferenceBook
from adapters.teams.translate import activity_from_reply
from bot import messages
from bot.model import Reply
from bot.router import Router
from bot.runtime import Runtime

log = logging.getLogger(__name__)

ROUTE = "/api/messages"


@dataclass
class TeamsApp:
    """Everything the Teams adapter built for one web app."""

    config: TeamsConfig
    adapter: CloudAdapter
    bot: PersonaTeamsBot
    book: ReferenceBook
    notifier: TeamsNotifier
    pool: ConnectorPool
    keys: tuple[SigningKeys, ...]


TEAMS = web.AppKey("teams", TeamsApp)


class BotConfiguration(SimpleNamespace):
    """The attributes botbuilder reads; its repr leaves the app password out."""

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "APP_PASSWORD")
        return f"BotConfiguration({shown})"


def bot_configuration(config: TeamsConfig) -> BotConfiguration:
    """The configuration object botbuilder's Configuration* classes read, all explicit."""
    login = AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX + (
        config.tenant_id or AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT
    )
    return BotConfiguration(
        APP_ID=config.app_id,
        APP_PASSWORD=config.app_password or "",
        APP_TENANTID=config.tenant_id or "",
        # Without an app id botbuilder switches authentication off only for this type.
        APP_TYPE=config.app_type if config.mode == "bot" else "MultiTenant",
        TO_CHANNEL_FROM_BOT_LOGIN_URL=login,
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER,
        OAUTH_URL=AuthenticationConstants.OAUTH_URL,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=config.openid_metadata_url,
        TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=config.emulator_openid_metadata_url,
        CALLER_ID=CallerIdConstants.public_azure_channel,
        VALIDATE_AUTHORITY=True,
    )


def build_teams(
    runtime: Runtime,
    router: Router,
    config: TeamsConfig,
    *,
    credentials_factory: ServiceClientCredentialsFactory | None = None,
    retry: RetryPolicy | None = None,
) -> TeamsApp:
    """Build the adapter, bot and notifier once (nothing here is rebuilt per turn)."""
    configuration = bot_configuration(config)
    credentials = CachingCredentialsFactory(
        credentials_factory or ConfigurationServiceClientCredentialFactory(configuration)
    )
    pool = ConnectorPool(
        credentials,
        config.service_urls,
        login_endpoint=configuration.TO_CHANNEL_FROM_BOT_LOGIN_URL,
        timeout=config.connector_timeout,
    )
    authentication = TeamsAuthentication(
        ConfigurationBotFrameworkAuthentication(configuration, credentials_factory=credentials),
        pool,
        config.service_urls,
        timeout=2 * config.key_fetch_timeout + 2,
    )
    keys = tuple(
        SigningKeys(url, timeout=config.key_fetch_timeout)
        for url in dict.fromkeys((config.openid_metadata_url, config.emulator_openid_metadata_url))
    )
    for key_set in keys:
        key_set.install()
    adapter = CloudAdapter(authentication)
    adapter.on_turn_error = on_turn_error
    book = ReferenceBook(runtime, config.service_urls)
    bot = PersonaTeamsBot(runtime, router, book, config)
    notifier = TeamsNotifier(adapter, book, config.app_id, retry=retry)
    return TeamsApp(config, adapter, bot, book, notifier, pool, keys)


async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
    """Last resort for a failure outside the router (which answers its own errors)."""
    activity = turn_context.activity
    kind = getattr(activity, "type", "?")
    if isinstance(error, aiohttp.ClientError | TimeoutError | HttpOperationError):
        # The Bot Connector did not take the answer; an apology would go the same way.
        log.warning("Teams answer to a %s not delivered: %s", kind, describe_failure(error))
        return
    log.error(
        "Teams turn failed: %s activity from channel %s",
        kind,
        getattr(activity, "channel_id", "?"),
        exc_info=error,
    )
    if kind not in ("message", "invoke"):
        return
    try:
        await turn_context.send_activity(
            activity_from_reply(Reply.text(messages.APOLOGY, kind="error"))
        )
    except Exception as exc:  # the conversation may be the very thing that failed
        log.error("apology not delivered either: %s", type(exc).__name__)


def describe_failure(error: Exception) -> str:
    if isinstance(error, HttpOperationError):
        response = getattr(error, "response", None)
        status = getattr(response, "status_code", None) or getattr(response, "status", None)
        return f"HTTP {status}"
    return type(error).__name__


def activity_problem(body: Any) -> str | None:
    """Why a request body is not a Bot Framework activity we can handle, or None."""
    if not isinstance(body, Mapping):
        return "the body must be a JSON object (an Activity)"
    if not isinstance(body.get("type"), str) or not body["type"]:
        return "the activity has no type"
    for name in ("serviceUrl", "channelId"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"the activity has no {name}"
    for name in ("conversation", "from", "recipient"):
        part = body.get(name)
        if not isinstance(part, Mapping) or not isinstance(part.get("id"), str) or not part["id"]:
            return f"the activity has no {name}.id"
    for name, kind in (
        ("text", str),
        ("entities", list),
        ("attachments", list),
        ("channelData", Mapping),
        ("membersAdded", list),
        ("membersRemoved", list),
    ):
        if body.get(name) is not None and not isinstance(body[name], kind):
            return f"the activity's {name} has the wrong type"
    for name in ("entities", "attachments", "membersAdded", "membersRemoved"):
        if any(not isinstance(item, Mapping) for item in body.get(name) or []):
            return f"the activity's {name} must hold objects"
    return None


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def messages_route(request: web.Request) -> web.StreamResponse:
    """``POST /api/messages``: one activity from the Bot Framework (see module)."""
    teams = request.app[TEAMS]
    if request.content_type != "application/json":
        return _error(415, "activities are application/json")
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply
        return _error(400, "the body is not JSON")
    problem = activity_problem(body)
    if problem:
        return _error(400, problem)
    try:
        activity = Activity().deserialize(body)
    except Exception:
        return _error(400, "the body is not a Bot Framework activity")
    auth_header = request.headers.get("Authorization", "")
    try:
        invoke = await teams.adapter.process_activity(auth_header, activity, teams.bot.on_turn)
    except ServiceUrlRefused:
        return _error(403, "service URL not allowed")
    except PermissionError as exc:
        log.debug("activity refused: %s", exc)
        return _error(401, "unauthorized")
    except KeysUnavailable as exc:
        log.warning("activity not checked: %s", exc)
        return web.json_response(
            {"error": "temporarily unavailable"}, status=503, headers={"Retry-After": "5"}
        )
    if invoke is not None:
        if invoke.status == 501:
            # botbuilder answers invokes the bot does not implement (task modules, message
            # extensions: features the manifest does not declare) with 501; for this bot they
            # are requests it cannot take, not a fault of its own.
            name = activity.name if isinstance(activity.name, str) else ""
            return _error(400, f"this bot does not handle invoke '{name[:80]}'")
        body = invoke.body
        # botbuilder's handlers serialize some invoke bodies themselves, not others.
        if isinstance(body, Model):
            body = serializer_helper(body)
        return web.json_response(body, status=invoke.status)
    return web.Response(status=201)


def mount_teams(
    app: web.Application,
    runtime: Runtime,
    router: Router,
    *,
    config: TeamsConfig | None = None,
    credentials_factory: ServiceClientCredentialsFactory | None = None,
    retry: RetryPolicy | None = None,
) -> str | None:
    """Mount ``/api/messages`` and register the notifier; the status line, or None when
    Teams is not configured. Raises SettingsError for configurations that cannot work."""
    config = config or TeamsConfig.from_settings(runtime.settings)
    if config.warning:
        log.warning("%s", config.warning)
    if config.mode == "off":
        return None
    runtime.home_workspaces.setdefault("teams", set()).update(config.home_tenants)
    teams = build_teams(
        runtime, router, config, credentials_factory=credentials_factory, retry=retry
    )
    app[TEAMS] = teams
    app.router.add_post(ROUTE, messages_route)

    async def close(app: web.Application) -> None:
        await teams.pool.close()

    app.on_cleanup.append(close)
    runtime.notifiers["teams"] = teams.notifier
    return config.status()
