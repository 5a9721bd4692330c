"""Which Slack set-up the settings describe, checked before anything starts.

Three shapes are supported: one workspace (``SLACK_BOT_TOKEN``), many workspaces through
OAuth (``SLACK_CLIENT_ID``, ``SLACK_CLIENT_SECRET``, ``SLACK_STATE_SECRET``), and either of
them over Socket Mode (``SLACK_APP_TOKEN``) instead of a public request URL. A set-up that
cannot work (no signing secret for HTTP requests, half an OAuth configuration, a user token
where a bot token belongs) is refused with a sentence that says what to set; no message ever
repeats a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from bot.settings import Settings, SettingsError, is_loopback, seconds

DEFAULT_API_URL = "https://slack.com/api/"
REPLAY_CHECK_ENV = "PERSONA_BOT_SLACK_REPLAY_CHECK"
HTTP_TIMEOUT_ENV = "PERSONA_BOT_SLACK_HTTP_TIMEOUT"
Mode = Literal["single", "oauth"]

# Least privilege: exactly what the features use (see manifests/slack.yml).
BOT_SCOPES = (
    "commands",  # /persona
    "chat:write",  # replies, nudges, digests
    "im:history",  # direct messages to the bot (message.im)
    "app_mentions:read",  # @persona-bot in channels
    "users:read",  # users.info: who pressed a button
    "users:read.email",  # ... and their email, to match persona owners and admins
)


@dataclass(frozen=True)
class SlackConfig:
    mode: Mode
    signing_secret: str | None = field(repr=False)
    bot_token: str | None = field(repr=False)
    client_id: str | None
    client_secret: str | None = field(repr=False)
    state_secret: str | None = field(repr=False)
    app_token: str | None = field(repr=False)
    api_url: str
    public_url: str | None
    # Refuse a signed request seen before (see replay.py); off only for load benchmarks,
    # which send one signed request many times.
    replay_check: bool = True
    http_timeout: float = 15.0  # seconds per call to the Web API or a response_url

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    @property
    def http(self) -> bool:
        """Whether Slack's HTTP requests are served (always, unless Socket Mode alone)."""
        return self.signing_secret is not None

    @property
    def authorization_url(self) -> str:
        """Slack's OAuth consent page on the same host as the Web API (GovSlack, fakes)."""
        parts = urlsplit(self.api_url)
        return f"{parts.scheme}://{parts.netloc}/oauth/v2/authorize"

    def describe(self) -> str:
        """The status line ``serve`` prints, e.g. "Slack: single workspace over HTTP"."""
        kind = "single workspace" if self.mode == "single" else "many workspaces (OAuth)"
        if self.socket_mode:
            transport = "Socket Mode"
        else:
            transport = "HTTP /slack/events"
        return f"Slack: {kind}, {transport}"


def configured(settings: Settings) -> bool:
    """Whether any Slack setting is present (then it must be complete)."""
    return any(
        (
            settings.slack_bot_token,
            settings.slack_client_id,
            settings.slack_client_secret,
            settings.slack_app_token,
            settings.slack_signing_secret,
        )
    )


def normalise_api_url(url: str | None) -> str:
    """``SLACK_API_URL`` with the trailing slash slack_sdk expects; https unless loopback."""
    if not url:
        return DEFAULT_API_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            "SLACK_API_URL must be a URL such as https://slack.com/api/ "
            "(or https://slack-gov.com/api/ for GovSlack)"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise SettingsError("SLACK_API_URL must use https (plain http only for 127.0.0.1)")
    return url if url.endswith("/") else url + "/"


def load(settings: Settings) -> SlackConfig | None:
    """The Slack set-up of ``settings``, None when Slack is not configured at all."""
    if not configured(settings):
        return None
    s = settings
    oauth = bool(s.slack_client_id or s.slack_client_secret)
    if oauth:
        missing = [
            name
            for name, value in (
                ("SLACK_CLIENT_ID", s.slack_client_id),
                ("SLACK_CLIENT_SECRET", s.slack_client_secret),
                ("SLACK_STATE_SECRET", s.slack_state_secret),
            )
            if not value
        ]
        if missing:
            raise SettingsError(
                f"Slack OAuth (many workspaces) also needs {' and '.join(missing)}: copy the "
                "client id and secret from Basic Information > App Credentials, and set "
                "SLACK_STATE_SECRET to a long random string"
            )
    elif not s.slack_bot_token:
        raise SettingsError(
            "Slack needs SLACK_BOT_TOKEN (one workspace: OAuth & Permissions > Bot User OAuth "
            "Token) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (many workspaces)"
        )
    if s.slack_bot_token and not s.slack_bot_token.startswith("xoxb-"):
        raise SettingsError(
            "SLACK_BOT_TOKEN must be a bot token (it starts with xoxb-), "
            "not a user or app-level token"
        )
    if s.slack_app_token and not s.slack_app_token.startswith("xapp-"):
        raise SettingsError(
            "SLACK_APP_TOKEN must be an app-level token with connections:write "
            "(it starts with xapp-)"
        )
    if not s.slack_signing_secret and not s.slack_app_token:
        # Bolt would answer every request with 500; refuse instead of serving nothing.
        raise SettingsError(
            "SLACK_SIGNING_SECRET is not set, so Slack's requests cannot be verified: copy it "
            "from Basic Information > App Credentials (or set SLACK_APP_TOKEN for Socket Mode)"
        )
    return SlackConfig(
        mode="oauth" if oauth else "single",
        signing_secret=s.slack_signing_secret,
        bot_token=None if oauth else s.slack_bot_token,
        client_id=s.slack_client_id,
        client_secret=s.slack_client_secret,
        state_secret=s.slack_state_secret,
        app_token=s.slack_app_token,
        api_url=normalise_api_url(s.slack_api_url),
        public_url=s.public_url,
        replay_check=s.extra.get(REPLAY_CHECK_ENV, "").strip().lower()
        not in ("0", "false", "no", "off"),
        http_timeout=seconds(s.extra, HTTP_TIMEOUT_ENV, 15.0, 0.1, 300),
    )
