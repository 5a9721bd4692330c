"""The Slack adapter: a slack-bolt AsyncApp mounted in persona-bot's one aiohttp web app.

Every listener is short: acknowledge, translate (``translate``), ``await
router.dispatch(command)``, translate back, respond. Bolt runs with
``process_before_response=True`` (its default mode polls for ``ack()`` every 10 ms, which puts
a floor under every request), so a listener's HTTP answer leaves when the listener returns:

- slash commands run the command with a deadline (2 s by default). A quick answer is the
  ack itself; a slow one is acked "Working on it…" and delivered through ``response_url``
  when it is ready. Either way Slack hears back within its 3 seconds.
- clicks, events and the App Home tab are acked at once and handled in a tracked background
  task (``serve`` waits for those tasks before it exits).

Requests are verified before Bolt even parses them (missing, wrong or stale signature, or
a slash command or click whose signed request was received before: 401; a body Slack would
never send: 400); slash commands of the single-workspace install then go straight to their
listener, without Bolt's dispatch (the hot path, see there); event ids are claimed in the
database before anything acts on them (Slack's retried deliveries are acknowledged and
dropped), and each workspace maps to an organization: the single-workspace install's team
to the default one, every OAuth-installed workspace to its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot import messages
from bot.errors import TemporarilyUnavailable
from bot.memo import RenderMemo, reused
from bot.model import Command, Reply, UserRef
from bot.notify import Undeliverable
from bot.permissions import role_of
from bot.router import Router
from bot.runtime import Runtime
from bot.tasks import stop_tasks
from persona_store import deliveries

from . import forms, oauth, texts
from .config import SlackConfig
from .home import home_view
from .notifier import SlackNotifier, reply_retry_handlers
from .people import People
from .replay import ReplayGuard
from .translate import (
    FEEDBACK_CALLBACK,
    MalformedPayload,
    Origin,
    command_from_action,
    command_from_event,
    command_from_origin,
    command_from_slash,
    feedback_from_submission,
    feedback_modal,
    message_from_reply,
    modal_from_reply,
    parse_action_id,
    parse_request_body,
    payload_team,
    payload_user,
)

log = logging.getLogger(__name__)

DEADLINE = 2.0  # answer in the ack if the command is done by then; Slack allows 3 s
DRAIN_TIMEOUT = 10.0
PRUNE_EVERY = 3600.0
EVENTS_PATH = "/slack/events"


def _pin_sdk_logging() -> None:
    # slack_sdk and Bolt log request headers, OAuth responses and installation rows (with
    # tokens) at DEBUG: keep them at INFO or above even when persona-bot runs at DEBUG.
    level = max(logging.INFO, logging.getLogger().getEffectiveLevel())
    for name in ("slack_sdk", "slack_bolt"):
        logging.getLogger(name).setLevel(level)


def _page_request(request: web.Request) -> AsyncBoltRequest:
    """Bolt's request for the OAuth pages (GETs): without the body, which they never read
    and which Bolt's reader would decode, failing on one that is not text."""
    return AsyncBoltRequest(
        body="",
        query=request.query_string,
        headers=request.headers,  # type: ignore[arg-type]
    )


def _is_dm(channel: str) -> bool:
    return channel.startswith("D")


class SharedBlocks(list[dict[str, Any]]):
    """The blocks of a memoized message (a persona card's), which later answers reuse: the
    fast lane keeps their JSON too."""


class _SlashAck(AsyncAck):
    """Bolt's ack for the slash-command fast lane: the same response, but the JSON of a
    message whose blocks it answered with before (a memoized persona card) is encoded once.

    It serializes the body Bolt's ack builds, in Bolt's key order, so the bytes Slack gets
    are the same; any other kind of answer is Bolt's own.
    """

    def __init__(self, bodies: RenderMemo[str]) -> None:
        super().__init__()
        self._bodies = bodies

    async def __call__(  # type: ignore[override]
        self,
        text: str | dict[str, Any] = "",
        blocks: list[dict[str, Any]] | None = None,
        response_type: str | None = None,
        **others: Any,
    ) -> BoltResponse:
        if others or not blocks or not isinstance(text, str) or not isinstance(blocks, list):
            return await super().__call__(
                text, blocks=blocks, response_type=response_type, **others
            )

        def encode() -> str:
            body: dict[str, Any] = {"text": text}
            if response_type:
                body["response_type"] = response_type
            body["blocks"] = blocks
            return json.dumps(body)

        if isinstance(blocks, SharedBlocks):
            body = self._bodies.get(blocks, (text, response_type), encode)
        else:  # made for this answer alone: nothing to keep
            body = encode()
        self.response = BoltResponse(status=200, body=body)
        return self.response


class _ClientWinsFilter(logging.Filter):
    """Drops Bolt's "token will be unused" warning: our client already carries the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("As you gave `client` as well")


class SlackAdapter:
    """One Bolt app, its web routes, background work and the Slack notifier."""

    def __init__(
        self,
        config: SlackConfig,
        runtime: Runtime,
        router: Router,
        *,
        deadline: float = DEADLINE,
    ) -> None:
        self.config = config
        self.runtime = runtime
        self.router = router
        self.deadline = deadline
        self.people = People()
        self.session: aiohttp.ClientSession | None = None
        self.socket: AsyncSocketModeHandler | None = None
        self.home_team: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._services: list[asyncio.Task[None]] = []
        self._identity: Mapping[str, Any] | None = None  # auth.test of SLACK_BOT_TOKEN
        self.fast_lane = True  # False: every request through Bolt (tests compare both)
        self._messages: RenderMemo[dict[str, Any]] = RenderMemo()
        self._bodies: RenderMemo[str] = RenderMemo()
        secret = config.signing_secret
        self._verifier = SignatureVerifier(secret) if secret else None
        self.replays = ReplayGuard() if config.replay_check else None
        _pin_sdk_logging()
        # Bolt copies this client's base URL, session and retry handlers into each request's
        # client, so SLACK_API_URL and the shared connection pool apply everywhere.
        self.client = AsyncWebClient(
            token=config.bot_token,
            base_url=config.api_url,
            timeout=math.ceil(config.http_timeout),
            retry_handlers=[AsyncConnectionErrorRetryHandler()],
        )
        self.installations = (
            oauth.installation_store(config, runtime, self._installed)
            if config.mode == "oauth"
            else None
        )
        self.bolt = self._build_bolt()
        self.notifier = SlackNotifier(
            self._token_for, config.api_url, lambda: self.session, timeout=config.http_timeout
        )
        self._register()

    # wiring ----------------------------------------------------------------------------

    def _build_bolt(self) -> AsyncApp:
        options: dict[str, Any] = {}
        if self.installations is not None:
            options["oauth_settings"] = oauth.oauth_settings(
                self.config, self.runtime, self.installations
            )
            options["installation_store_bot_only"] = True
            # Bolt's default authorize for installs asks Slack's auth.test about the stored
            # token on every request: a round trip to Slack before each answer. The same
            # authorize with its cache on asks once per token (an uninstall deletes the
            # installation, so a dropped token is never found, cached or not).
            options["authorize"] = AsyncInstallationStoreAuthorize(
                installation_store=self.installations,
                client_id=self.config.client_id,
                client_secret=self.config.client_secret,
                logger=logging.getLogger("slack_bolt.persona_bot"),
                bot_only=True,
                client=self.client,
                cache_enabled=True,
            )
        # Everything is passed explicitly: Bolt reads the environment only for what is not.
        # It still picks SLACK_BOT_TOKEN up from there and warns that the given client wins,
        # which is what we want; the filter keeps that one line out of every start-up log.
        bolt_logger = logging.getLogger("slack_bolt.persona_bot")
        if not any(isinstance(f, _ClientWinsFilter) for f in bolt_logger.filters):
            bolt_logger.addFilter(_ClientWinsFilter())
        return AsyncApp(
            name="persona-bot",
            logger=bolt_logger,
            signing_secret=self.config.signing_secret or "",
            client=self.client,
            process_before_response=True,
            user_facing_authorize_error_message=texts.NOT_INSTALLED,
            **options,
        )

    def _register(self) -> None:
        app = self.bolt
        app.use(self._before_listeners)
        app.error(self._on_error)
        app.command(re.compile(r"^/"))(self._on_command)
        app.action(re.compile(r".*"))(self._on_action)
        app.view(FEEDBACK_CALLBACK)(self._on_feedback)
        app.view(forms.FORM_CALLBACK)(self._on_form_submission)
        app.view(re.compile(r".*"))(self._on_other_view)
        app.event("app_mention")(self._on_message_event)
        app.event("message")(self._on_message_event)
        app.event("app_home_opened")(self._on_home_opened)
        app.event("app_uninstalled")(self._on_uninstalled)
        app.event("tokens_revoked")(self._on_tokens_revoked)
        app.event(re.compile(r".*"))(self._on_other_event)

    def mount(self, app: web.Application) -> str:
        """Add the routes and hooks to the web app; the status line for ``serve``."""
        if self.config.http:
            app.router.add_post(EVENTS_PATH, self.handle_events)
        if self.bolt.oauth_flow is not None:
            app.router.add_get(oauth.INSTALL_PATH, self.handle_install)
            app.router.add_get(oauth.REDIRECT_PATH, self.handle_oauth_redirect)
        app.on_startup.append(self._startup)
        app.on_cleanup.append(self._cleanup)
        self.runtime.notifiers["slack"] = self.notifier
        return self.config.describe()

    # web routes ------------------------------------------------------------------------

    async def handle_events(self, request: web.Request) -> web.Response:
        """``POST /slack/events``: verify, sanity-check, hand to Bolt."""
        raw = await request.read()
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:  # Slack only sends UTF-8; nor can it be verified
            log.info("Slack request refused: body is not UTF-8")
            return web.json_response({"error": "malformed request"}, status=400)
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        assert self._verifier is not None
        # slack_sdk's check raises (instead of failing) on a timestamp int() refuses ("²",
        # thousands of digits) and on a signature hmac.compare_digest refuses (non-ASCII).
        if not (
            timestamp.isascii()
            and timestamp.isdigit()
            and len(timestamp) <= 12
            and signature.isascii()
            and signature
            and self._verifier.is_valid(body, timestamp, signature)
        ):
            log.info("Slack request refused: missing, wrong or stale signature")
            return web.json_response({"error": "invalid signature"}, status=401)
        try:
            parsed = parse_request_body(body, request.content_type)
        except MalformedPayload as exc:
            log.info("Slack request refused: %s", exc)
            return web.json_response({"error": "malformed request"}, status=400)
        if (
            self.replays is not None
            and parsed.get("type") != "event_callback"  # retried by Slack; event ids dedupe
            and not self.replays.first_time(timestamp, signature)
        ):
            log.info("Slack request refused: the same signed request was received before")
            return web.json_response({"error": "replayed request"}, status=401)
        context = self._fast_lane_context(parsed)
        if context is not None:
            return await self._dispatch_slash(parsed, context)
        try:
            # From the text verified above: Bolt's own reader decodes the body again with
            # whatever charset the Content-Type names.
            bolt_request = AsyncBoltRequest(
                body=body,
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]
            )
            if bolt_request.body != parsed:  # Bolt's reader empties forms that mention "payload"
                bolt_request.body = parsed
                bolt_request.context = build_async_context(AsyncBoltContext({}), parsed)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # Bolt reads the ids (user, team, channel, ...) assuming Slack's types for them.
            log.info("Slack request refused: unreadable ids (%s)", type(exc).__name__)
            return web.json_response({"error": "malformed request"}, status=400)
        response = await self.bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    async def handle_install(self, request: web.Request) -> web.Response:
        flow = self.bolt.oauth_flow
        assert flow is not None
        return await to_aiohttp_response(await flow.handle_installation(_page_request(request)))

    async def handle_oauth_redirect(self, request: web.Request) -> web.Response:
        flow = self.bolt.oauth_flow
        assert flow is not None
        return await to_aiohttp_response(await flow.handle_callback(_page_request(request)))

    # lifecycle -------------------------------------------------------------------------

    async def _startup(self, app: web.Application) -> None:
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.http_timeout)
        )
        self.client.session = self.session
        if self.config.mode == "single":
            await self._learn_home_team()
        self._services.append(asyncio.create_task(self._prune_loop()))
        if self.config.socket_mode:
            self._services.append(asyncio.create_task(self._connect_socket()))

    async def _cleanup(self, app: web.Application) -> None:
        await stop_tasks(self._services)
        if self.socket is not None:
            await self.socket.close_async()
        await self.drain(within=DRAIN_TIMEOUT)
        if self.session is not None:
            await self.session.close()

    async def drain(self, *, within: float) -> None:
        """Wait for background replies (clicks, slow commands, events) to be delivered."""
        pending = set(self._tasks)
        if not pending:
            return
        _done, late = await asyncio.wait(pending, timeout=within)
        for task in late:
            task.cancel()
        if late:
            log.error("%d Slack replies were still running at shutdown", len(late))

    async def _learn_home_team(self) -> None:
        try:
            identity = await self.client.auth_test()
        except SlackApiError as exc:
            log.error(
                "Slack refused SLACK_BOT_TOKEN (%s): check the token of the installed app",
                exc.response.get("error"),
            )
            return
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning(
                "Slack auth.test could not be reached (%s); retrying later", type(exc).__name__
            )
            return
        self._set_home_team(str(identity.get("team_id", "")))
        if isinstance(identity.data, dict):
            self._identity = identity.data

    def _set_home_team(self, team: str) -> None:
        if team and self.home_team is None:
            self.home_team = team
            self.runtime.home_workspaces.setdefault("slack", set()).add(team)
            log.info("Slack workspace %s is this install's own (the default organization)", team)

    async def _connect_socket(self) -> None:
        # slack_sdk's client keeps trying (and reconnects later on its own) until closed.
        client = AsyncWebClient(base_url=self.config.api_url, timeout=10)
        self.socket = AsyncSocketModeHandler(
            self.bolt, app_token=self.config.app_token, web_client=client
        )
        await self.socket.connect_async()
        log.info("Slack Socket Mode connected")

    async def _prune_loop(self) -> None:
        while True:
            with contextlib.suppress(TemporarilyUnavailable):
                await self.runtime.db(deliveries.prune, self.runtime.engine)
            await asyncio.sleep(PRUNE_EVERY)

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _within_deadline(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = self._spawn(work)
        await asyncio.wait({task}, timeout=self.deadline)
        return task

    # slash commands of the single-workspace install: the hot path ---------------------------
    #
    # Profiles of a signed `/persona NAME` through `serve` showed Bolt's dispatch (a request
    # object that parses the body again, a context with a new Web API client, the middleware
    # chain with a second signature check, listener matching, keyword injection) costing
    # about as much CPU as the whole command. A slash command of the single-workspace
    # install needs none of it: handle_events has verified and parsed the request, and the
    # bot token's identity is known from auth.test at start-up. So it goes straight to the
    # same listener (`_on_command`) with Bolt's own context and ack objects, and Bolt's error
    # handler. Every other request (clicks, events, OAuth installs, org-wide installs, and
    # any slash command before auth.test has succeeded) goes through Bolt.

    def _fast_lane_context(self, parsed: Mapping[str, Any]) -> AsyncBoltContext | None:
        """Bolt's context for a slash command that may skip Bolt's dispatch, else None."""
        identity = self._identity
        command = parsed.get("command")
        if (
            identity is None
            or not self.fast_lane
            or not isinstance(command, str)
            or not command.startswith("/")
            or "type" in parsed  # an event or interactivity payload, never a slash command
            or parsed.get("is_enterprise_install") == "true"
        ):
            return None
        context = build_async_context(AsyncBoltContext(), dict(parsed))
        context["logger"] = self.bolt.logger
        context["token"] = self.config.bot_token
        context["client"] = self.client
        context.set_authorize_result(
            AuthorizeResult(
                enterprise_id=identity.get("enterprise_id"),
                team_id=identity.get("team_id"),
                bot_id=identity.get("bot_id"),
                bot_user_id=identity.get("user_id"),
                bot_token=self.config.bot_token,
                user_id=context.user_id,
            )
        )
        return context

    async def _dispatch_slash(
        self, body: dict[str, Any], context: AsyncBoltContext
    ) -> web.Response:
        """What Bolt's dispatch does for a slash command once it is authorized."""
        ack = _SlashAck(self._bodies)
        context["ack"] = ack
        try:
            await self._on_command(ack, body, context)
        except Exception as error:
            return await to_aiohttp_response(await self._on_error(error, body))
        if ack.response is None:  # every path of _on_command acks; never leave Slack waiting
            log.error("Slack slash command %r was not acknowledged", body.get("command"))
            return await to_aiohttp_response(await self._on_error(RuntimeError("no ack"), body))
        return await to_aiohttp_response(ack.response)

    def _slash_message(self, reply: Reply, origin: Origin, share: bool) -> dict[str, Any]:
        """The Block Kit answer to a slash command; a persona card (the same reply object
        for every lookup of it) is rendered once."""
        if not reused(reply):
            return message_from_reply(reply, origin=origin, share=share)

        def render() -> dict[str, Any]:
            message = message_from_reply(reply, origin=origin, share=share)
            message["blocks"] = SharedBlocks(message["blocks"])
            return message

        message = self._messages.get(reply, (origin, share), render)
        return dict(message)  # shared with later requests: callers get their own top level

    # middleware and error handling ---------------------------------------------------------

    async def _before_listeners(
        self, body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        if self.config.mode == "single" and self.home_team is None:
            result = context.authorize_result
            if result is not None and result.bot_token:
                self._set_home_team(result.team_id or "")
        event_id = body.get("event_id")
        if body.get("type") == "event_callback" and isinstance(event_id, str):
            try:
                first = await self.runtime.db(
                    deliveries.claim, self.runtime.engine, "slack", event_id
                )
            except TemporarilyUnavailable:
                return BoltResponse(status=503, body="")  # Slack will redeliver it
            if not first:
                log.info("Slack redelivered event %s; it was handled already", event_id)
                return BoltResponse(status=200, body="")
        await next()
        return None

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> BoltResponse:
        if isinstance(error, (aiohttp.ClientError, TimeoutError)):
            # Bolt checks the bot token with auth.test before any listener runs: when Slack's
            # Web API cannot be reached (egress blocked, a wrong SLACK_API_URL), say that.
            log.warning("Slack's Web API could not be reached (%s)", type(error).__name__)
            text = messages.SLACK_UNREACHABLE if body.get("command") else ""
            return BoltResponse(status=200, body=text)
        log.error("Slack request failed: %s", type(error).__name__, exc_info=error)
        text = messages.APOLOGY if body.get("command") else ""
        return BoltResponse(status=200, body=text)

    async def _guarded(self, work: Awaitable[Any], what: str) -> Any:
        try:
            return await work
        except MalformedPayload as exc:
            log.info("Slack %s ignored: %s", what, exc)
        except Exception:
            log.exception("Slack %s failed", what)
        return None

    async def _email(self, context: AsyncBoltContext, team: str, user: str) -> str | None:
        return await self.people.email(context.client, team, user)

    async def _respond(self, url: str | None, message: Mapping[str, Any]) -> bool:
        """Post through a response_url; False if it could not be delivered. Rate limits,
        server errors and lost connections are retried with backoff (see
        ``reply_retry_handlers``)."""
        if not url or not isinstance(url, str):  # it comes from the payload, as Slack sent it
            return False
        client = AsyncWebhookClient(
            url=url,
            session=self.session,
            timeout=math.ceil(self.config.http_timeout),
            retry_handlers=reply_retry_handlers(
                replaces_original=message.get("replace_original") is True
            ),
        )
        try:
            response = await client.send_dict(dict(message))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("Slack response_url could not be reached (%s)", type(exc).__name__)
            return False
        if response.status_code != 200:
            log.warning(
                "Slack refused a reply through response_url (%s %s)",
                response.status_code,
                (response.body or "")[:80],
            )
            return False
        return True

    # slash commands ------------------------------------------------------------------------

    async def _on_command(
        self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        task = await self._within_deadline(self._answer_slash(body, context))
        if task.done():
            await ack(**task.result())
            return
        await ack(response_type="ephemeral", text=texts.WORKING)
        self._spawn(self._deliver_later(task, body.get("response_url")))

    async def _answer_slash(
        self, body: dict[str, Any], context: AsyncBoltContext
    ) -> dict[str, Any]:
        try:
            command = command_from_slash(body, verbs=self.router.verbs)
        except MalformedPayload as exc:
            log.info("Slack slash command ignored: %s", exc)
            return {"response_type": "ephemeral", "text": texts.UNREADABLE}
        try:
            email = await self._email(context, command.conversation.workspace, command.user.id)
            command = dataclasses.replace(
                command, user=dataclasses.replace(command.user, email=email)
            )
            reply = await self.router.dispatch(command)
        except Exception:
            log.exception("Slack slash command %r failed", command.verb)
            return {"response_type": "ephemeral", "text": messages.APOLOGY}
        if reply.form is not None:
            return await self._open_editor_from_slash(body, context, reply)
        channel = command.conversation.channel
        return self._slash_message(reply, Origin(command.verb, command.args), not _is_dm(channel))

    async def _deliver_later(self, task: asyncio.Task[dict[str, Any]], url: str | None) -> None:
        message = await task
        await self._respond(url, {**message, "replace_original": True})

    # clicks ---------------------------------------------------------------------------------

    async def _on_action(
        self,
        ack: Callable[..., Awaitable[Any]],
        body: dict[str, Any],
        action: dict[str, Any],
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        user = (
            (body.get("user") or {}).get("id", "?") if isinstance(body.get("user"), dict) else "?"
        )
        log.info("Slack click %s by %s in %s", action.get("action_id"), user, context.team_id)
        self._spawn(self._guarded(self._answer_click(body, action, context), "click"))

    async def _answer_click(
        self, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        try:
            await self._run_click(body, action, context)
        except MalformedPayload as exc:
            log.info("Slack click ignored: %s", exc)
            unreadable = Reply.text(texts.UNREADABLE, kind="error")
            await self._respond(body.get("response_url"), message_from_reply(unreadable))

    async def _run_click(
        self, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        user = payload_user(body)
        email = await self._email(context, payload_team(body), user.id)
        ref = parse_action_id(str(action.get("action_id", "")))
        if ref.kind in ("share", "more"):
            origin = Origin.decode(str(action.get("value", "")))
            again = command_from_origin(body, origin, email=email)
            reply = await self.router.dispatch(again)
            if ref.kind == "share" and reply.kind != "error" and body.get("response_url"):
                shared = message_from_reply(reply, in_channel=True, shared_by=user.label)
                await self._respond(body["response_url"], {**shared, "replace_original": False})
                return
            await self._deliver(body, context, reply, origin)
            return
        command = command_from_action(body, action, email=email)
        if command is None:
            await self._deliver(body, context, Reply.text(texts.STALE_BUTTON, kind="error"))
            return
        reply = await self.router.dispatch(command)
        thumbs_down = command.verb == "rate" and command.args.endswith(" down")
        if (
            thumbs_down
            and reply.kind != "error"
            and await self._open_feedback(body, context, command, reply)
        ):
            return
        await self._deliver(body, context, reply, Origin(command.verb, command.args))

    async def _open_feedback(
        self, body: dict[str, Any], context: AsyncBoltContext, command: Command, reply: Reply
    ) -> bool:
        """👎: open the optional-comment modal; False when Slack would not open it."""
        trigger = body.get("trigger_id")
        if not isinstance(trigger, str):
            return False
        key = command.args.rsplit(" ", 1)[0]
        catalog = await self.runtime.catalogs.get(
            await self.runtime.org_for("slack", command.conversation.workspace)
        )
        persona = catalog.get(key)
        modal = feedback_modal(
            key,
            persona.name if persona else key,
            reply.summary,
            channel=command.conversation.channel,
        )
        try:
            await context.client.views_open(trigger_id=trigger, view=modal)
        except SlackApiError as exc:
            log.info("Slack would not open the feedback modal (%s)", exc.response.get("error"))
            return False
        return True

    async def _deliver(
        self,
        body: dict[str, Any],
        context: AsyncBoltContext,
        reply: Reply,
        origin: Origin | None = None,
    ) -> None:
        """Answer a click where it happened: in the conversation through response_url, or in
        a modal for clicks in App Home and in modals (which have no conversation)."""
        if reply.form is not None:
            if await self._open_editor_from_click(body, context, reply):
                return
            reply, origin = forms.not_opened(reply), None
        url = body.get("response_url")
        channel = (
            (body.get("channel") or {}).get("id", "")
            if isinstance(body.get("channel"), dict)
            else ""
        )
        if url:
            message = message_from_reply(
                reply, origin=origin, share=bool(channel) and not _is_dm(channel)
            )
            await self._respond(url, {**message, "replace_original": False})
            return
        view = body.get("view") if isinstance(body.get("view"), dict) else None
        trigger = body.get("trigger_id")
        modal = modal_from_reply(reply, origin=origin)
        try:
            if view is not None and view.get("type") == "modal":
                if origin is not None and origin.page > 1:
                    await context.client.views_update(view_id=view.get("id"), view=modal)
                else:
                    await context.client.views_push(trigger_id=trigger, view=modal)
            else:
                await context.client.views_open(trigger_id=trigger, view=modal)
            return
        except SlackApiError as exc:  # e.g. the trigger expired: tell them in a DM instead
            log.info("Slack would not show a modal (%s); sending a DM", exc.response.get("error"))
        user = payload_user(body).id
        message = message_from_reply(reply, origin=origin)
        message.pop("response_type")
        await context.client.chat_postMessage(channel=user, unfurl_links=False, **message)

    # the 👎 comment modal ----------------------------------------------------------------------

    async def _on_feedback(
        self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        task = await self._within_deadline(
            self._guarded(self._answer_feedback(body, context), "feedback")
        )
        if task.done():
            reply = task.result()
            if reply is None:
                await ack()
            else:
                await ack(response_action="update", view=modal_from_reply(reply))
            return
        await ack()
        self._spawn(self._guarded(self._dm_later(task, body, context), "feedback"))

    async def _answer_feedback(
        self, body: dict[str, Any], context: AsyncBoltContext
    ) -> Reply | None:
        user = payload_user(body)
        email = await self._email(context, payload_team(body), user.id)
        command = feedback_from_submission(body, email=email)
        if command is None:
            return None
        return await self.router.dispatch(command)

    async def _dm_later(
        self, task: asyncio.Task[Reply | None], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        reply = await task
        if reply is not None:
            message = message_from_reply(reply)
            message.pop("response_type")
            await context.client.chat_postMessage(channel=payload_user(body).id, **message)

    async def _on_other_view(self, ack: Callable[..., Awaitable[Any]]) -> None:
        await ack()

    # the persona editor ------------------------------------------------------------------

    async def _open_editor(
        self,
        context: AsyncBoltContext,
        reply: Reply,
        *,
        trigger: str | None,
        channel: str,
        response_url: str,
        view: dict[str, Any] | None = None,
    ) -> bool:
        """Show the editor of a form reply: in place of the editor's own notice it was
        reloaded from, on top of another modal, or as a new modal. False if Slack refused
        (a trigger is good for three seconds)."""
        assert reply.form is not None
        modal = forms.editor_view(reply.form, channel=channel, response_url=response_url)
        try:
            if view is not None and view.get("callback_id") in forms.EDITOR_CALLBACKS:
                await context.client.views_update(view_id=view.get("id"), view=modal)
            elif view is not None and view.get("type") == "modal":
                await context.client.views_push(trigger_id=trigger, view=modal)
            else:
                await context.client.views_open(trigger_id=trigger, view=modal)
        except SlackApiError as exc:
            log.info("Slack would not open the editor (%s)", exc.response.get("error"))
            return False
        return True

    async def _open_editor_from_slash(
        self, body: dict[str, Any], context: AsyncBoltContext, reply: Reply
    ) -> dict[str, Any]:
        """``/persona edit NAME`` and ``/persona new``: the modal, and a line in the channel
        (or a button that opens it, if Slack would not)."""
        opened = await self._open_editor(
            context,
            reply,
            trigger=str(body.get("trigger_id") or "") or None,
            channel=str(body.get("channel_id") or ""),
            response_url=str(body.get("response_url") or ""),
        )
        return message_from_reply(reply if opened else forms.not_opened(reply))

    async def _open_editor_from_click(
        self, body: dict[str, Any], context: AsyncBoltContext, reply: Reply
    ) -> bool:
        """An "Edit" button (on a card, a nudge, App Home or the editor's notice)."""
        view = body.get("view") if isinstance(body.get("view"), dict) else None
        meta = forms.FormMeta.of_view(view)
        channel = body.get("channel")
        channel_id = str(channel.get("id") or "") if isinstance(channel, dict) else ""
        return await self._open_editor(
            context,
            reply,
            trigger=str(body.get("trigger_id") or "") or None,
            channel=channel_id or (meta.channel if meta else ""),
            response_url=str(body.get("response_url") or (meta.response_url if meta else "")),
            view=view,
        )

    async def _on_form_submission(
        self, ack: Callable[..., Awaitable[Any]], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """The editor's Save: answered in the acknowledgement when the save is done within
        the deadline (inline errors need that); otherwise "Saving…", then the result."""
        task = await self._within_deadline(self._save_form(body, context))
        if not task.done():
            meta = forms.FormMeta.of_view(body.get("view")) or forms.FormMeta("", {})
            await ack(response_action="update", view=forms.saving_view(meta))
            self._spawn(self._guarded(self._finish_slow_save(task, body, context), "editor"))
            return
        reply, meta = task.result()
        await ack(**forms.submission_ack(reply, meta, body.get("view") or {}))
        if reply.kind == "card":
            self._spawn(self._guarded(self._post_saved(body, context, reply, meta), "editor"))

    async def _save_form(
        self, body: dict[str, Any], context: AsyncBoltContext
    ) -> tuple[Reply, forms.FormMeta]:
        try:
            user = payload_user(body)
            email = await self._email(context, payload_team(body), user.id)
            command, meta = forms.form_submission(body, email=email)
        except MalformedPayload as exc:
            log.info("Slack editor submission ignored: %s", exc)
            return Reply.text(texts.UNREADABLE, kind="error"), forms.FormMeta("", {})
        return await self.router.dispatch(command), meta

    async def _finish_slow_save(
        self,
        task: asyncio.Task[tuple[Reply, forms.FormMeta]],
        body: dict[str, Any],
        context: AsyncBoltContext,
    ) -> None:
        reply, meta = await task
        if reply.kind == "card":
            await self._post_saved(body, context, reply, meta)
        view = body.get("view") or {}
        try:
            await context.client.views_update(
                view_id=view.get("id"), view=forms.after_slow_save(reply, meta)
            )
        except SlackApiError as exc:  # e.g. they closed the modal meanwhile
            log.info("Slack editor not updated after a slow save (%s)", exc.response.get("error"))
            if reply.kind != "card":
                message = message_from_reply(reply)
                message.pop("response_type")
                await context.client.chat_postMessage(channel=payload_user(body).id, **message)

    async def _post_saved(
        self,
        body: dict[str, Any],
        context: AsyncBoltContext,
        reply: Reply,
        meta: forms.FormMeta,
    ) -> None:
        """The saved card, to its editor only: in the conversation the editor was opened
        from, else (or if that no longer works) as a direct message."""
        channel = meta.channel
        message = message_from_reply(
            reply,
            origin=Origin("lookup", reply.persona_key or ""),
            share=bool(channel) and not _is_dm(channel),
        )
        if meta.response_url and await self._respond(
            meta.response_url, {**message, "replace_original": False}
        ):
            return
        message.pop("response_type")
        await context.client.chat_postMessage(
            channel=payload_user(body).id, unfurl_links=False, **message
        )

    # mentions and direct messages ----------------------------------------------------------

    async def _on_message_event(
        self,
        ack: Callable[..., Awaitable[Any]],
        body: dict[str, Any],
        event: dict[str, Any],
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        command = command_from_event(
            event,
            team_id=str(body.get("team_id") or context.team_id or ""),
            verbs=self.router.verbs,
            bot_user_id=context.bot_user_id,
        )
        if command is not None:
            self._spawn(self._guarded(self._answer_message(command, event, context), "message"))

    async def _answer_message(
        self, command: Command, event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        email = await self._email(context, command.conversation.workspace, command.user.id)
        command = dataclasses.replace(command, user=dataclasses.replace(command.user, email=email))
        reply = await self.router.dispatch(command)
        if reply.form is not None:  # a message brings no trigger to open a modal with
            reply = forms.open_button(reply)
        channel = command.conversation.channel
        direct = event.get("type") == "message"
        message = message_from_reply(
            reply, origin=Origin(command.verb, command.args), share=not direct
        )
        message.pop("response_type")
        thread = command.conversation.thread
        if direct:
            await context.client.chat_postMessage(
                channel=channel, thread_ts=thread, unfurl_links=False, **message
            )
        else:
            await context.client.chat_postEphemeral(
                channel=channel, user=command.user.id, thread_ts=thread, **message
            )

    # App Home ---------------------------------------------------------------------------

    async def _on_home_opened(
        self,
        ack: Callable[..., Awaitable[Any]],
        body: dict[str, Any],
        event: dict[str, Any],
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        if event.get("tab", "home") == "home" and isinstance(event.get("user"), str):
            team = str(body.get("team_id") or context.team_id or "")
            self._spawn(self._guarded(self._publish_home(team, event["user"], context), "home"))

    async def _publish_home(self, team: str, user_id: str, context: AsyncBoltContext) -> None:
        user = UserRef(user_id, "", await self._email(context, team, user_id))
        org_id = await self.runtime.org_for("slack", team)
        role = role_of(user, self.runtime.settings, "slack")
        view = await home_view(self.runtime, org_id, user, role)
        await context.client.views_publish(user_id=user_id, view=view)

    # uninstalls ---------------------------------------------------------------------------

    async def _on_uninstalled(
        self, ack: Callable[..., Awaitable[Any]], context: AsyncBoltContext
    ) -> None:
        team = context.team_id or ""
        if self.installations is not None:
            await self.installations.async_delete_all(
                enterprise_id=context.enterprise_id, team_id=team
            )
            log.info(
                "persona-bot was uninstalled from Slack workspace %s: installation deleted", team
            )
        else:
            log.warning(
                "persona-bot was uninstalled from Slack workspace %s: SLACK_BOT_TOKEN no longer "
                "works; reinstall the app or remove the Slack settings",
                team,
            )
        self.people.forget_team(team)
        await ack()

    async def _on_tokens_revoked(
        self, ack: Callable[..., Awaitable[Any]], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        team = context.team_id or ""
        tokens = event.get("tokens") or {}
        if self.installations is not None:
            if tokens.get("bot"):  # the bot token is also kept on the installation rows
                await self.installations.async_delete_all(
                    enterprise_id=context.enterprise_id, team_id=team
                )
            for user_id in tokens.get("oauth") or ():
                await self.installations.async_delete_installation(
                    enterprise_id=context.enterprise_id, team_id=team, user_id=user_id
                )
        log.info("Slack revoked persona-bot's tokens in workspace %s", team)
        await ack()

    async def _on_other_event(self, ack: Callable[..., Awaitable[Any]]) -> None:
        await ack()

    # organizations and tokens -------------------------------------------------------------

    async def _installed(self, installation: Any) -> None:
        team = installation.team_id
        if team:
            await self.runtime.org_for("slack", team, installation.team_name)
            log.info("persona-bot was installed in Slack workspace %s", team)

    async def _token_for(self, org_id: int) -> str:
        if self.config.bot_token:
            return self.config.bot_token
        assert self.installations is not None
        for team in await self.runtime.db(oauth.teams_of, self.runtime.engine, org_id):
            bot = await self.installations.async_find_bot(enterprise_id=None, team_id=team)
            if bot is not None and bot.bot_token:
                return str(bot.bot_token)
        raise Undeliverable(
            "persona-bot is not installed in a Slack workspace of this organization"
        )
