"""Teams configuration: whether the adapter runs, in which mode, and where it may send.

The rules (also in the README):

- ``MICROSOFT_APP_ID`` set: the bot runs with Bot Framework authentication; every inbound
  activity must carry a valid token. SingleTenant (the default) needs the password and the
  tenant id; MultiTenant the password; UserAssignedMSI the tenant id.
- No app id and a loopback bind: Bot Framework Emulator mode, without authentication.
- No app id on any other address: refused when Teams credentials are partly set (a password
  or tenant without an app id is a mistake to fix, not to guess around); otherwise Teams stays
  off with a warning.

Outbound calls (replies, proactive messages, member lookups) carry the bot's token, so they
only go to Microsoft's Bot Connector hosts, plus URLs listed in
``PERSONA_BOT_TEAMS_ALLOWED_SERVICE_URLS`` (a local fake in tests) and, in emulator mode,
loopback URLs (the Emulator listens on localhost and no token exists in that mode).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from bot.settings import Settings, SettingsError, is_loopback, seconds

Mode = Literal["bot", "emulator", "off"]

# The public OpenID documents of the Bot Framework (channel tokens) and of Entra ID (tokens
# the Emulator and skills present). Settings override them, for sovereign clouds and tests.
CHANNEL_OPENID_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
EMULATOR_OPENID_URL = (
    "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
)

ALLOWED_SERVICE_URLS_ENV = "PERSONA_BOT_TEAMS_ALLOWED_SERVICE_URLS"
OPENID_URL_ENV = "PERSONA_BOT_TEAMS_OPENID_METADATA_URL"
EMULATOR_OPENID_URL_ENV = "PERSONA_BOT_TEAMS_EMULATOR_OPENID_METADATA_URL"
CONNECTOR_TIMEOUT_ENV = "PERSONA_BOT_TEAMS_CONNECTOR_TIMEOUT"

# Exact hosts of the Teams Bot Connector (public cloud, GCC, GCC High, DoD). Exact, not
# "*.trafficmanager.net": anyone can register a name under that Azure domain.
BOT_CONNECTOR_HOSTS = frozenset(
    {
        "smba.trafficmanager.net",
        "smba.infra.gcc.teams.microsoft.com",
        "smba.infra.gov.teams.microsoft.us",
        "smba.infra.dod.teams.microsoft.us",
    }
)
# Microsoft-owned domains of the other Bot Framework channels and the government clouds.
BOT_FRAMEWORK_DOMAINS = ("botframework.com", "botframework.us", "botframework.azure.us")

EMULATOR_TENANT = "emulator"


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an absolute http(s) URL without credentials, else None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.lower().rstrip("."), port or default


@dataclass(frozen=True)
class ServiceUrlPolicy:
    """Which service URLs the bot may talk to (and so hand its token to)."""

    extra: tuple[str, ...] = ()
    allow_loopback: bool = False  # emulator mode only: no token exists to leak

    def allows(self, url: str | None) -> bool:
        if not url or not isinstance(url, str) or len(url) > 500:
            return False
        # Asked several times per turn, about the same few URLs: answered from a cache.
        return _allows(self, url)

    def _decide(self, url: str) -> bool:
        origin = _origin(url)
        if origin is None:
            return False
        scheme, host, port = origin
        if scheme == "https" and port == 443:
            if host in BOT_CONNECTOR_HOSTS:
                return True
            if any(host.endswith("." + domain) for domain in BOT_FRAMEWORK_DOMAINS):
                return True
        if self.allow_loopback and is_loopback(host):
            return True
        path = urlsplit(url).path or "/"
        for allowed in self.extra:
            if _origin(allowed) == origin and path.startswith(urlsplit(allowed).path or "/"):
                return True
        return False


@functools.lru_cache(maxsize=1024)
def _allows(policy: ServiceUrlPolicy, url: str) -> bool:
    return policy._decide(url)


def _urls(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(part.strip() for part in raw.replace(";", ",").split(",") if part.strip())


def _check_url(name: str, url: str) -> str:
    """An https URL, or http on loopback (local fakes and the Emulator)."""
    origin = _origin(url)
    if origin is None:
        raise SettingsError(f"{name}: {url!r} is not an absolute http(s) URL")
    if origin[0] != "https" and not is_loopback(origin[1]):
        raise SettingsError(f"{name}: {url!r} must use https (http only on 127.0.0.1)")
    return url


@dataclass(frozen=True)
class TeamsConfig:
    """Everything the Teams adapter needs, decided once from Settings."""

    mode: Mode
    app_id: str = ""
    app_password: str | None = field(default=None, repr=False)
    tenant_id: str | None = None
    app_type: str = "SingleTenant"
    openid_metadata_url: str = CHANNEL_OPENID_URL
    emulator_openid_metadata_url: str = EMULATOR_OPENID_URL
    service_urls: ServiceUrlPolicy = ServiceUrlPolicy()
    warning: str | None = None
    key_fetch_timeout: float = 5.0  # seconds for the OpenID document and signing keys
    connector_timeout: float = 10.0  # seconds per Bot Connector call
    typing_after: float = 0.4  # show "typing" when a command takes longer than this

    @classmethod
    def from_settings(cls, settings: Settings) -> TeamsConfig:
        """Decide the mode; raise SettingsError for configurations that cannot be right."""
        extra = settings.extra
        app_id = (settings.microsoft_app_id or "").strip()
        password = settings.microsoft_app_password
        tenant = settings.microsoft_app_tenant_id
        app_type = settings.microsoft_app_type
        allowed = tuple(
            _check_url(ALLOWED_SERVICE_URLS_ENV, u)
            for u in _urls(extra.get(ALLOWED_SERVICE_URLS_ENV))
        )
        openid = _check_url(
            OPENID_URL_ENV, extra.get(OPENID_URL_ENV, "").strip() or CHANNEL_OPENID_URL
        )
        emulator_openid = _check_url(
            EMULATOR_OPENID_URL_ENV,
            extra.get(EMULATOR_OPENID_URL_ENV, "").strip() or EMULATOR_OPENID_URL,
        )
        common = {
            "openid_metadata_url": openid,
            "emulator_openid_metadata_url": emulator_openid,
            "app_type": app_type,
            "connector_timeout": seconds(extra, CONNECTOR_TIMEOUT_ENV, 10.0, 0.1, 120),
        }
        if app_id:
            _check_credentials(app_type, password, tenant)
            warning = None
            if app_type == "MultiTenant":
                warning = (
                    "MICROSOFT_APP_TYPE=MultiTenant: new multi-tenant bot registrations are "
                    "deprecated; register the bot as SingleTenant."
                )
            return cls(
                mode="bot",
                app_id=app_id,
                app_password=password,
                tenant_id=tenant,
                service_urls=ServiceUrlPolicy(extra=allowed),
                warning=warning,
                **common,  # type: ignore[arg-type]
            )
        partly = [
            name
            for name, value in (
                ("MICROSOFT_APP_PASSWORD", password),
                ("MICROSOFT_APP_TENANT_ID", tenant),
            )
            if value
        ]
        if settings.binds_loopback:
            warning = (
                f"{' and '.join(partly)} ignored: without MICROSOFT_APP_ID the bot runs in "
                "Bot Framework Emulator mode"
                if partly
                else None
            )
            return cls(
                mode="emulator",
                service_urls=ServiceUrlPolicy(extra=allowed, allow_loopback=True),
                warning=warning,
                **common,  # type: ignore[arg-type]
            )
        if partly:
            raise SettingsError(
                f"{' and '.join(partly)} set but MICROSOFT_APP_ID is empty: set the bot's app "
                f"id, or unset {' and '.join(partly)} (without an app id Teams runs only as "
                f"the local Emulator mode, on 127.0.0.1)"
            )
        return cls(
            mode="off",
            warning=(
                f"Teams is off: MICROSOFT_APP_ID is empty and the server binds {settings.host}, "
                "not loopback. Set MICROSOFT_APP_ID, MICROSOFT_APP_PASSWORD and "
                "MICROSOFT_APP_TENANT_ID, or bind 127.0.0.1 to try the bot with the Emulator."
            ),
            **common,  # type: ignore[arg-type]
        )

    @property
    def home_tenants(self) -> set[str]:
        """Tenants that belong to the default organization."""
        if self.mode == "emulator":
            return {EMULATOR_TENANT}
        return {self.tenant_id} if self.tenant_id else set()

    def status(self) -> str:
        if self.mode == "emulator":
            return (
                "Teams: Bot Framework Emulator mode (no app id, no authentication, loopback only)"
            )
        return f"Teams: {self.app_type} app {self.app_id}"


def _check_credentials(app_type: str, password: str | None, tenant: str | None) -> None:
    missing = []
    if app_type in ("SingleTenant", "MultiTenant") and not password:
        missing.append("MICROSOFT_APP_PASSWORD")
    if app_type in ("SingleTenant", "UserAssignedMSI") and not tenant:
        missing.append("MICROSOFT_APP_TENANT_ID")
    if missing:
        raise SettingsError(
            f"MICROSOFT_APP_TYPE={app_type} needs {' and '.join(missing)} "
            "(from the bot's Azure registration)"
        )


def describe(urls: Iterable[str]) -> str:
    return ", ".join(urls) or "none"
