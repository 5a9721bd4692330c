"""Proactive messages: the ``Notifier`` interface every platform adapter implements.

The scheduler (review nudges, digests) and change notes send through it without knowing the
platform: Slack posts with chat.postMessage, Teams continues a stored conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import aiohttp

from bot.model import Platform, Reply


@dataclass(frozen=True)
class Recipient:
    """Whom to tell: a user (by platform id or email) or a channel, in one organization."""

    org_id: int
    user_id: str | None = None
    email: str | None = None
    channel: str | None = None
    platform: Platform | None = None  # None: whichever platform can reach them

    def describe(self) -> str:
        who = self.user_id or self.email or (f"#{self.channel}" if self.channel else "nobody")
        return f"{who} ({self.platform})" if self.platform else who


class DeliveryError(Exception):
    """A send that failed. ``retryable`` failures (rate limits, 5xx, no connection) may
    succeed later; ``retry_after`` is the platform's own hint in seconds, when it gave one.
    ``uncertain`` ones reached the platform and got no answer (a timeout): the message may
    have arrived, and since no platform takes an idempotency key, sending it again could
    deliver it twice. They are never ``retryable``."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        retry_after: float | None = None,
        uncertain: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable and not uncertain
        self.retry_after = retry_after
        self.uncertain = uncertain


def unanswered(exc: BaseException) -> bool:
    """Whether a failed HTTP call timed out waiting for its answer (the platform may have
    acted on it) rather than while connecting (then nothing was sent)."""
    return isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ConnectionTimeoutError)


class Undeliverable(DeliveryError):
    """The recipient cannot be reached on this platform (unknown email, no stored reference)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@runtime_checkable
class Notifier(Protocol):
    platform: Platform

    async def send(self, recipient: Recipient, reply: Reply) -> str:
        """Deliver ``reply``; return the platform's message id. Raise DeliveryError."""
        ...
