"""Outbound Bot Connector clients: one per service URL, on one aiohttp session, allow-listed.

botbuilder's stock connector factory builds a new ``ConnectorClient`` (and msrest's
configuration and retry policy with it) for every turn and sends through ``requests`` in a
thread. Here a ``ConnectorPool`` keeps one client per (service URL, app id, audience), sends
through the web app's event loop with a time limit, never follows redirects, and refuses any
service URL the ``ServiceUrlPolicy`` does not allow, so a forged or tampered URL can never
receive the bot's token. Retries are the caller's decision (the notifier and the replies
to a turn retry 429, 5xx and lost connections with backoff). Each client serializes request bodies
with ``ConnectorSerializer``: msrest's serializer without its per-attribute costs (see there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
from botframework.connector import BotFrameworkConnectorConfiguration
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticationConstants,
    ConnectorFactory,
    ServiceClientCredentialsFactory,
)
from msrest.authentication import Authentication
from msrest.exceptions import SerializationError, raise_with_traceback
from msrest.pipeline import AsyncPipeline, Request, Response
from msrest.pipeline.async_abc import AsyncHTTPSender
from msrest.pipeline.universal import RawDeserializer
from msrest.serialization import Model, Serializer, full_restapi_key_transformer
from msrest.universal_http import ClientRequest
from msrest.universal_http.async_abc import AsyncClientResponse

from adapters.teams.config import ServiceUrlPolicy

USER_AGENT = "persona-bot (Microsoft-BotFramework/3.1)"
MAX_CLIENTS = 1000  # service URLs are a handful per region; this bounds a misbehaving peer


class ServiceUrlRefused(PermissionError):
    """A service URL outside the allowed Bot Connector hosts: nothing is sent there."""

    def __init__(self, url: object) -> None:
        super().__init__(f"service URL not allowed: {str(url)[:200]!r}")


class _Body(AsyncClientResponse):
    """An msrest response over a body already read (so the connection is released)."""

    def __init__(self, request: ClientRequest, response: aiohttp.ClientResponse, body: bytes):
        super().__init__(request, response)
        self.status_code = response.status
        self.headers = dict(response.headers)
        self.reason = response.reason
        self._body = body

    def body(self) -> bytes:
        return self._body

    def stream_download(self, chunk_size: Any = None, callback: Any = None) -> Any:
        raise TypeError("the Bot Connector client reads whole bodies; it never streams")


def access_token_needed(credentials: Authentication) -> bool:
    app_id = getattr(credentials, "microsoft_app_id", None)
    return bool(app_id) and app_id != AuthenticationConstants.ANONYMOUS_SKILL_APP_ID


class _Sender(AsyncHTTPSender):
    """Sends one msrest request through the shared aiohttp session, with the bot's token."""

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        credentials: Authentication,
        timeout: float,
    ) -> None:
        self._session = session
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def __aenter__(self) -> _Sender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def _token(self) -> str | None:
        if not access_token_needed(self._credentials):
            return None
        # MSAL answers from its cache almost always; when it has to ask Entra ID it blocks,
        # so it runs in a thread rather than on the event loop.
        getter = self._credentials.get_access_token  # type: ignore[attr-defined]
        token: str = await asyncio.to_thread(getter)
        return token

    async def send(self, request: Request, **config: Any) -> Response:
        http: ClientRequest = request.http_request
        headers = dict(http.headers or {})
        token = await self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self._session().request(
            http.method,
            http.url,
            headers=headers,
            data=http.data,
            timeout=self._timeout,
            allow_redirects=False,
        ) as response:
            body = await response.read()
        return Response(request, _Body(http, response, body))


# msrest, per turn ----------------------------------------------------------------------------
#
# Profiles of a Teams turn (a message in, a card out) found msrest's ``Serializer.body`` of
# the outgoing Activity costing more than the command itself (about 300 us of a turn's CPU):
#
# - client-side validation walks every attribute of every model, although no model of the
#   Bot Connector API declares a validation rule (so it can never fail);
# - ``_serialize`` visits all ~40 attributes of an Activity, most of them None, and for each
#   None copies its descriptor, splits its key with a regex, then raises and catches a
#   ValueError to leave it out.
#
# ``ConnectorSerializer`` keeps msrest's serializer and changes only that: validation off,
# and None attributes skipped before any of that work (msrest drops them anyway), with each
# model class's keys worked out once. Every other value goes through msrest's own
# ``serialize_data``, so the JSON sent is the same; tests compare both serializers on
# recorded activities and replies. ``use_connector_serializer`` installs it in a client.

_Plan = tuple[tuple[str, dict[str, Any], tuple[str, ...]], ...]


class ConnectorSerializer(Serializer):
    """msrest's serializer without the per-attribute costs of absent values (see above)."""

    def __init__(self, classes: dict[str, type] | None = None) -> None:
        super().__init__(classes)
        self.client_side_validation = False
        self._plans: dict[type, _Plan] = {}

    def _plan(self, cls: type[Model]) -> _Plan:
        plan = self._plans.get(cls)
        if plan is None:
            readonly = {
                name for name, rules in cls._validation.items() if rules.get("readonly", False)
            }
            plan = tuple(
                (attr, desc, tuple(full_restapi_key_transformer(attr, dict(desc), None)[0]))
                for attr, desc in cls._attribute_map.items()
                if attr not in readonly
            )
            self._plans[cls] = plan
        return plan

    def _serialize(self, target_obj: Any, data_type: str | None = None, **kwargs: Any) -> Any:
        if (
            data_type
            or not isinstance(target_obj, Model)
            or kwargs.get("keep_readonly", False)
            or kwargs.get("key_transformer", full_restapi_key_transformer)
            is not full_restapi_key_transformer
            or kwargs.setdefault("is_xml", target_obj.is_xml_model())
        ):
            return super()._serialize(target_obj, data_type, **kwargs)
        serialized: dict[str, Any] = {}
        attr = None
        try:
            for attr, desc, keys in self._plan(type(target_obj)):
                if attr == "additional_properties" and desc["key"] == "":
                    if target_obj.additional_properties is not None:
                        serialized.update(target_obj.additional_properties)
                    continue
                value = getattr(target_obj, attr)
                if value is None:
                    continue  # msrest's serialize_data raises ValueError: left out
                kwargs["serialization_ctxt"] = desc
                try:
                    new_attr = self.serialize_data(value, desc["type"], **kwargs)
                except ValueError as err:
                    if isinstance(err, SerializationError):
                        raise
                    continue
                # Nest flattened keys ("properties.name") as msrest does.
                for key in reversed(keys):
                    new_attr = {key: new_attr}
                nested_new, nested = new_attr, serialized
                for key in keys:
                    if key not in nested:
                        nested.update(nested_new)
                    nested_new = nested_new[key]
                    nested = nested[key]
        except (AttributeError, KeyError, TypeError) as err:
            name = type(target_obj).__name__
            message = f"Attribute {attr} in object {name} cannot be serialized."
            raise_with_traceback(SerializationError, message, err)
        return serialized


def use_connector_serializer(client: ConnectorClient) -> None:
    """Make a connector client serialize request bodies with ``ConnectorSerializer``."""
    serializer = ConnectorSerializer(client._serialize.dependencies)
    client._serialize = serializer
    client.conversations._serialize = serializer
    client.attachments._serialize = serializer


class ConnectorPool:
    """Connector clients shared by every turn and proactive send of one web app."""

    def __init__(
        self,
        credentials_factory: ServiceClientCredentialsFactory,
        policy: ServiceUrlPolicy,
        *,
        login_endpoint: str,
        validate_authority: bool = True,
        timeout: float = 10.0,
    ) -> None:
        self._credentials_factory = credentials_factory
        self.policy = policy
        self._login_endpoint = login_endpoint
        self._validate_authority = validate_authority
        self._timeout = timeout
        self._clients: dict[tuple[str, str, str], ConnectorClient] = {}
        self._http: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300),
                headers={"User-Agent": USER_AGENT},
            )
        return self._http

    async def client(self, service_url: str, app_id: str | None, audience: str) -> ConnectorClient:
        """The client for a service URL; ServiceUrlRefused when the URL is not allowed."""
        if not self.policy.allows(service_url):
            raise ServiceUrlRefused(service_url)
        key = (service_url, app_id or "", audience)
        client = self._clients.get(key)
        if client is None:
            credentials = await self._credentials_factory.create_credentials(
                app_id, audience, self._login_endpoint, self._validate_authority
            )
            sender = _Sender(self.session, credentials, self._timeout)

            def pipeline(config: BotFrameworkConnectorConfiguration) -> AsyncPipeline:
                return AsyncPipeline([config.user_agent_policy, RawDeserializer()], sender)

            config = BotFrameworkConnectorConfiguration(
                credentials, service_url, pipeline_type=pipeline
            )
            client = ConnectorClient(credentials, custom_configuration=config)
            use_connector_serializer(client)
            if len(self._clients) >= MAX_CLIENTS:
                self._clients.clear()
            self._clients[key] = client
        return client

    def factory(self, app_id: str | None, audience: str) -> PooledConnectorFactory:
        return PooledConnectorFactory(self, app_id, audience)

    async def close(self) -> None:
        self._clients.clear()
        if self._http is not None and not self._http.closed:
            await self._http.close()
        self._http = None


class PooledConnectorFactory(ConnectorFactory):
    """botbuilder's ConnectorFactory interface over the shared pool."""

    def __init__(self, pool: ConnectorPool, app_id: str | None, audience: str) -> None:
        self._pool = pool
        self._app_id = app_id
        self._audience = audience

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        return await self._pool.client(service_url, self._app_id, audience or self._audience)


class CachingCredentialsFactory(ServiceClientCredentialsFactory):
    """Keeps one credentials object per (app id, scope) so that MSAL's token cache is reused
    instead of asking Entra ID for a new token on every turn."""

    def __init__(self, inner: ServiceClientCredentialsFactory) -> None:
        self._inner = inner
        self._cache: dict[tuple[str, str, str, bool], Authentication] = {}

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(await self._inner.is_valid_app_id(app_id))

    async def is_authentication_disabled(self) -> bool:
        return bool(await self._inner.is_authentication_disabled())

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Authentication:
        key = (app_id or "", oauth_scope or "", login_endpoint or "", bool(validate_authority))
        credentials = self._cache.get(key)
        if credentials is None:
            credentials = await self._inner.create_credentials(
                app_id, oauth_scope, login_endpoint, validate_authority
            )
            self._cache[key] = credentials
        return credentials
