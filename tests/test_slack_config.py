"""Which Slack set-ups serve accepts, and what it says about the ones it refuses."""

from __future__ import annotations

import pytest

from adapters.slack.config import BOT_SCOPES, load
from bot.settings import Settings, SettingsError

SECRETS = {
    "SLACK_SIGNING_SECRET": "sign-secret-123456",
    "SLACK_BOT_TOKEN": "xoxb-bot-token-123456",
    "SLACK_CLIENT_SECRET": "client-secret-123456",
    "SLACK_STATE_SECRET": "state-secret-123456",
    "SLACK_APP_TOKEN": "xapp-1-app-token-123456",
}


def config(**env: str):  # type: ignore[no-untyped-def]
    return load(Settings.from_env(env, database_url="sqlite://"))


def test_nothing_set_means_no_slack() -> None:
    assert config() is None


def test_the_three_set_ups() -> None:
    single = config(SLACK_SIGNING_SECRET="s" * 10, SLACK_BOT_TOKEN="xoxb-1")
    assert single is not None and single.mode == "single" and not single.socket_mode
    assert single.api_url == "https://slack.com/api/"
    oauth = config(
        SLACK_SIGNING_SECRET="s" * 10,
        SLACK_CLIENT_ID="1.2",
        SLACK_CLIENT_SECRET="c" * 10,
        SLACK_STATE_SECRET="t" * 10,
        SLACK_API_URL="https://slack-gov.com/api",
    )
    assert oauth is not None and oauth.mode == "oauth" and oauth.bot_token is None
    assert oauth.api_url == "https://slack-gov.com/api/"
    assert oauth.authorization_url == "https://slack-gov.com/oauth/v2/authorize"
    socket = config(SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1-x")
    assert socket is not None and socket.socket_mode and not socket.http


@pytest.mark.parametrize(
    "env,says",
    [
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET is not set"),
        ({"SLACK_SIGNING_SECRET": "s" * 10}, "Slack needs SLACK_BOT_TOKEN"),
        (
            {"SLACK_SIGNING_SECRET": "s" * 10, "SLACK_CLIENT_ID": "1.2"},
            "also needs SLACK_CLIENT_SECRET and SLACK_STATE_SECRET",
        ),
        (
            {"SLACK_SIGNING_SECRET": "s" * 10, "SLACK_BOT_TOKEN": "xoxp-user-token-1234"},
            "must be a bot token",
        ),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-not-an-app-token"},
            "must be an app-level token",
        ),
        (
            {
                "SLACK_BOT_TOKEN": "xoxb-1",
                "SLACK_SIGNING_SECRET": "s" * 10,
                "SLACK_API_URL": "http://slack.example/api/",
            },
            "must use https",
        ),
        (
            {
                "SLACK_BOT_TOKEN": "xoxb-1",
                "SLACK_SIGNING_SECRET": "s" * 10,
                "SLACK_API_URL": "slack.com",
            },
            "must be a URL",
        ),
    ],
)
def test_set_ups_that_cannot_work_are_refused_with_what_to_do(
    env: dict[str, str], says: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        config(**env)
    assert says in str(refused.value)
    for secret in (*SECRETS.values(), "xoxp-user-token-1234", "xoxb-not-an-app-token"):
        assert secret not in str(refused.value)


def test_scopes_are_the_least_the_features_need() -> None:
    assert set(BOT_SCOPES) == {
        "commands",
        "chat:write",
        "im:history",
        "app_mentions:read",
        "users:read",
        "users:read.email",
    }
