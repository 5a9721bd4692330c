"""Proactive Slack messages for the scheduler: review nudges, digests, change notes.

``SlackNotifier.send(recipient, reply)`` DMs a user by Slack user id, or by email through
``users.lookupByEmail``, or posts to a channel, with the workspace's bot token (the
configured one, or the OAuth installation of the recipient's organization). Connection
errors, 5xx answers and rate limits are retried by slack_sdk's async retry handlers, which
honour ``Retry-After``; a rate limit that asks for a longer wait than a scheduler job should
block is handed back as ``DeliveryError(retry_after=...)`` for the outbox to retry later.
A post that Slack never answers (a timeout) is not retried: it may have been posted, so it
is an ``uncertain`` DeliveryError for the outbox to report. Slack's errors map onto
``DeliveryError`` (may work later) and ``Undeliverable`` (will not).

``reply_retry_handlers`` are those of a reply through a ``response_url``: the same, and a
timed-out reply that replaces the original message is tried again (a repeat replaces it
with the same message, so it cannot show twice).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.model import Platform, Reply
from bot.notify import DeliveryError, Recipient, Undeliverable, unanswered

from .translate import message_from_reply

log = logging.getLogger(__name__)

MAX_WAIT = 30.0  # longer Retry-After hints go back to the caller instead of blocking a job
# Slack's answers that mean "this recipient cannot be reached", now or later.
UNREACHABLE = frozenset(
    {
        "users_not_found",
        "user_not_found",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "cannot_dm_bot",
        "user_disabled",
        "messages_tab_disabled",
        "restricted_action",
        "team_access_not_granted",
        "no_permission",
    }
)
# The workspace's token no longer works: nothing to retry until someone reinstalls.
REVOKED = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
TRANSIENT = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)

TokenFor = Callable[[int], Awaitable[str]]
SessionFor = Callable[[], "aiohttp.ClientSession | None"]


def retry_after(response: Any) -> float | None:
    """The ``Retry-After`` seconds of a Slack response, if it sent one."""
    headers = getattr(response, "headers", None) or {}
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return float(raw)
            except (TypeError, ValueError):
                return None
    return None


class BoundedRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's rate-limit retry (waits ``Retry-After``), but only for short waits."""

    def __init__(self, max_retry_count: int = 2, max_wait: float = MAX_WAIT) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after(response)
        return wait is None or wait <= self.max_wait


class ConnectionRetryHandler(AsyncConnectionErrorRetryHandler):
    """slack_sdk's retry of connection errors, except a timeout waiting for the answer
    (aiohttp's read timeouts are connection errors too): that call may have been acted on."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if error is not None and unanswered(error):
            return False
        return await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


def retry_handlers() -> list[AsyncRetryHandler]:
    return [
        ConnectionRetryHandler(max_retry_count=2),
        BoundedRateLimitRetryHandler(),
        AsyncServerErrorRetryHandler(max_retry_count=1),
    ]


class TimeoutRetryHandler(AsyncRetryHandler):
    """Retries a call that got no answer in time, with slack_sdk's backoff and jitter."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return error is not None and unanswered(error)


def reply_retry_handlers(*, replaces_original: bool) -> list[AsyncRetryHandler]:
    """Retries of a reply through a response_url: connection errors, rate limits (short
    ones), 500 and 503, and timeouts when the reply replaces the original message."""
    handlers: list[AsyncRetryHandler] = [
        ConnectionRetryHandler(max_retry_count=2),
        BoundedRateLimitRetryHandler(max_wait=10.0),
        AsyncServerErrorRetryHandler(max_retry_count=2),
    ]
    if replaces_original:
        handlers.append(TimeoutRetryHandler(max_retry_count=2))
    return handlers


def delivery_error(exc: SlackApiError, who: str) -> DeliveryError:
    """Slack's error answer as DeliveryError / Undeliverable (never with the token in it)."""
    error = str(exc.response.get("error", "unknown_error"))
    status = exc.response.status_code
    if status == 429 or error == "ratelimited":
        return DeliveryError(
            f"Slack rate-limited the message to {who}",
            retryable=True,
            retry_after=retry_after(exc.response),
        )
    if error in UNREACHABLE:
        return Undeliverable(f"Slack cannot deliver to {who}: {error}")
    if error in REVOKED:
        return DeliveryError(
            f"Slack refused persona-bot's token for {who} ({error}): reinstall the app",
            retryable=False,
        )
    if status >= 500 or error in TRANSIENT:
        return DeliveryError(f"Slack failed to deliver to {who}: {error}", retryable=True)
    return DeliveryError(f"Slack refused the message to {who}: {error}", retryable=False)


class SlackNotifier:
    """The Slack side of ``bot.notify.Notifier``."""

    platform: Platform = "slack"

    def __init__(
        self, token_for: TokenFor, api_url: str, session: SessionFor, *, timeout: float = 15.0
    ) -> None:
        self._token_for = token_for
        self._api_url = api_url
        self._session = session
        self._timeout = timeout  # the shared session's own limit applies when there is one
        self._handlers = retry_handlers()

    def client(self, token: str) -> AsyncWebClient:
        return AsyncWebClient(
            token=token,
            base_url=self._api_url,
            session=self._session(),
            timeout=math.ceil(self._timeout),
            retry_handlers=[*self._handlers],
        )

    async def send(self, recipient: Recipient, reply: Reply) -> str:
        """Deliver ``reply``; returns ``CHANNEL:TS``. Raises DeliveryError / Undeliverable."""
        who = recipient.describe()
        if not (recipient.user_id or recipient.email or recipient.channel):
            raise Undeliverable("no Slack user id, email or channel to deliver to")
        client = self.client(await self._token_for(recipient.org_id))
        message = message_from_reply(reply)
        message.pop("response_type")
        try:
            channel = await self._channel(client, recipient)
        except SlackApiError as exc:
            raise delivery_error(exc, who) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(
                f"cannot reach Slack to look up {who} ({type(exc).__name__})", retryable=True
            ) from None
        try:
            response = await client.chat_postMessage(
                channel=channel,
                text=message["text"],
                blocks=message["blocks"],
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            raise delivery_error(exc, who) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if unanswered(exc):
                raise DeliveryError(
                    f"Slack did not answer the message to {who} in time: it may have arrived",
                    uncertain=True,
                ) from None
            raise DeliveryError(
                f"cannot reach Slack to deliver to {who} ({type(exc).__name__})", retryable=True
            ) from None
        log.info("Slack message delivered to %s", who)
        return f"{response.get('channel', channel)}:{response.get('ts', '')}"

    async def _channel(self, client: AsyncWebClient, recipient: Recipient) -> str:
        if recipient.user_id:
            return recipient.user_id  # a user id posts to the app's DM with that user
        if recipient.email:
            found = await client.users_lookupByEmail(email=recipient.email)
            user_id = (found.get("user") or {}).get("id")
            if not user_id:
                raise Undeliverable(f"no Slack user has the email {recipient.email}")
            return str(user_id)
        assert recipient.channel is not None
        return recipient.channel.lstrip("#")
