"""Many workspaces: the OAuth install completes against the fake ``oauth.v2.access``, the
installation lands in persona-bot's database, each workspace is its own organization, and
uninstalling deletes the installation."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from persona_store.records import PersonaSpec
from tests.e2e.slack.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    SECRET,
    STATE_SECRET,
    TOKENS,
    Slack,
)
from tests.e2e.slack.test_slack_commands import ask, texts_of
from tests.fakes.slack_wire import event_body


async def install(slack: Slack, team: str) -> str:
    """Walk the browser through /slack/install and back; the final page's text."""
    page = await slack.client.get("/slack/install")
    assert page.status == 200
    html = await page.text()
    authorize = re.search(r'href="([^"]+/oauth/v2/authorize[^"]+)"', html)
    assert authorize, html
    query = parse_qs(urlsplit(authorize.group(1).replace("&amp;", "&")).query)
    assert query["client_id"] == [CLIENT_ID]
    scopes = set(query["scope"][0].split(","))
    assert scopes == {
        "commands", "chat:write", "im:history", "app_mentions:read", "users:read",
        "users:read.email",
    }  # fmt: skip
    state = query["state"][0]
    cookie = page.headers["Set-Cookie"].split(";")[0]
    assert cookie == f"slack-app-oauth-state={state}"
    done = await slack.client.get(
        "/slack/oauth_redirect",
        params={"code": f"code-{team}", "state": state},
        headers={"Cookie": cookie},
    )
    return f"{done.status} {await done.text()}"


def installations(slack: Slack) -> list[tuple[str, str]]:
    with slack.runtime.engine.connect() as conn:
        rows = conn.execute(text("SELECT team_id, bot_token FROM slack_bots ORDER BY team_id"))
        return [(r[0], r[1]) for r in rows]


async def test_install_completes_and_is_kept_in_the_database(oauth_slack: Slack) -> None:
    result = await install(oauth_slack, "TA")
    assert result.startswith("200") and "Thank you!" in result
    [access] = oauth_slack.fake.of("oauth.v2.access")
    assert access.params["code"] == "code-TA"
    assert installations(oauth_slack) == [("TA", TOKENS["TA"])]
    org_id = await oauth_slack.runtime.org_for("slack", "TA")
    assert org_id != oauth_slack.runtime.default_org_id
    assert oauth_slack.runtime.store.org_name(org_id) == "Company A"


async def test_a_forged_or_replayed_state_is_refused(oauth_slack: Slack) -> None:
    page = await oauth_slack.client.get("/slack/install")
    state = re.search(r"state=([^&\"]+)", await page.text()).group(1)  # type: ignore[union-attr]
    forged = state.rsplit(".", 1)[0] + "." + "0" * 64
    for bad in (forged, "made-up"):
        resp = await oauth_slack.client.get(
            "/slack/oauth_redirect",
            params={"code": "code-TA", "state": bad},
            headers={"Cookie": f"slack-app-oauth-state={bad}"},
        )
        assert resp.status == 401
    assert oauth_slack.fake.of("oauth.v2.access") == [] and installations(oauth_slack) == []
    # The real state works once; the same state a second time does not.
    oauth_slack.fake.oauth_codes["code-again"] = oauth_slack.fake.oauth_codes["code-TA"]
    cookie = {"Cookie": f"slack-app-oauth-state={state}"}
    first = await oauth_slack.client.get(
        "/slack/oauth_redirect", params={"code": "code-TA", "state": state}, headers=cookie
    )
    again = await oauth_slack.client.get(
        "/slack/oauth_redirect", params={"code": "code-again", "state": state}, headers=cookie
    )
    assert (first.status, again.status) == (200, 401)
    assert len(oauth_slack.fake.of("oauth.v2.access")) == 1


async def test_two_workspaces_never_see_each_others_personas_or_usage(
    oauth_slack: Slack,
) -> None:
    for team in ("TA", "TB"):
        assert (await install(oauth_slack, team)).startswith("200")
    runtime = oauth_slack.runtime
    for team, name in (("TA", "Alpha Alice"), ("TB", "Beta Bob")):
        org_id = await runtime.org_for("slack", team)
        key = name.lower().replace(" ", "-")
        spec = PersonaSpec(key=key, name=name, role="Buyer", summary=f"Only in {team}.")
        runtime.store.import_personas(org_id, [spec], "test")

    alpha = await ask(oauth_slack, "list", team="TA")
    beta = await ask(oauth_slack, "list", team="TB")
    assert "Alpha Alice" in texts_of(alpha) and "Beta Bob" not in texts_of(alpha)
    assert "Beta Bob" in texts_of(beta) and "Alpha Alice" not in texts_of(beta)
    assert "Finance Fiona" not in texts_of(alpha)  # the default organization's samples
    missing = await ask(oauth_slack, "beta bob", team="TA")
    assert "No persona matches" in missing["text"]
    await ask(oauth_slack, "alpha alice", team="TA")

    # Each workspace's own token was used for its own people.
    tokens = {c.params["user"] + "@" + c.token for c in oauth_slack.fake.of("users.info")}
    assert tokens == {f"U1@{TOKENS['TA']}", f"U1@{TOKENS['TB']}"}

    runtime.settings = type(runtime.settings)(  # make U1 of TB a manager for stats
        **{**runtime.settings.__dict__, "managers": frozenset({"u1@tb.example"})}
    )
    stats = await ask(oauth_slack, "stats", team="TB")
    shown = texts_of(stats)
    # Only TB's one command (its list) is counted; TA's list and lookup are not.
    assert "Alpha Alice" not in shown and "Beta Bob" in shown
    assert "slack: 1 command, 1 person" in shown


async def test_uninstall_and_revoked_tokens_delete_the_installation(oauth_slack: Slack) -> None:
    for team in ("TA", "TB"):
        await install(oauth_slack, team)
    assert [t for t, _ in installations(oauth_slack)] == ["TA", "TB"]
    uninstall = event_body("app_uninstalled.json")
    uninstall["team_id"] = "TA"
    resp = await oauth_slack.event(uninstall)
    assert resp.status == 200
    assert [t for t, _ in installations(oauth_slack)] == ["TB"]
    revoked = event_body("tokens_revoked.json")
    revoked["team_id"] = "TB"
    resp = await oauth_slack.event(revoked)
    assert resp.status == 200
    assert installations(oauth_slack) == []
    with oauth_slack.runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM slack_installations")).scalar() == 0
    # A workspace without an installation is told politely, not with an error page.
    gone = await oauth_slack.slash("fiona", team="TA")
    assert gone.status == 200
    [told] = await oauth_slack.fake.wait_for("response_url")
    assert told.params["text"] == (
        "persona-bot is not installed in this Slack workspace any more. "
        "Ask a Slack admin to reinstall it."
    )
    assert oauth_slack.usage() == []


async def test_tokens_and_secrets_never_reach_the_logs(
    oauth_slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await install(oauth_slack, "TA")
    await ask(oauth_slack, "list", team="TA")
    oauth_slack.fake.fail("users.info", "invalid_auth")
    await ask(oauth_slack, "list", team="TA", user="U2")
    for secret in (*TOKENS.values(), CLIENT_SECRET, STATE_SECRET, SECRET):
        assert secret not in caplog.text
    assert "persona-bot was installed in Slack workspace TA" in caplog.text
