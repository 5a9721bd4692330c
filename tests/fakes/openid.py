"""A fake Bot Framework token issuer: an OpenID document, its signing keys, and tokens.

Tokens are signed like the Bot Framework's (RS256, ``kid`` header, issuer
https://api.botframework.com, audience = the bot's app id, a ``serviceurl`` claim), so the
bot's real validation code checks them. ``fail`` makes the key endpoints answer 500; ``hang``
makes them never answer (to prove the bot gives up in time).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://api.botframework.com"


@functools.cache
def signing_key(name: str) -> rsa.RSAPrivateKey:
    """An RSA key per name, made once per test run (key generation is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwk(key: rsa.RSAPrivateKey, kid: str, endorsements: list[str]) -> dict[str, Any]:
    public = key.public_key().public_numbers()
    return {
        "kty": "RSA",
        "use": "sig",
        "kid": kid,
        "n": _b64(public.n),
        "e": _b64(public.e),
        "endorsements": endorsements,
    }


@dataclass
class FakeOpenId:
    kid: str = "known-key"
    endorsements: list[str] = field(default_factory=lambda: ["msteams", "emulator"])
    fail: bool = False
    hang: bool = False
    requests: int = 0
    _server: TestServer | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> FakeOpenId:
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self._document)
        app.router.add_get("/keys", self._keys)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        if self._server is not None:
            await self._server.close()

    def _url(self, path: str) -> str:
        assert self._server is not None
        return str(self._server.make_url(path))

    @property
    def metadata_url(self) -> str:
        return self._url("/v1/.well-known/openidconfiguration")

    async def _gate(self) -> web.Response | None:
        self.requests += 1
        if self.hang:
            await self._release.wait()
        if self.fail:
            return web.json_response({"error": "down"}, status=500)
        return None

    async def _document(self, request: web.Request) -> web.Response:
        failed = await self._gate()
        return failed or web.json_response(
            {
                "issuer": ISSUER,
                "jwks_uri": self._url("/keys"),
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        failed = await self._gate()
        return failed or web.json_response(
            {"keys": [jwk(signing_key(self.kid), self.kid, self.endorsements)]}
        )

    def token(
        self,
        *,
        audience: str,
        service_url: str,
        kid: str | None = None,
        key_name: str | None = None,
        issuer: str = ISSUER,
        expires_in: int = 3600,
    ) -> str:
        """A signed channel token; ``key_name`` other than the kid signs with a key the
        issuer never published."""
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "serviceurl": service_url,
            "nbf": now - 10,
            "iat": now - 10,
            "exp": now + expires_in,
        }
        key = signing_key(key_name or kid or self.kid)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid or self.kid})
