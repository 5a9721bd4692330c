"""How long persona-bot waits for Slack and the Bot Connector: the defaults, a configured
value, and values that cannot work refused with the setting's name."""

from __future__ import annotations

import pytest

from adapters.slack.config import load
from adapters.teams.config import TeamsConfig
from bot.settings import Settings, SettingsError

SLACK = {
    "SLACK_SIGNING_SECRET": "5f0b5d0e8a1c4e2f9b7a6c3d2e1f0a9b",
    "SLACK_BOT_TOKEN": "xoxb-1-2-t",
}
TEAMS = {"MICROSOFT_APP_ID": "", "PERSONA_BOT_HOST": "127.0.0.1"}


def slack_timeout(**env: str) -> float:
    config = load(Settings.from_env({**SLACK, **env}, database_url="sqlite://"))
    assert config is not None
    return config.http_timeout


def teams_timeout(**env: str) -> float:
    settings = Settings.from_env({**TEAMS, **env}, database_url="sqlite://")
    return TeamsConfig.from_settings(settings).connector_timeout


def test_defaults_and_configured_values() -> None:
    assert slack_timeout() == 15.0
    assert slack_timeout(PERSONA_BOT_SLACK_HTTP_TIMEOUT="2.5") == 2.5
    assert teams_timeout() == 10.0
    assert teams_timeout(PERSONA_BOT_TEAMS_CONNECTOR_TIMEOUT=" 4 ") == 4.0


@pytest.mark.parametrize(
    "value,problem",
    [
        ("soon", "must be a number of seconds, not 'soon'"),
        ("0", "must be between 0.1 and 300 seconds, not 0"),
        ("nan", "must be between 0.1 and 300 seconds, not nan"),
        ("3600", "must be between 0.1 and 300 seconds, not 3600"),
    ],
)
def test_a_slack_timeout_that_cannot_work_is_refused(value: str, problem: str) -> None:
    with pytest.raises(SettingsError) as refused:
        slack_timeout(PERSONA_BOT_SLACK_HTTP_TIMEOUT=value)
    assert str(refused.value) == f"PERSONA_BOT_SLACK_HTTP_TIMEOUT {problem}"


def test_a_teams_timeout_that_cannot_work_is_refused() -> None:
    with pytest.raises(SettingsError, match="PERSONA_BOT_TEAMS_CONNECTOR_TIMEOUT must be between"):
        teams_timeout(PERSONA_BOT_TEAMS_CONNECTOR_TIMEOUT="-1")
