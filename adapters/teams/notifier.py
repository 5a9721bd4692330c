"""Proactive Teams messages for the scheduler: review nudges, digests, change notes.

``TeamsNotifier.send(recipient, reply)`` finds a stored conversation reference in the
recipient's organization (a channel by id; a person by AAD object id, Teams user id or
email) and continues that conversation with botbuilder's ``continue_conversation``. A person
the bot knows only from a team or group chat gets a personal chat opened for them
(``create_conversation``), which is then remembered.

A recipient without any stored reference, a reference whose service URL is not an allowed
Bot Connector host (a tampered row must not receive the bot's token), or a conversation the
connector says is gone is ``Undeliverable``. Rate limits (429), server errors (5xx) and
lost connections are retried with exponential backoff, honouring Retry-After; when the
attempts run out the error is a retryable ``DeliveryError`` for the outbox to try again
later. A send the connector never answers (a timeout) is not retried: the message may have
arrived, so it is an ``uncertain`` DeliveryError for the outbox to report.

``send_with_retries`` retries the bot's reply to a turn the same way, within the shorter
``REPLY_RETRY``, and a timed-out reply too: someone is waiting for that answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import (
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
    ConversationReference,
)
from msrest.exceptions import HttpOperationError

from adapters.teams.connector import ServiceUrlRefused
from adapters.teams.references import ReferenceBook, serialize_reference
from adapters.teams.translate import activity_from_reply
from bot.model import Platform, Reply
from bot.notify import DeliveryError, Recipient, Undeliverable, unanswered
from persona_store.teams_references import ReferenceRecord

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff: float = 1.0  # seconds before the second attempt; doubles each time
    max_wait: float = 30.0  # a longer Retry-After is left to the outbox

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return self.backoff * 2 ** (attempt - 1) * random.uniform(0.8, 1.2)


# A reply to a turn: the person is waiting, and the inbound request stays open meanwhile.
REPLY_RETRY = RetryPolicy(attempts=3, backoff=0.5, max_wait=5.0)


def _status(exc: HttpOperationError) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return int(status) if isinstance(status, int) else None


def _retry_after(exc: HttpOperationError) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    raw = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def _transient(exc: HttpOperationError) -> bool:
    status = _status(exc)
    return status is not None and (status == 429 or status >= 500)


async def send_with_retries(
    send: Callable[[], Awaitable[T]], policy: RetryPolicy, sleep: Sleep = asyncio.sleep
) -> T:
    """``send()``, tried again after a 429, a 5xx, a lost connection or a timeout, waiting
    as ``policy`` says (Retry-After first); the last failure is raised."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return await send()
        except (HttpOperationError, aiohttp.ClientError, TimeoutError) as exc:
            retry_after, problem = None, type(exc).__name__
            if isinstance(exc, HttpOperationError):
                if not _transient(exc):
                    raise
                retry_after, problem = _retry_after(exc), f"HTTP {_status(exc)}"
            if attempt == policy.attempts or (
                retry_after is not None and retry_after > policy.max_wait
            ):
                raise
            delay = policy.delay(attempt, retry_after)
            log.info("Teams reply not taken (%s); attempt %d in %.1fs", problem, attempt + 1, delay)
            await sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


class TeamsNotifier:
    """The ``Notifier`` of the Teams platform (see module)."""

    platform: Platform = "teams"

    def __init__(
        self,
        adapter: CloudAdapter,
        book: ReferenceBook,
        app_id: str,
        *,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.adapter = adapter
        self.book = book
        self.app_id = app_id
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    async def send(self, recipient: Recipient, reply: Reply) -> str:
        """Deliver ``reply``; the Bot Connector's activity id, or DeliveryError."""
        if recipient.platform not in (None, "teams"):
            raise Undeliverable(f"{recipient.describe()} is not a Teams recipient")
        if recipient.channel:
            record = await self.book.find_channel(recipient.org_id, recipient.channel)
            if record is None:
                raise Undeliverable(
                    f"persona-bot has no Teams conversation for channel {recipient.channel}: "
                    "add the app to that team or chat first"
                )
            return await self._with_retries(lambda: self._continue(record, reply))
        if not (recipient.user_id or recipient.email):
            raise Undeliverable("a Teams recipient needs a user id, an email or a channel")
        records = await self.book.find_user(
            recipient.org_id, user_id=recipient.user_id, email=recipient.email
        )
        if not records:
            raise Undeliverable(
                f"persona-bot has never seen {recipient.describe()} in Teams: they need to "
                "message the bot or install the app first"
            )
        personal = next((r for r in records if r.conversation_type == "personal"), None)
        if personal is not None:
            return await self._with_retries(lambda: self._continue(personal, reply))
        known = records[0]
        return await self._with_retries(lambda: self._open_chat(known, reply))

    async def _with_retries(self, attempt_once: Callable[[], Awaitable[str]]) -> str:
        policy = self.retry
        for attempt in range(1, policy.attempts + 1):
            retry_after: float | None = None
            try:
                return await attempt_once()
            except ServiceUrlRefused as exc:
                raise Undeliverable(f"stored Teams reference refused: {exc}") from None
            except HttpOperationError as exc:
                status = _status(exc)
                retry_after = _retry_after(exc)
                if status in (403, 404):
                    raise Undeliverable(
                        f"Teams refused the conversation (HTTP {status}): the app was removed "
                        "or the person left"
                    ) from None
                if status is None or not (status == 429 or status >= 500):
                    raise DeliveryError(
                        f"the Bot Connector answered HTTP {status}", retryable=False
                    ) from None
                problem = f"the Bot Connector answered HTTP {status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                if unanswered(exc):
                    raise DeliveryError(
                        "the Bot Connector did not answer in time: the message may have arrived",
                        uncertain=True,
                    ) from None
                problem = f"the Bot Connector could not be reached ({type(exc).__name__})"
            except PermissionError as exc:  # MSAL could not get the bot's token
                raise DeliveryError(f"no token for the bot: {exc}", retryable=False) from None
            if attempt == policy.attempts or (
                retry_after is not None and retry_after > policy.max_wait
            ):
                raise DeliveryError(problem, retryable=True, retry_after=retry_after)
            delay = policy.delay(attempt, retry_after)
            log.info("Teams send failed (%s); attempt %d in %.1fs", problem, attempt + 1, delay)
            await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _continue(self, record: ReferenceRecord, reply: Reply) -> str:
        reference = ConversationReference().deserialize(record.reference)
        # The column and the JSON are saved together; if they disagree, a row was edited.
        for url in (record.service_url, reference.service_url):
            if not self.book.policy.allows(url):
                raise ServiceUrlRefused(url)
        reference.service_url = record.service_url
        sent: dict[str, Any] = {}

        async def deliver(turn_context: TurnContext) -> None:
            # A new message, not a reply to the continuation event's made-up id.
            turn_context.activity.id = None
            try:
                response = await turn_context.send_activity(activity_from_reply(reply))
                sent["id"] = response.id if response is not None else ""
            except Exception as exc:  # handed back to the retry loop, not to on_turn_error
                sent["error"] = exc

        await self.adapter.continue_conversation(reference, deliver, self.app_id)
        if "error" in sent:
            raise sent["error"]
        return str(sent.get("id") or "")

    async def _open_chat(self, known: ReferenceRecord, reply: Reply) -> str:
        """Open (or find: Teams returns the same one) the personal chat with a person the
        bot saw in a team or group chat, send there, and remember it."""
        stored = ConversationReference().deserialize(known.reference)
        for url in (known.service_url, stored.service_url):
            if not self.book.policy.allows(url):
                raise ServiceUrlRefused(url)
        bot = stored.bot or ChannelAccount(id=f"28:{self.app_id}")
        user = ChannelAccount(id=known.user_id, aad_object_id=known.aad_object_id)
        parameters = ConversationParameters(
            is_group=False,
            bot=bot,
            members=[user],
            tenant_id=known.tenant_id,
            channel_data={"tenant": {"id": known.tenant_id}},
        )
        sent: dict[str, Any] = {}

        async def deliver(turn_context: TurnContext) -> None:
            sent["conversation"] = turn_context.activity.conversation.id
            turn_context.activity.id = None
            try:
                response = await turn_context.send_activity(activity_from_reply(reply))
                sent["id"] = response.id if response is not None else ""
            except Exception as exc:
                sent["error"] = exc

        await self.adapter.create_conversation(
            self.app_id,
            deliver,
            parameters,
            channel_id=stored.channel_id or "msteams",
            service_url=known.service_url,
        )
        if sent.get("conversation"):
            reference = ConversationReference(
                bot=bot,
                user=user,
                conversation=ConversationAccount(
                    id=sent["conversation"], conversation_type="personal", tenant_id=known.tenant_id
                ),
                channel_id=stored.channel_id or "msteams",
                service_url=known.service_url,
            )
            record = ReferenceRecord(
                org_id=known.org_id,
                tenant_id=known.tenant_id,
                conversation_id=sent["conversation"],
                conversation_type="personal",
                user_id=known.user_id,
                service_url=known.service_url,
                reference=serialize_reference(reference, known.tenant_id),
                aad_object_id=known.aad_object_id,
                email=known.email,
                user_name=known.user_name,
            )
            try:
                await self.book.save(record)
            except Exception as exc:  # the message went out; the next send opens it again
                log.warning("personal Teams chat not remembered (%s)", type(exc).__name__)
        if "error" in sent:
            raise sent["error"]
        return str(sent.get("id") or "")
