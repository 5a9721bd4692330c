"""When Teams runs and how: app id rules, Emulator mode on loopback only, the service URL
allow-list, the signing key cache, and mounting into the web app."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from aiohttp import web

from adapters.teams.app import TEAMS, mount_teams
from adapters.teams.auth import KeysUnavailable, SigningKeys
from adapters.teams.config import EMULATOR_TENANT, ServiceUrlPolicy, TeamsConfig
from bot.cli import main
from bot.handlers import default_router
from bot.runtime import Runtime
from bot.settings import Settings, SettingsError
from tests.fakes.openid import FakeOpenId

APP = "1d9f5a40-5c6e-4c3b-8f3a-2b7e9c0d4e55"
TENANT = "3b9c7d2e-1f4a-4c8e-9d2b-6a5e8f1c0a11"


def config(**env: str) -> TeamsConfig:
    return TeamsConfig.from_settings(Settings.from_env(env, database_url="sqlite://"))


def test_an_app_id_with_its_credentials_runs_the_bot_single_tenant_by_default() -> None:
    teams = config(
        MICROSOFT_APP_ID=APP, MICROSOFT_APP_PASSWORD="pw-123456", MICROSOFT_APP_TENANT_ID=TENANT
    )
    assert (teams.mode, teams.app_type, teams.warning) == ("bot", "SingleTenant", None)
    assert teams.home_tenants == {TENANT}
    assert teams.status() == f"Teams: SingleTenant app {APP}"
    assert "pw-123456" not in repr(teams)


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"MICROSOFT_APP_PASSWORD": "pw-123456"}, "MICROSOFT_APP_TENANT_ID"),
        ({"MICROSOFT_APP_TENANT_ID": TENANT}, "MICROSOFT_APP_PASSWORD"),
        ({"MICROSOFT_APP_TYPE": "MultiTenant"}, "MICROSOFT_APP_PASSWORD"),
        ({"MICROSOFT_APP_TYPE": "UserAssignedMSI"}, "MICROSOFT_APP_TENANT_ID"),
    ],
)
def test_incomplete_credentials_are_refused(env: dict[str, str], missing: str) -> None:
    with pytest.raises(SettingsError, match=missing):
        config(MICROSOFT_APP_ID=APP, **env)


def test_multi_tenant_works_with_a_deprecation_warning() -> None:
    teams = config(
        MICROSOFT_APP_ID=APP, MICROSOFT_APP_PASSWORD="pw-123456", MICROSOFT_APP_TYPE="MultiTenant"
    )
    assert teams.mode == "bot" and teams.warning and "deprecated" in teams.warning


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_no_app_id_on_loopback_is_emulator_mode(host: str) -> None:
    teams = config(PERSONA_BOT_HOST=host)
    assert teams.mode == "emulator"
    assert "Emulator" in teams.status()
    assert teams.home_tenants == {EMULATOR_TENANT}
    assert teams.service_urls.allows("http://localhost:56123/")  # the Emulator's own URL
    assert config(PERSONA_BOT_HOST=host, MICROSOFT_APP_PASSWORD="pw-123456").warning


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "bot.example.com", "::"])
def test_no_app_id_elsewhere_is_off_with_a_warning(host: str) -> None:
    teams = config(PERSONA_BOT_HOST=host)
    assert teams.mode == "off"
    assert teams.warning and "MICROSOFT_APP_ID" in teams.warning and host in teams.warning


@pytest.mark.parametrize(
    "partly", [{"MICROSOFT_APP_PASSWORD": "pw-123456"}, {"MICROSOFT_APP_TENANT_ID": TENANT}]
)
def test_partial_credentials_without_app_id_off_loopback_refuse_to_start(
    partly: dict[str, str],
) -> None:
    with pytest.raises(SettingsError, match="MICROSOFT_APP_ID is empty"):
        config(PERSONA_BOT_HOST="0.0.0.0", **partly)


def test_serve_refuses_to_start_on_a_public_address_with_partial_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["--db", f"sqlite:///{tmp_path / 'x.db'}", "serve", "--host", "0.0.0.0", "--port", "0"],
        environ={"MICROSOFT_APP_PASSWORD": "pw-123456"},
        configure_logging=False,
    )
    assert code == 2
    assert "MICROSOFT_APP_ID is empty" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://smba.trafficmanager.net/emea/", True),
        ("https://smba.trafficmanager.net:443/amer/", True),
        ("https://SMBA.trafficmanager.net/teams/", True),
        ("https://smba.infra.gcc.teams.microsoft.com/gcc", True),
        ("https://smba.infra.gov.teams.microsoft.us/gcch", True),
        ("https://smba.infra.dod.teams.microsoft.us/dod", True),
        ("https://webchat.botframework.com/", True),
        ("https://directline.botframework.us/", True),
        ("http://smba.trafficmanager.net/emea/", False),
        ("https://smba.trafficmanager.net:8443/emea/", False),
        ("https://evil.trafficmanager.net/emea/", False),
        ("https://smba.trafficmanager.net.evil.example/", False),
        ("https://botframework.com.evil.example/", False),
        ("https://evilbotframework.com/", False),
        ("https://user:pw@smba.trafficmanager.net/emea/", False),
        ("http://127.0.0.1:9999/", False),
        ("smba.trafficmanager.net/emea/", False),
        ("", False),
        (None, False),
    ],
)
def test_service_url_policy(url: str | None, allowed: bool) -> None:
    assert ServiceUrlPolicy().allows(url) is allowed


def test_configured_extra_service_urls_match_origin_and_path() -> None:
    policy = config(
        MICROSOFT_APP_ID=APP,
        MICROSOFT_APP_PASSWORD="pw-123456",
        MICROSOFT_APP_TENANT_ID=TENANT,
        PERSONA_BOT_TEAMS_ALLOWED_SERVICE_URLS="http://127.0.0.1:8123/fake/, https://proxy.example",
    ).service_urls
    assert not policy.allow_loopback  # loopback only in Emulator mode
    assert policy.allows("http://127.0.0.1:8123/fake/")
    assert policy.allows("http://127.0.0.1:8123/fake/v3/x")
    assert not policy.allows("http://127.0.0.1:8123/other/")
    assert not policy.allows("http://127.0.0.1:8124/fake/")
    assert policy.allows("https://proxy.example/anything")
    with pytest.raises(SettingsError, match="https"):
        config(PERSONA_BOT_TEAMS_ALLOWED_SERVICE_URLS="http://proxy.example/")
    with pytest.raises(SettingsError, match="https"):
        config(PERSONA_BOT_TEAMS_OPENID_METADATA_URL="http://keys.example/openid")


def mounted(tmp_path: Path, **env: str) -> tuple[web.Application, Runtime, str | None]:
    settings = Settings.from_env(env, database_url=f"sqlite:///{tmp_path / 'x.db'}")
    runtime = Runtime.open(settings, seed=False)
    app = web.Application()
    status = mount_teams(app, runtime, default_router(runtime))
    return app, runtime, status


def test_mounting_registers_route_tenants_and_notifier(tmp_path: Path) -> None:
    app, runtime, status = mounted(
        tmp_path,
        MICROSOFT_APP_ID=APP,
        MICROSOFT_APP_PASSWORD="pw-123456",
        MICROSOFT_APP_TENANT_ID=TENANT,
    )
    try:
        assert status == f"Teams: SingleTenant app {APP}"
        assert any(
            r.resource and r.resource.canonical == "/api/messages" for r in app.router.routes()
        )
        assert runtime.home_workspaces["teams"] == {TENANT}
        assert runtime.notifiers["teams"] is app[TEAMS].notifier
    finally:
        runtime.close()


def test_teams_off_mounts_nothing_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        app, runtime, status = mounted(tmp_path, PERSONA_BOT_HOST="0.0.0.0")
    try:
        assert status is None
        assert TEAMS not in app and "teams" not in runtime.notifiers
        assert any("Teams is off" in r.getMessage() for r in caplog.records)
    finally:
        runtime.close()


# signing keys -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_signing_keys_refresh_daily_and_refetch_unknown_keys_rarely() -> None:
    async with FakeOpenId(kid="key-1") as issuer:
        clock = Clock()
        keys = SigningKeys(issuer.metadata_url, clock=clock)
        assert (await keys.get("key-1")).endorsements == ["msteams", "emulator"]
        assert keys.fetches == 1
        with pytest.raises(PermissionError):
            await keys.get("key-2")
        assert keys.fetches == 1  # fetched a moment ago: no second fetch for an unknown key
        issuer.kid = "key-2"  # the issuer rotates its key
        clock.now += 301
        await keys.get("key-2")
        assert keys.fetches == 2
        clock.now += 25 * 3600
        issuer.fail = True  # the daily refresh fails: the keys we have still work
        await keys.get("key-2")
        assert keys.fetches == 3


async def test_no_keys_at_all_is_unavailable_not_unauthorized() -> None:
    async with FakeOpenId() as issuer:
        issuer.fail = True
        keys = SigningKeys(issuer.metadata_url, timeout=1.0)
        with pytest.raises(KeysUnavailable):
            await keys.get("known-key")


async def test_concurrent_requests_share_one_fetch() -> None:
    async with FakeOpenId() as issuer:
        keys = SigningKeys(issuer.metadata_url)
        await asyncio.gather(*(keys.get("known-key") for _ in range(10)))
        assert keys.fetches == 1 and issuer.requests == 2
