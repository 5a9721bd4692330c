"""manifests/slack.yml creates exactly the app the adapter serves: the scopes it asks for,
the events it listens to, one request URL for commands, interactivity and events."""

from __future__ import annotations

from pathlib import Path

import yaml

from adapters.slack.config import BOT_SCOPES
from adapters.slack.oauth import REDIRECT_PATH

MANIFEST = Path(__file__).resolve().parent.parent / "manifests" / "slack.yml"


def test_manifest_matches_the_adapter() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    features, settings = manifest["features"], manifest["settings"]
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)
    assert "user" not in manifest["oauth_config"]["scopes"]
    [command] = features["slash_commands"]
    assert command["command"] == "/persona" and command["should_escape"] is False
    assert sorted(settings["event_subscriptions"]["bot_events"]) == [
        "app_home_opened",
        "app_mention",
        "app_uninstalled",
        "message.im",
        "tokens_revoked",
    ]
    urls = {
        command["url"],
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    }
    assert len(urls) == 1 and urls.pop().endswith("/slack/events")
    assert manifest["oauth_config"]["redirect_urls"][0].endswith(REDIRECT_PATH)
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    assert len(manifest["display_information"]["long_description"]) >= 175
