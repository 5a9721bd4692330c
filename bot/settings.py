"""Configuration, read once from the environment by the CLI and passed down explicitly.

Nothing else in persona-bot reads ``os.environ``: tests build ``Settings.from_env({...})``
with exactly what they need. Secrets are kept out of ``repr`` so they never reach a log (the
database URL is shown without its password).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from urllib.parse import quote, quote_plus
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url

from persona_store.db import default_database_url, normalise_url


class SettingsError(ValueError):
    """A configuration value that cannot work, with what to set instead."""


def _list(value: str | None) -> frozenset[str]:
    if not value:
        return frozenset()
    return frozenset(
        part.strip().lower() for part in value.replace(";", ",").split(",") if part.strip()
    )


def _int(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, not {value}")
    return value


def seconds(
    environ: Mapping[str, str], name: str, default: float, low: float, high: float
) -> float:
    """A duration in seconds from ``environ`` (``default`` when unset), within bounds."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g} seconds, not {raw}")
    return value


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_password(url: str) -> str | None:
    """The password in a database URL, if it has one."""
    try:
        return make_url(url).password
    except Exception:  # not a URL SQLAlchemy reads: opening it fails with a clear message
        return None


def url_without_password(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable database URL)"


@dataclass(frozen=True)
class Settings:
    database_url: str = field(repr=False)  # may carry a password: see __repr__ and secrets
    host: str = "127.0.0.1"
    port: int = 3978
    public_url: str | None = None
    org_name: str = "My company"
    org_slug: str | None = None  # act for this organization instead of the default one
    admins: frozenset[str] = frozenset()
    managers: frozenset[str] = frozenset()
    timezone: str = "UTC"
    load_samples: bool = True
    usage_retention_days: int = 730
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_client_id: str | None = None
    slack_client_secret: str | None = field(default=None, repr=False)
    slack_state_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str | None = None
    microsoft_app_id: str | None = None
    microsoft_app_password: str | None = field(default=None, repr=False)
    microsoft_app_tenant_id: str | None = None
    microsoft_app_type: str = "SingleTenant"
    dashboard_secret: str | None = field(default=None, repr=False)
    escalation_channel: str | None = None
    digest_day: str = "mon"
    digest_hour: int = 9
    extra: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        database_url: str | None = None,
        org_slug: str | None = None,
    ) -> Settings:
        """Build settings from an environment mapping; raise SettingsError on bad values."""

        def get(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        timezone = get("PERSONA_BOT_TIMEZONE") or "UTC"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"PERSONA_BOT_TIMEZONE {timezone!r} is not a time zone (try Europe/Berlin)"
            ) from None
        app_type = get("MICROSOFT_APP_TYPE") or "SingleTenant"
        allowed_types = {"MultiTenant", "SingleTenant", "UserAssignedMSI"}
        if app_type not in allowed_types:
            raise SettingsError(
                f"MICROSOFT_APP_TYPE must be one of {', '.join(sorted(allowed_types))}"
            )
        digest_day = (get("PERSONA_BOT_DIGEST_DAY") or "mon").lower()[:3]
        if digest_day not in {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}:
            raise SettingsError("PERSONA_BOT_DIGEST_DAY must be a weekday such as mon or friday")
        return cls(
            database_url=normalise_url(
                database_url or get("PERSONA_BOT_DATABASE_URL") or default_database_url()
            ),
            host=get("PERSONA_BOT_HOST") or "127.0.0.1",
            port=_int(environ, "PERSONA_BOT_PORT", 3978, 0, 65535),
            public_url=(get("PERSONA_BOT_PUBLIC_URL") or "").rstrip("/") or None,
            org_name=get("PERSONA_BOT_ORG_NAME") or "My company",
            org_slug=org_slug or get("PERSONA_BOT_ORG"),
            admins=_list(get("PERSONA_BOT_ADMINS")),
            managers=_list(get("PERSONA_BOT_MANAGERS")),
            timezone=timezone,
            load_samples=(get("PERSONA_BOT_SAMPLE_PERSONAS") or "1").lower()
            not in ("0", "false", "no", "off"),
            usage_retention_days=_int(environ, "PERSONA_BOT_USAGE_RETENTION_DAYS", 730, 1, 36500),
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            slack_bot_token=get("SLACK_BOT_TOKEN"),
            slack_client_id=get("SLACK_CLIENT_ID"),
            slack_client_secret=get("SLACK_CLIENT_SECRET"),
            slack_state_secret=get("SLACK_STATE_SECRET"),
            slack_app_token=get("SLACK_APP_TOKEN"),
            slack_api_url=get("SLACK_API_URL"),
            microsoft_app_id=get("MICROSOFT_APP_ID"),
            microsoft_app_password=get("MICROSOFT_APP_PASSWORD"),
            microsoft_app_tenant_id=get("MICROSOFT_APP_TENANT_ID"),
            microsoft_app_type=app_type,
            dashboard_secret=get("PERSONA_BOT_DASHBOARD_SECRET"),
            escalation_channel=get("PERSONA_BOT_ESCALATION_CHANNEL"),
            digest_day=digest_day,
            digest_hour=_int(environ, "PERSONA_BOT_DIGEST_HOUR", 9, 0, 23),
            extra={k: v for k, v in environ.items() if k.startswith("PERSONA_BOT_")},
        )

    def __repr__(self) -> str:
        shown = [f"database_url={url_without_password(self.database_url)!r}"]
        shown += [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr]
        return f"Settings({', '.join(shown)})"

    @property
    def binds_loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every configured secret, for scrubbing logs and error replies: the tokens,
        passwords and signing secrets, and the database password as written and as
        URL-encoded."""
        values = [
            getattr(self, f.name) for f in fields(self) if not f.repr and f.name != "database_url"
        ]
        password = url_password(self.database_url)
        if password:
            values += [password, quote(password, safe=""), quote_plus(password)]
        return tuple(dict.fromkeys(v for v in values if isinstance(v, str) and len(v) >= 6))
