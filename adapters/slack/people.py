"""Who a Slack user is by email, so persona owners and admins listed by email are recognised.

Slack sends only user ids; ``users.info`` (scopes ``users:read`` and ``users:read.email``)
gives the email. Answers are cached per workspace and user for an hour (failures for a few
minutes), and concurrent first requests of one user share a single API call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

Key = tuple[str, str]


class People:
    def __init__(self, *, ttl: float = 3600.0, miss_ttl: float = 300.0, size: int = 10_000):
        self._ttl = ttl
        self._miss_ttl = miss_ttl
        self._size = size
        self._cache: OrderedDict[Key, tuple[float, str | None]] = OrderedDict()
        self._pending: dict[Key, asyncio.Future[str | None]] = {}
        self._warned: set[str] = set()

    async def email(self, client: AsyncWebClient, team: str, user: str) -> str | None:
        """The user's email, or None when Slack does not tell (no scope, bot, guest...)."""
        key = (team, user)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            email, ttl = await self._fetch(client, user)
            self._remember(key, email, ttl)
            future.set_result(email)
            return email
        except BaseException:  # cancelled: waiters go on without an email
            future.set_result(None)
            raise
        finally:
            del self._pending[key]

    async def _fetch(self, client: AsyncWebClient, user: str) -> tuple[str | None, float]:
        try:
            response = await client.users_info(user=user)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown"))
            if error not in self._warned:  # once per cause, not once per user
                self._warned.add(error)
                log.warning(
                    "Slack users.info failed (%s): persona owners and admins listed by email "
                    "are not recognised until it works (scopes users:read, users:read.email)",
                    error,
                )
            return None, self._miss_ttl
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("Slack users.info could not be reached (%s)", type(exc).__name__)
            return None, self._miss_ttl
        user_data = response.data.get("user") if isinstance(response.data, dict) else None
        profile = user_data.get("profile") if isinstance(user_data, dict) else None
        email = profile.get("email") if isinstance(profile, dict) else None
        if not isinstance(email, str) or not email.strip():
            if not isinstance(profile, dict):  # not the answer Slack documents
                log.warning("Slack users.info answered without a user profile")
                return None, self._miss_ttl
            return None, self._ttl
        return email.strip().lower(), self._ttl

    def _remember(self, key: Key, email: str | None, ttl: float) -> None:
        self._cache[key] = (time.monotonic() + ttl, email)
        self._cache.move_to_end(key)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)

    def forget_team(self, team: str) -> None:
        """Drop a workspace's entries (it uninstalled the app)."""
        for key in [k for k in self._cache if k[0] == team]:
            del self._cache[key]
