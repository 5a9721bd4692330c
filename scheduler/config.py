"""The scheduler's settings: the review and digest rules, and how delivery behaves.

Read once from ``Settings`` (admins, managers, time zone, digest day and hour, escalation
channel) and from the ``PERSONA_BOT_SCHEDULER*`` / ``PERSONA_BOT_OUTBOX_*`` variables that
``Settings.from_env`` keeps in ``settings.extra``; nothing here reads the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta

from bot.settings import Settings, SettingsError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Rules:
    """What is due when: the pure inputs of ``scheduler.due``."""

    admins: tuple[str, ...] = ()
    managers: tuple[str, ...] = ()
    escalation_channel: str | None = None
    timezone: str = "UTC"
    digest_weekday: int = 0  # Monday
    digest_hour: int = 9
    # The organization the admins, managers and escalation channel belong to (the
    # single-company install's). Other organizations (other Slack workspaces or Teams
    # tenants) get their owners' nudges but never reach these people: each organization's
    # data stays its own. None: every organization (tests of the bare rules).
    home_org: int | None = None
    reminder_after: timedelta = timedelta(days=7)
    escalate_after: timedelta = timedelta(days=14)
    snooze_for: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class SchedulerConfig:
    rules: Rules
    enabled: bool = True  # run inside ``persona-bot serve``
    tick_seconds: float = 60.0  # how often each replica decides what is due
    poll_seconds: float = 15.0  # longest the worker sleeps between looks at the outbox
    lease: timedelta = timedelta(minutes=5)  # a claim older than this is taken up again
    # The longest one send may take, the notifier's own retries and Retry-After waits
    # included (they hand longer waits back); after it the row is uncertain.
    send_timeout: float = 120.0
    batch_size: int = 10  # rows claimed at once
    max_attempts: int = 10  # then the row is failed and shown in health and metrics
    backoff_base: float = 5.0  # seconds before the first retry; doubles each attempt
    backoff_cap: float = 1800.0
    jitter: float = 0.25  # each delay is stretched by up to this fraction, at random

    @classmethod
    def from_settings(cls, settings: Settings) -> SchedulerConfig:
        extra = settings.extra
        rules = Rules(
            admins=_people(extra, "PERSONA_BOT_ADMINS", settings.admins),
            managers=_people(extra, "PERSONA_BOT_MANAGERS", settings.managers),
            escalation_channel=settings.escalation_channel,
            timezone=settings.timezone,
            digest_weekday=WEEKDAYS.index(settings.digest_day),
            digest_hour=settings.digest_hour,
        )
        return cls(
            rules=rules,
            enabled=_flag(extra, "PERSONA_BOT_SCHEDULER", True),
            tick_seconds=_number(extra, "PERSONA_BOT_SCHEDULER_TICK_SECONDS", 60.0, 0.2, 3600),
            poll_seconds=_number(extra, "PERSONA_BOT_OUTBOX_POLL_SECONDS", 15.0, 0.05, 3600),
            lease=timedelta(
                seconds=_number(extra, "PERSONA_BOT_OUTBOX_LEASE_SECONDS", 300.0, 1, 86400)
            ),
            send_timeout=_number(extra, "PERSONA_BOT_OUTBOX_SEND_TIMEOUT", 120.0, 0.1, 600),
            batch_size=int(_number(extra, "PERSONA_BOT_OUTBOX_BATCH", 10, 1, 1000)),
            max_attempts=int(_number(extra, "PERSONA_BOT_OUTBOX_MAX_ATTEMPTS", 10, 1, 100)),
            backoff_base=_number(extra, "PERSONA_BOT_OUTBOX_BACKOFF_SECONDS", 5.0, 0.01, 3600),
        )


def with_home_org(config: SchedulerConfig, org_id: int) -> SchedulerConfig:
    """The configuration with the home organization filled in (when it was not given)."""
    if config.rules.home_org is not None:
        return config
    return replace(config, rules=replace(config.rules, home_org=org_id))


def _people(extra: Mapping[str, str], name: str, fallback: frozenset[str]) -> tuple[str, ...]:
    """People to message, as configured: ``Settings`` lowercases ids for comparing, but
    Slack user ids are upper case and must be sent as written."""
    raw = extra.get(name)
    if raw is None:
        return tuple(sorted(fallback))
    parts = {part.strip() for part in raw.replace(";", ",").split(",") if part.strip()}
    return tuple(sorted(parts))


def _flag(extra: Mapping[str, str], name: str, default: bool) -> bool:
    raw = extra.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be on or off (1 or 0), not {raw!r}")


def _number(extra: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = extra.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, not {value:g}")
    return value
