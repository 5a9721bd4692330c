"""A fake Bot Connector: the REST API Teams' bots post their replies to.

Its URL is the ``serviceUrl`` of the activities a test sends, so every reply, typing
indicator, member lookup and proactive message of the bot lands here and is recorded with its
headers. ``fail_next(status, ...)`` makes the next sends answer 429 or 5xx and
``hang_next(...)`` holds them unanswered (and unprocessed) until the client gives up, either
for every send or only for one conversation or activity type; ``attempts`` records every
send, failed or not, with the moment it arrived. ``wait_for(...)`` polls the records with a
deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.polling import eventually


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    conversation_id: str
    body: dict[str, Any]
    headers: dict[str, str]
    reply_to: str | None = None
    at: float = field(default_factory=time.monotonic, compare=False)

    @property
    def type(self) -> str:
        return str(self.body.get("type", ""))

    @property
    def card(self) -> dict[str, Any] | None:
        for attachment in self.body.get("attachments") or []:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                return attachment.get("content")  # type: ignore[no-any-return]
        return None


@dataclass(frozen=True)
class Attempt:
    """One send as it arrived, whatever it was answered (None: never answered)."""

    conversation_id: str
    type: str
    body: dict[str, Any]
    at: float
    status: int | None = None


@dataclass
class _Failure:
    status: int
    retry_after: str | None = None
    hang: bool = False
    conversation: str | None = None  # only sends to this conversation
    kind: str | None = None  # only activities of this type

    def applies(self, conversation: str, kind: str) -> bool:
        return self.conversation in (None, conversation) and self.kind in (None, kind)


HANG_LIMIT = 60.0  # a held send is answered 503 after this long (or when the fake closes)


@dataclass
class FakeBotConnector:
    """Start with ``async with FakeBotConnector() as connector``; ``connector.url`` is the
    service URL to put in activities."""

    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: list[Recorded] = field(default_factory=list)
    member_lookups: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    hanging: int = 0  # sends being held unanswered right now
    _failures: list[_Failure] = field(default_factory=list)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _server: TestServer | None = None

    async def __aenter__(self) -> FakeBotConnector:
        app = web.Application()
        app.router.add_post("/v3/conversations", self._create_conversation)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._send)
        app.router.add_get("/v3/conversations/{conversation}/members/{member}", self._member)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()  # let held sends end, so the server can shut down at once
        if self._server is not None:
            await self._server.close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("/"))

    def fail_next(
        self,
        status: int,
        times: int = 1,
        retry_after: str | None = None,
        *,
        conversation: str | None = None,
        kind: str | None = None,
    ) -> None:
        """The next ``times`` sends (to ``conversation``, of activity type ``kind``, if
        given) answer ``status`` (and Retry-After, if given)."""
        self._failures.extend(
            _Failure(status, retry_after, conversation=conversation, kind=kind)
            for _ in range(times)
        )

    def hang_next(
        self, times: int = 1, *, conversation: str | None = None, kind: str | None = None
    ) -> None:
        """The next ``times`` sends (filtered as in ``fail_next``) are never answered: the
        connector holds them until the client gives up, and delivers nothing."""
        self._failures.extend(
            _Failure(503, hang=True, conversation=conversation, kind=kind) for _ in range(times)
        )

    def add_member(self, member_id: str, **fields: Any) -> None:
        self.members[member_id] = {"id": member_id, **fields}

    async def _record(self, request: web.Request, reply_to: str | None = None) -> Recorded:
        body = await request.json()
        record = Recorded(
            request.method,
            request.path,
            request.match_info.get("conversation", ""),
            body,
            dict(request.headers),
            reply_to,
        )
        self.records.append(record)
        return record

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        conversation = request.match_info.get("conversation", "")
        attempt = Attempt(conversation, str(body.get("type", "")), body, time.monotonic())
        failure = next((f for f in self._failures if f.applies(conversation, attempt.type)), None)
        if failure is None:
            await self._record(request, request.match_info.get("activity"))
            self.attempts.append(replace(attempt, status=201))
            return web.json_response({"id": f"activity-{next(self._ids)}"}, status=201)
        self._failures.remove(failure)
        if failure.hang:
            self.attempts.append(attempt)
            self.hanging += 1
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._release.wait(), HANG_LIMIT)
            finally:
                self.hanging -= 1
        else:
            self.attempts.append(replace(attempt, status=failure.status))
        headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
        return web.json_response(
            {"error": {"code": "ServiceError", "message": "try later"}},
            status=failure.status,
            headers=headers,
        )

    async def _create_conversation(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        member = (record.body.get("members") or [{}])[0].get("id", "someone")
        return web.json_response({"id": f"a:personal-{member}", "activityId": None}, status=201)

    async def _member(self, request: web.Request) -> web.Response:
        self.member_lookups += 1
        member = self.members.get(request.match_info["member"])
        if member is None:
            return web.json_response(
                {"error": {"code": "MemberNotFoundInConversation", "message": "not found"}},
                status=404,
            )
        return web.json_response(member)

    # reading what the bot sent ---------------------------------------------------------

    def sent(self, kind: str | None = "message") -> list[Recorded]:
        """Activities the bot sent (replies and proactive), optionally of one type."""
        return [
            r for r in self.records if "/activities" in r.path and (kind is None or r.type == kind)
        ]

    async def wait_for(
        self,
        predicate: Callable[[FakeBotConnector], bool] | None = None,
        *,
        count: int = 1,
        kind: str | None = "message",
        timeout: float = 5.0,  # noqa: ASYNC109 - a polling deadline, as every fake offers
    ) -> list[Recorded]:
        """Poll until ``predicate`` holds (default: ``count`` activities of ``kind``)."""
        of_kind = f" of type {kind}" if kind else ""
        expected = "what the test expects" if predicate else f"{count} activit(ies){of_kind}"
        await eventually(
            lambda: predicate(self) if predicate else len(self.sent(kind)) >= count,
            within=timeout,
            what=f"{expected} at the fake Bot Connector",
            details=lambda: f"got {[(r.method, r.path, r.type) for r in self.records]}",
        )
        return self.sent(kind)
