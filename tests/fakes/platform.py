"""A recording chat platform for the scheduler's tests, and the Notifiers that deliver to it.

``FakePlatform`` is a small aiohttp server on 127.0.0.1 (free port) that accepts proactive
messages the way chat.postMessage does: ``POST /api/messages.post`` with a JSON body, answered
``{"ok": true, "id": ...}``; an unknown recipient gets 404 ``users_not_found``. On demand it
answers 429 with ``Retry-After``, answers 500, or records a message and then never answers
(the platform took it but the sender died before hearing so). It records every request and
every delivery with its arrival time; ``wait_for`` polls with a deadline.

``HttpNotifier`` is the Notifier that posts there (what the real adapters do against Slack
and Teams); ``RecordingNotifier`` records in memory, for walks through simulated time.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from bot.model import Platform, Reply
from bot.notify import DeliveryError, Recipient, Undeliverable
from bot.plaintext import plain_text
from tests.polling import eventually

POST_PATH = "/api/messages.post"


def address_of(recipient: Recipient) -> str:
    return recipient.email or recipient.user_id or f"#{recipient.channel}"


@dataclass(frozen=True)
class Delivery:
    number: int
    key: str  # the outbox key the message carries
    to: str
    platform: str
    summary: str
    text: str
    at: float  # ``clock()`` on arrival
    sender: str | None = None


@dataclass
class Request:
    number: int
    key: str
    to: str
    status: int
    at: float
    retry_after: float | None = None


@dataclass
class FakePlatform:
    """The recording platform. ``known`` (if given) is everyone it can deliver to."""

    known: set[str] | None = None
    delay: float = 0.0  # seconds each accepted post takes, to interleave concurrent senders
    rate_limit_every: int = 0  # every Nth post gets 429 with Retry-After ``retry_after``
    retry_after: float = 1.0
    clock: Callable[[], float] = time.monotonic  # timestamps of requests and deliveries
    deliveries: list[Delivery] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    _plan: deque[tuple[int, float | None]] = field(default_factory=deque)
    _hold: bool = False
    _holding: list[asyncio.Event] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post(POST_PATH, self._post)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def close(self) -> None:
        for event in self._holding:
            event.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def answer_next(self, count: int, status: int = 429, retry_after: float | None = 1.0) -> None:
        """The next ``count`` posts get ``status`` (with ``Retry-After`` for 429)."""
        self._plan.extend([(status, retry_after)] * count)

    def hold_next(self) -> None:
        """Record the next accepted post, then never answer it (until ``close``)."""
        self._hold = True

    async def _post(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        number = len(self.requests) + 1
        key, to = str(body.get("key")), str(body.get("to"))
        now = self.clock()
        if not self._plan and self.rate_limit_every and number % self.rate_limit_every == 0:
            self._plan.append((429, self.retry_after))
        if self._plan:
            status, retry_after = self._plan.popleft()
            self.requests.append(Request(number, key, to, status, now, retry_after))
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            error = "ratelimited" if status == 429 else "internal_error"
            return web.json_response({"ok": False, "error": error}, status=status, headers=headers)
        if self.known is not None and to not in self.known:
            self.requests.append(Request(number, key, to, 404, now))
            return web.json_response({"ok": False, "error": "users_not_found"}, status=404)
        self.requests.append(Request(number, key, to, 200, now))
        if self.delay:
            await asyncio.sleep(self.delay)
        delivery = Delivery(
            number=len(self.deliveries) + 1,
            key=key,
            to=to,
            platform=str(body.get("platform")),
            summary=str(body.get("summary")),
            text=str(body.get("text")),
            at=now,
            sender=body.get("sender"),
        )
        self.deliveries.append(delivery)
        if self._hold:
            self._hold = False
            event = asyncio.Event()
            self._holding.append(event)
            await event.wait()
        return web.json_response({"ok": True, "id": f"m-{delivery.number}"})

    def keys(self) -> list[str]:
        return [d.key for d in self.deliveries]

    async def wait_for(
        self,
        condition: Callable[[], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 (a polling deadline, the fakes' convention)
        what: str = "deliveries",
    ) -> None:
        """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
        await eventually(
            condition,
            within=timeout,
            what=what,
            details=lambda: f"{len(self.deliveries)} deliveries, {len(self.requests)} requests",
        )


class HttpNotifier:
    """Posts each message to a ``FakePlatform``, mapping its answers the way the real
    adapters map Slack's and Teams': 404 -> Undeliverable, 429 -> retryable with
    Retry-After, 5xx and connection errors -> retryable, other 4xx -> permanent."""

    def __init__(self, platform: Platform, base_url: str, *, sender: str | None = None) -> None:
        self.platform = platform
        self.base_url = base_url.rstrip("/")
        self.sender = sender
        self._session: aiohttp.ClientSession | None = None

    async def send(self, recipient: Recipient, reply: Reply) -> str:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        body: dict[str, Any] = {
            "platform": self.platform,
            "to": address_of(recipient),
            "key": reply.data.get("outbox_key"),
            "summary": reply.summary,
            "text": plain_text(reply),
            "sender": self.sender,
        }
        try:
            async with self._session.post(self.base_url + POST_PATH, json=body) as resp:
                data = await resp.json()
                if resp.status == 200:
                    return str(data["id"])
                if resp.status == 404:
                    raise Undeliverable(f"{address_of(recipient)} is not known on {self.platform}")
                if resp.status == 429:
                    retry_after = float(resp.headers.get("Retry-After", "1"))
                    raise DeliveryError("rate limited", retry_after=retry_after)
                raise DeliveryError(
                    f"{self.platform} answered {resp.status} {data.get('error')}",
                    retryable=resp.status >= 500,
                )
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass(frozen=True)
class Sent:
    at: datetime
    to: str
    platform: str
    reply: Reply

    @property
    def key(self) -> str:
        return str(self.reply.data.get("outbox_key"))

    @property
    def kind(self) -> str:
        return self.key.split("/")[0]


class RecordingNotifier:
    """Records messages in memory at the runtime's (simulated) time; addresses outside
    ``known`` are Undeliverable."""

    def __init__(
        self, platform: Platform, clock: Callable[[], datetime], known: Iterable[str] | None = None
    ) -> None:
        self.platform = platform
        self.clock = clock
        self.known = set(known) if known is not None else None
        self.sent: list[Sent] = []
        self._ids = itertools.count(1)

    async def send(self, recipient: Recipient, reply: Reply) -> str:
        to = address_of(recipient)
        if self.known is not None and to not in self.known:
            raise Undeliverable(f"{to} is not known on {self.platform}")
        self.sent.append(Sent(self.clock(), to, self.platform, reply))
        return f"{self.platform}-{next(self._ids)}"
