"""Inbound authentication for /api/messages, on top of botbuilder's own token validation.

``ConfigurationBotFrameworkAuthentication`` validates the Bot Framework's JWT (issuer,
audience = our app id, the ``serviceurl`` claim, endorsements). Around it this module adds
what a public endpoint needs:

- ``SigningKeys`` replaces botframework-connector's OpenID metadata cache, which fetches the
  signing keys with blocking ``requests`` calls and no time limit. Keys are fetched with
  aiohttp within ``key_fetch_timeout``, refreshed daily, re-fetched at most every five
  minutes for an unknown key id, and kept when a refresh fails. No keys at all is
  ``KeysUnavailable`` (503); an unknown key is a PermissionError (401).
- ``TeamsAuthentication`` turns every failure of validation (malformed tokens, bad
  signatures, unknown keys, wrong audience, service URL not matching its claim) into a
  PermissionError rather than botbuilder's occasional crash, refuses activities whose
  service URL is not an allowed Bot Connector host, and hands out the shared connector pool
  instead of a new client per turn.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from botbuilder.schema import Activity
from botframework.connector.auth import (
    AuthenticateRequestResult,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor
from botframework.connector.skills import BotFrameworkClient
from jwt.algorithms import RSAAlgorithm

from adapters.teams.config import ServiceUrlPolicy
from adapters.teams.connector import ConnectorPool, ServiceUrlRefused

log = logging.getLogger(__name__)

MAX_DOCUMENT = 1024 * 1024  # an OpenID document or key set is a few kB


class KeysUnavailable(Exception):
    """The signing keys could not be fetched: a token cannot be checked right now."""


@dataclass(frozen=True)
class SigningKey:
    """What botframework's JwtTokenExtractor reads from its metadata object."""

    public_key: Any
    endorsements: list[str]


class SigningKeys:
    """The signing keys behind one OpenID metadata URL, fetched without blocking."""

    def __init__(
        self,
        metadata_url: str,
        *,
        timeout: float = 5.0,
        refresh_every: float = 24 * 3600,
        refetch_unknown_after: float = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.metadata_url = metadata_url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._refresh_every = refresh_every
        self._refetch_unknown_after = refetch_unknown_after
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._inflight: asyncio.Task[dict[str, SigningKey]] | None = None
        self.fetches = 0

    def install(self) -> None:
        """Make botframework's token validation use these keys for this metadata URL."""
        JwtTokenExtractor.metadataCache[self.metadata_url] = self

    async def get(self, key_id: str | None) -> SigningKey:
        now = self._clock()
        if not self._keys or now - self._fetched_at > self._refresh_every:
            await self._refresh(required=not self._keys)
        key = self._keys.get(key_id or "")
        if key is None and self._clock() - self._attempted_at > self._refetch_unknown_after:
            await self._refresh(required=False)
            key = self._keys.get(key_id or "")
        if key is None:
            raise PermissionError("token signed by an unknown key")
        return key

    async def _refresh(self, *, required: bool) -> None:
        task = self._inflight
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.ensure_future(self._fetch())
            self._inflight = task
        try:
            keys = await asyncio.shield(task)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc)[:200]}"
            if required:
                raise KeysUnavailable(f"signing keys unavailable ({reason})") from None
            log.warning(
                "Bot Framework signing keys not refreshed, keeping the old ones: %s", reason
            )
            return
        if keys:
            self._keys = keys
            self._fetched_at = self._clock()

    async def _fetch(self) -> dict[str, SigningKey]:
        self._attempted_at = self._clock()
        self.fetches += 1
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            document = await _get_json(session, self.metadata_url)
            jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
            if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                raise ValueError("OpenID document without a jwks_uri")
            key_set = await _get_json(session, jwks_uri)
        keys: dict[str, SigningKey] = {}
        for jwk in key_set.get("keys", []) if isinstance(key_set, dict) else []:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                continue
            try:
                public_key = RSAAlgorithm.from_jwk(json.dumps(jwk))
            except Exception as exc:  # one malformed key must not hide the others
                log.info("signing key %s skipped (%s)", jwk["kid"], type(exc).__name__)
                continue
            endorsements = jwk.get("endorsements") or []
            keys[jwk["kid"]] = SigningKey(public_key, [str(e) for e in endorsements])
        if not keys:
            raise ValueError("the key set holds no usable RSA keys")
        return keys


async def _get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url, allow_redirects=False) as response:
        response.raise_for_status()
        body = await response.content.read(MAX_DOCUMENT + 1)
    if len(body) > MAX_DOCUMENT:
        raise ValueError(f"{url} answered more than {MAX_DOCUMENT} bytes")
    return json.loads(body)


def app_id_of(claims_identity: ClaimsIdentity) -> str | None:
    """The bot's app id in a claims identity (audience for channels, appid otherwise)."""
    claims = claims_identity.claims or {}
    value = claims.get("aud") or claims.get("appid")
    return str(value) if value else None


class TeamsAuthentication(BotFrameworkAuthentication):
    """botbuilder's authentication with the guards a public endpoint needs (see module)."""

    def __init__(
        self,
        inner: BotFrameworkAuthentication,
        pool: ConnectorPool,
        policy: ServiceUrlPolicy,
        *,
        timeout: float = 12.0,
    ) -> None:
        self._inner = inner
        self._pool = pool
        self._policy = policy
        self._timeout = timeout
        self._token_clients: dict[str, UserTokenClient] = {}

    async def authenticate_request(
        self, activity: Activity, auth_header: str
    ) -> AuthenticateRequestResult:
        # botbuilder treats only None as "no header"; an empty string would crash it.
        header = auth_header.strip() if isinstance(auth_header, str) else None
        try:
            result = await asyncio.wait_for(
                self._inner.authenticate_request(activity, header or None), self._timeout
            )
        except (PermissionError, KeysUnavailable):
            raise
        except TimeoutError:
            raise KeysUnavailable("token validation took too long") from None
        except Exception as exc:
            raise PermissionError(f"invalid token ({type(exc).__name__})") from None
        if not self._policy.allows(activity.service_url):
            raise ServiceUrlRefused(activity.service_url)
        result.connector_factory = self.create_connector_factory(result.claims_identity)
        return result

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        raise PermissionError("streaming connections are not supported")

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return self._pool.factory(app_id_of(claims_identity), self.get_originating_audience())

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        # persona-bot never signs users in; build botbuilder's client once per app id
        # (it is costly) rather than on every turn.
        key = app_id_of(claims_identity) or ""
        client = self._token_clients.get(key)
        if client is None:
            client = await self._inner.create_user_token_client(claims_identity)
            self._token_clients[key] = client
        return client

    def create_bot_framework_client(self) -> BotFrameworkClient:
        return self._inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return str(self._inner.get_originating_audience())

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        try:
            return await self._inner.authenticate_channel_request(auth_header)
        except (PermissionError, KeysUnavailable):
            raise
        except Exception as exc:
            raise PermissionError(f"invalid token ({type(exc).__name__})") from None
