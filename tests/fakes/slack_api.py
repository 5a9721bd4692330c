"""A small local fake of Slack's Web API, response_url endpoints and Socket Mode server.

It answers the methods persona-bot calls the way Slack does (HTTP 200 with ``ok: true`` or
``ok: false`` and an ``error``; 429 with ``Retry-After`` when asked to), records every call
with the moment it arrived and what it was answered, and checks what Slack checks: the bot
token (each token belongs to one workspace), and Block Kit limits on every message and view
(an oversized message gets ``invalid_blocks``, as from Slack). ``wait_for(method)`` polls the
recorded calls with a deadline.

Faults are scripted per method (``response_url`` included), optionally for one channel or
response_url key only: ``fail(method, error, status=..., retry_after=..., times=N, to=...)``
answers the next N such calls with that error; ``DISCONNECT`` drops the connection instead,
and ``HANG`` holds the call unanswered (and unprocessed) until the client gives up.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from tests.polling import eventually

SCOPES = (
    "commands",
    "chat:write",
    "im:history",
    "app_mentions:read",
    "users:read",
    "users:read.email",
)
DISCONNECT = "<disconnect>"  # fail(method, DISCONNECT): drop the connection instead of answering
HANG = "<hang>"  # fail(method, HANG): never answer (until the fake closes or HANG_LIMIT passes)
HANG_LIMIT = 60.0
MESSAGE_METHODS = {"chat.postMessage", "chat.postEphemeral", "response_url"}
VIEW_METHODS = {"views.publish", "views.open", "views.push", "views.update"}


@dataclass
class Call:
    method: str  # "chat.postMessage", ... or "response_url"
    params: dict[str, Any]
    token: str | None = None
    path: str = ""
    at: float = field(default_factory=time.monotonic)
    status: int | None = None  # the HTTP status answered; None: never answered (hang, drop)
    ok: bool = False  # answered 200 and, for Web API methods, "ok": true


@dataclass
class Workspace:
    team_id: str
    name: str
    token: str
    bot_user_id: str
    users: dict[str, dict[str, str]] = field(default_factory=dict)  # user id -> name, email


@dataclass
class Failure:
    error: str
    status: int = 200
    retry_after: int | None = None
    to: str | None = None  # only calls to this channel (Web API) or response_url key


def _target(call: Call) -> str:
    """Where a call went: its channel, or the key of its response_url."""
    return call.path if call.method == "response_url" else str(call.params.get("channel", ""))


def _text_len(obj: Any) -> int:
    return len(obj.get("text", "")) if isinstance(obj, dict) else 0


def block_kit_problems(blocks: Any, limit: int = 50) -> list[str]:
    """What Slack would reject in ``blocks`` (a subset of its validation that matters here)."""
    problems: list[str] = []
    if blocks is None:
        return problems
    if not isinstance(blocks, list):
        return ["blocks must be a list"]
    if len(blocks) > limit:
        problems.append(f"{len(blocks)} blocks; at most {limit}")
    action_ids: list[str] = []
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "header":
            if block["text"]["type"] != "plain_text" or _text_len(block["text"]) > 150:
                problems.append(f"block {i}: header text over 150")
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"block {i}: section without text or fields")
            if "text" in block and not 1 <= _text_len(block["text"]) <= 3000:
                problems.append(f"block {i}: section text length {_text_len(block['text'])}")
            if "text" in block and not block["text"].get("text", "").strip():
                problems.append(f"block {i}: blank section text")
            fields = block.get("fields", [])
            if len(fields) > 10:
                problems.append(f"block {i}: {len(fields)} fields")
            problems += [f"block {i}: field over 2000" for f in fields if _text_len(f) > 2000]
            problems += [f"block {i}: blank field" for f in fields if not f["text"].strip()]
            accessory = block.get("accessory")
            image = accessory.get("image_url", "") if accessory else ""
            if accessory and accessory.get("type") == "image" and not image.startswith("https://"):
                problems.append(f"block {i}: image accessory without https url")
            if accessory and accessory.get("type") == "button":
                action_ids.append(accessory["action_id"])
        elif kind == "context":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= 10:
                problems.append(f"block {i}: context with {len(elements)} elements")
            problems += [
                f"block {i}: context text over 3000" for e in elements if _text_len(e) > 3000
            ]
        elif kind == "actions":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= 25:
                problems.append(f"block {i}: actions with {len(elements)} elements")
            for e in elements:
                action_ids.append(e.get("action_id", ""))
                if _text_len(e.get("text")) > 75:
                    problems.append(f"block {i}: button text over 75")
                if len(e.get("value", "")) > 2000:
                    problems.append(f"block {i}: button value over 2000")
                if len(e.get("action_id", "")) > 255:
                    problems.append(f"block {i}: action_id over 255")
        elif kind == "image":
            if not block.get("image_url", "").startswith("https://"):
                problems.append(f"block {i}: image without https url")
        elif kind == "input":
            problems += [f"block {i}: {p}" for p in input_problems(block)]
        elif kind == "divider":
            pass
        else:
            problems.append(f"block {i}: unknown type {kind!r}")
    if len(action_ids) != len(set(action_ids)):
        problems.append("action_ids are not unique")
    block_ids = [b["block_id"] for b in blocks if isinstance(b, dict) and "block_id" in b]
    if len(block_ids) != len(set(block_ids)):
        problems.append("block_ids are not unique")
    return problems


def input_problems(block: dict[str, Any]) -> list[str]:
    """What Slack checks in an input block and its element (the elements the bot uses)."""
    problems: list[str] = []
    if not 1 <= len(str(block.get("block_id", "x"))) <= 255:
        problems.append("block_id over 255")
    label = block.get("label") or {}
    if label.get("type") != "plain_text" or not 1 <= _text_len(label) <= 2000:
        problems.append("label missing or over 2000")
    if "hint" in block and _text_len(block["hint"]) > 2000:
        problems.append("hint over 2000")
    element = block.get("element") or {}
    kind = element.get("type")
    if kind == "plain_text_input":
        max_length = element.get("max_length", 3000)
        if not 1 <= max_length <= 3000:
            problems.append("max_length outside 1..3000")
        if len(element.get("initial_value", "")) > min(max_length, 3000):
            problems.append("initial_value longer than max_length")
    elif kind == "number_input":
        if not isinstance(element.get("is_decimal_allowed"), bool):
            problems.append("number_input without is_decimal_allowed")
        initial = element.get("initial_value")
        if initial is not None and not str(initial).lstrip("-").isdigit():
            problems.append(f"number_input initial_value {initial!r} is not a whole number")
    elif kind in ("radio_buttons", "static_select"):
        options = element.get("options") or []
        if not 1 <= len(options) <= (10 if kind == "radio_buttons" else 100):
            problems.append(f"{kind} with {len(options)} options")
        problems += ["option text over 75" for o in options if _text_len(o.get("text")) > 75]
        initial = element.get("initial_option")
        if initial is not None and initial not in options:
            problems.append("initial_option is not one of the options")
    else:
        problems.append(f"unknown input element {kind!r}")
    return problems


def view_problems(view: Any) -> list[str]:
    if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
        return ["view must be a modal or home view"]
    problems = block_kit_problems(view.get("blocks"), 100)
    if view["type"] == "modal" and _text_len(view.get("title")) > 24:
        problems.append("modal title over 24")
    for key in ("submit", "close"):
        if key in view and not 1 <= _text_len(view[key]) <= 24:
            problems.append(f"{key} text missing or over 24")
    inputs = any(b.get("type") == "input" for b in view.get("blocks") or [])
    if inputs and "submit" not in view:
        problems.append("a view with input blocks needs a submit button")
    if len(view.get("private_metadata", "")) > 3000:
        problems.append("private_metadata over 3000")
    if len(view.get("callback_id", "")) > 255:
        problems.append("callback_id over 255")
    return problems


class FakeSlackAPI:
    """The fake; ``await start()`` it, point ``SLACK_API_URL`` at ``api_url``."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.workspaces: dict[str, Workspace] = {}  # token -> workspace
        self.oauth_clients: dict[str, str] = {}  # client id -> secret
        self.oauth_codes: dict[str, Workspace] = {}  # code -> workspace it installs into
        self.missing_channels: set[str] = set()
        self.failures: dict[str, deque[Failure]] = defaultdict(deque)
        self.delays: dict[str, float] = {}
        self.hanging = 0  # calls being held unanswered right now
        self._release = asyncio.Event()
        self.app_tokens: set[str] = set()
        self.socket_outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.socket_acks: list[dict[str, Any]] = []
        self.socket_connections = 0
        self._ts = itertools.count(1)
        self._server: TestServer | None = None

    # set-up ----------------------------------------------------------------------------------

    async def start(self) -> FakeSlackAPI:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response_url)
        app.router.add_get("/link/", self._socket)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()
        return self

    async def close(self) -> None:
        self._release.set()  # let held calls end, so the server can shut down at once
        if self._server is not None:
            await self._server.close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, key: str = "r1") -> str:
        return f"{self.base_url}/response/{key}"

    def add_workspace(
        self, team_id: str, token: str, *, name: str | None = None, bot_user_id: str = "UBOT"
    ) -> Workspace:
        workspace = Workspace(team_id, name or f"Team {team_id}", token, bot_user_id)
        self.workspaces[token] = workspace
        return workspace

    def add_user(self, team_id: str, user_id: str, email: str | None, name: str = "") -> None:
        for workspace in self.workspaces.values():
            if workspace.team_id == team_id:
                workspace.users[user_id] = {"name": name or user_id.lower(), "email": email or ""}
                return
        raise KeyError(team_id)

    def fail(
        self,
        method: str,
        error: str,
        *,
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
        to: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (to channel or response_url key
        ``to``, if given) with an error, or ``DISCONNECT`` / ``HANG``."""
        for _ in range(times):
            self.failures[method].append(Failure(error, status, retry_after, to))

    def delivered(self, method: str, to: str | None = None) -> list[Call]:
        """The calls of ``method`` (to channel or response_url key ``to``) that succeeded."""
        return [c for c in self.of(method) if c.ok and (to is None or _target(c) == to)]

    def attempts(self, method: str, to: str) -> list[Call]:
        """Every call of ``method`` to channel or response_url key ``to``, failed or not."""
        return [c for c in self.of(method) if _target(c) == to]

    # inspection ------------------------------------------------------------------------------

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        method: str,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 (a polling deadline, as the brief names it)
        path: str | None = None,
    ) -> list[Call]:
        """The calls of ``method`` (to ``path``, for response_url) once there are ``count``
        of them; fails after ``timeout`` seconds."""

        def found() -> list[Call]:
            return [c for c in self.of(method) if path is None or c.path == path]

        await eventually(
            lambda: len(found()) >= count,
            within=timeout,
            what=f"{count} {method} call(s)",
            details=lambda: (
                f"got {len(found())}; calls so far: {sorted({c.method for c in self.calls})}"
            ),
        )
        return found()

    async def wait_for_socket_ack(
        self,
        envelope_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        def ack() -> dict[str, Any] | None:
            return next((a for a in self.socket_acks if a.get("envelope_id") == envelope_id), None)

        return await eventually(ack, within=timeout, what=f"a Socket Mode ack for {envelope_id}")

    # handlers --------------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        raw = await request.text()
        if raw:
            if request.content_type == "application/json":
                params.update(json.loads(raw))
            else:
                params.update(parse_qsl(raw, keep_blank_values=True))
        for key in ("blocks", "view"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    @staticmethod
    def _token(request: web.Request, params: dict[str, Any]) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:]
        token = params.get("token")
        return token if isinstance(token, str) else None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        token = self._token(request, params)
        call = Call(method, params, token, request.path)
        self.calls.append(call)
        if method in self.delays:
            await asyncio.sleep(self.delays[method])
        failure = self._next_failure(method, str(params.get("channel", "")))
        if failure is None:
            answer = self._answer(request, method, params, token)
        else:
            headers = await self._fault(request, failure)
            if headers is None:
                return web.Response(status=500)  # nobody is listening any more
            answer = web.json_response(
                {"ok": False, "error": failure.error}, status=failure.status, headers=headers
            )
        call.status = answer.status
        body = json.loads(answer.text or "{}") if answer.content_type == "application/json" else {}
        call.ok = answer.status == 200 and body.get("ok") is True
        return answer

    def _next_failure(self, method: str, to: str) -> Failure | None:
        """The first scripted failure of ``method`` that applies to ``to`` (taken off)."""
        queue = self.failures.get(method)
        for failure in queue or ():
            if failure.to is None or failure.to == to:
                assert queue is not None
                queue.remove(failure)
                return failure
        return None

    async def _fault(self, request: web.Request, failure: Failure) -> dict[str, str] | None:
        """Act out ``failure``: None when the call gets no answer (dropped or held), else the
        headers of the error answer (Retry-After, when scripted)."""
        if failure.error == DISCONNECT:  # the connection drops before any answer
            assert request.transport is not None
            request.transport.close()
            return None
        if failure.error == HANG:
            self.hanging += 1
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._release.wait(), HANG_LIMIT)
            finally:
                self.hanging -= 1
            return None
        return {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}

    def _answer(
        self, request: web.Request, method: str, params: dict[str, Any], token: str | None
    ) -> web.Response:
        if method == "oauth.v2.access":
            return self._oauth_access(request, params)
        if method == "apps.connections.open":
            if token not in self.app_tokens:
                return self._error("invalid_auth")
            return web.json_response(
                {"ok": True, "url": f"ws://127.0.0.1:{request.url.port}/link/"}
            )
        workspace = self.workspaces.get(token or "")
        if workspace is None:
            return self._error("not_authed" if not token else "invalid_auth")
        answer = getattr(self, "_" + method.replace(".", "_"), None)
        if answer is None:
            return web.json_response({"ok": True})
        return answer(workspace, params)  # type: ignore[no-any-return]

    @staticmethod
    def _error(error: str, **extra: Any) -> web.Response:
        return web.json_response({"ok": False, "error": error, **extra})

    def _oauth_access(self, request: web.Request, params: dict[str, Any]) -> web.Response:
        client_id, secret = params.get("client_id"), params.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if self.oauth_clients.get(str(client_id)) != secret:
            return self._error("invalid_client_id")
        workspace = self.oauth_codes.pop(str(params.get("code")), None)
        if workspace is None:
            return self._error("invalid_code")
        return web.json_response(
            {
                "ok": True,
                "app_id": "A0PERSONA",
                "authed_user": {"id": "UINSTALLER"},
                "scope": ",".join(SCOPES),
                "token_type": "bot",
                "access_token": workspace.token,
                "bot_user_id": workspace.bot_user_id,
                "team": {"id": workspace.team_id, "name": workspace.name},
                "enterprise": None,
                "is_enterprise_install": False,
            }
        )

    def _auth_test(self, ws: Workspace, params: dict[str, Any]) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "url": f"https://{ws.team_id.lower()}.slack.example/",
                "team": ws.name,
                "user": "persona-bot",
                "team_id": ws.team_id,
                "user_id": ws.bot_user_id,
                "bot_id": "B" + ws.bot_user_id[1:],
                "is_enterprise_install": False,
            }
        )

    def _user_json(self, ws: Workspace, user_id: str) -> dict[str, Any]:
        user = ws.users[user_id]
        return {
            "id": user_id,
            "team_id": ws.team_id,
            "name": user["name"],
            "real_name": user["name"].title(),
            "is_bot": False,
            "profile": {"email": user["email"], "real_name": user["name"].title()},
        }

    def _users_info(self, ws: Workspace, params: dict[str, Any]) -> web.Response:
        user_id = str(params.get("user", ""))
        if user_id not in ws.users:
            return self._error("user_not_found")
        return web.json_response({"ok": True, "user": self._user_json(ws, user_id)})

    def _users_lookupByEmail(self, ws: Workspace, params: dict[str, Any]) -> web.Response:
        email = str(params.get("email", "")).lower()
        for user_id, user in ws.users.items():
            if user["email"].lower() == email:
                return web.json_response({"ok": True, "user": self._user_json(ws, user_id)})
        return self._error("users_not_found")

    def _message_problems(self, params: dict[str, Any]) -> web.Response | None:
        problems = block_kit_problems(params.get("blocks"))
        if not params.get("text") and not params.get("blocks"):
            problems.append("no text and no blocks")
        if problems:
            return self._error("invalid_blocks", errors=problems)
        return None

    def _chat_postMessage(self, ws: Workspace, params: dict[str, Any]) -> web.Response:
        channel = str(params.get("channel", ""))
        if not channel or channel in self.missing_channels:
            return self._error("channel_not_found")
        if channel.startswith("U") and channel not in ws.users:
            return self._error("channel_not_found")
        bad = self._message_problems(params)
        if bad is not None:
            return bad
        opened = "D" + channel[1:] if channel.startswith("U") else channel
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        return web.json_response({"ok": True, "channel": opened, "ts": ts})

    def _chat_postEphemeral(self, ws: Workspace, params: dict[str, Any]) -> web.Response:
        if params.get("user") not in ws.users:
            return self._error("user_not_in_channel")
        bad = self._message_problems(params)
        if bad is not None:
            return bad
        return web.json_response({"ok": True, "message_ts": f"{int(time.time())}.000001"})

    def _view(self, ws: Workspace, params: dict[str, Any]) -> web.Response:
        problems = view_problems(params.get("view"))
        if problems:
            return self._error("invalid_arguments", response_metadata={"messages": problems})
        return web.json_response({"ok": True, "view": {"id": "V0001", **params["view"]}})

    _views_publish = _views_open = _views_push = _views_update = _view

    async def _response_url(self, request: web.Request) -> web.Response:
        params = await request.json()
        key = request.match_info["key"]
        call = Call("response_url", params, None, key)
        self.calls.append(call)
        failure = self._next_failure("response_url", key)
        if failure is not None:
            headers = await self._fault(request, failure)
            if headers is None:
                return web.Response(status=500)  # nobody is listening any more
            answer = web.Response(status=failure.status or 404, text=failure.error, headers=headers)
        elif block_kit_problems(params.get("blocks")):
            answer = web.Response(status=400, text="invalid_blocks")
        else:
            answer = web.json_response({"ok": True})
        call.status = answer.status
        call.ok = failure is None and answer.status == 200
        return answer

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.socket_connections += 1
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0PERSONA"}}
        )

        async def forward() -> None:
            while True:
                envelope = await self.socket_outbox.get()
                await ws.send_json(envelope)

        sender = asyncio.create_task(forward())
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self.socket_acks.append(json.loads(message.data))
        finally:
            sender.cancel()
        return ws
