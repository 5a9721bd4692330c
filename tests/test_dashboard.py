"""The dashboard over real HTTP: signed links (valid, expired, forged, another organization),
the page's charts and escaping, security headers, and CSV downloads scoped to the org."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.dashboard import CSP, dashboard_secret, dashboard_url, sign
from bot.errors import TemporarilyUnavailable
from bot.handlers import default_router
from bot.router import Router
from bot.runtime import Runtime
from bot.web import create_app
from persona_store.records import PersonaSpec
from tests.conftest import command, make_settings

EVIL = "<script>alert('x')</script>"


@pytest.fixture
async def client(runtime: Runtime, router: Router) -> AsyncIterator[TestClient]:
    app = create_app(runtime, router)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as c:
        yield c


async def path_for(runtime: Runtime, org_id: int, days: int | None = None) -> str:
    url = urlparse(await dashboard_url(runtime, org_id, days=days))
    return f"{url.path}?{url.query}"


async def stranger_org(runtime: Runtime, router: Router) -> int:
    """Another organization (workspace T2) with a persona whose name is an attack."""
    org = await runtime.org_for("slack", "T2")
    spec = PersonaSpec.from_dict(
        {"key": "evil", "name": f"Evil {EVIL}", "role": "R", "summary": "S"}
    )
    runtime.store.import_personas(org, [spec], "t")
    await router.dispatch(command(router, "evil", user="U_STRANGER", workspace="T2"))
    await router.dispatch(command(router, EVIL, user="U_STRANGER", workspace="T2"))
    return org


async def test_a_valid_link_shows_the_charts_with_strict_headers(
    client: TestClient, runtime: Runtime, router: Router
) -> None:
    for text in ("fiona", "fiona", "carlos", "pirate", "fit D-1: HR software for a school"):
        await router.dispatch(command(router, text, user="U1"))
    await router.dispatch(command(router, f"feedback fiona {EVIL}", user="U2"))
    resp = await client.get(await path_for(runtime, runtime.default_org_id))
    assert resp.status == 200
    page = await resp.text()
    assert resp.headers["Content-Security-Policy"] == CSP
    assert "script-src" not in CSP and "default-src 'none'" in CSP
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"
    for label in (
        "Lookups per persona per week",
        "Adoption per week",
        "Knowledge gaps",
        "Review status",
        "Win rate with and without personas",
    ):
        assert f'aria-label="{label}"' in page
    assert page.count("<svg") >= 5 and 'class="bar"' in page
    assert "Finance Fiona" in page and "pirate" in page
    assert "Correlation, not causation" in page
    assert "<script" not in page and "&lt;script&gt;" in page  # the comment, escaped
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


async def test_expired_forged_and_missing_links_get_403(
    client: TestClient, runtime: Runtime
) -> None:
    org = runtime.default_org_id
    secret = await dashboard_secret(runtime)
    now = runtime.clock()
    expired = sign(secret, org, now - timedelta(seconds=1))
    valid = sign(secret, org, now + timedelta(hours=24))
    org_part, expires, mac = valid.split(".")
    forged = [
        expired,
        f"{org_part}.{expires}.{mac[:-1]}{'0' if mac[-1] != '0' else '1'}",
        f"{org_part}.{int(expires) + 86400}.{mac}",  # a longer life
        f"{org + 1}.{expires}.{mac}",  # another organization
        sign("not the server secret", org, now + timedelta(hours=1)),
        "",
        "garbage",
    ]
    for token in forged:
        for path in ("/dashboard", "/dashboard/summary.csv", "/dashboard/events.csv"):
            resp = await client.get(path, params={"t": token})
            assert resp.status == 403, (token, path)
            body = await resp.text()
            assert "expired or is not valid" in body and "/persona dashboard" in body
    assert (await client.get("/dashboard")).status == 403
    assert (await client.get("/dashboard", params={"t": valid})).status == 200


async def test_each_organization_sees_only_its_own(
    client: TestClient, runtime: Runtime, router: Router
) -> None:
    await router.dispatch(command(router, "fiona", user="U_HOME"))
    stranger = await stranger_org(runtime, router)
    home_page = await (await client.get(await path_for(runtime, runtime.default_org_id))).text()
    assert "Evil" not in home_page and "U_STRANGER" not in home_page
    stranger_page = await (await client.get(await path_for(runtime, stranger))).text()
    assert "Finance Fiona" not in stranger_page
    assert "Evil &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in stranger_page
    assert "<script" not in stranger_page

    path = await path_for(runtime, runtime.default_org_id, days=7)
    events = await client.get(path.replace("/dashboard?", "/dashboard/events.csv?"))
    assert events.status == 200 and events.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in events.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await events.text())))
    assert {r["user_id"] for r in rows} == {"U_HOME"}
    assert rows[0]["persona"] == "finance-fiona" and rows[0]["command"] == "lookup"

    stranger_path = await path_for(runtime, stranger)
    stranger_events = await client.get(
        stranger_path.replace("/dashboard?", "/dashboard/events.csv?")
    )
    rows = list(csv.DictReader(io.StringIO(await stranger_events.text())))
    assert {r["user_id"] for r in rows} == {"U_STRANGER"} and len(rows) == 2

    summary = await client.get(stranger_path.replace("/dashboard?", "/dashboard/summary.csv?"))
    table = list(csv.reader(io.StringIO(await summary.text())))
    assert table[0] == ["section", "name", "metric", "value"]
    assert ["persona", "evil", "lookups", "2"] in table  # the attack text matches it too
    assert not any(row[1] == "finance-fiona" for row in table)


async def test_csv_cells_cannot_smuggle_spreadsheet_formulas(
    client: TestClient, runtime: Runtime, router: Router
) -> None:
    await router.dispatch(command(router, "=HYPERLINK(1)", user="@U1"))
    path = await path_for(runtime, runtime.default_org_id)
    text = await (await client.get(path.replace("/dashboard?", "/dashboard/events.csv?"))).text()
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["query"] == "'=HYPERLINK(1)" and row["user_id"] == "'@U1"


async def test_the_generated_secret_is_shared_by_every_runtime(runtime: Runtime) -> None:
    first = await dashboard_secret(runtime)
    other = Runtime.open(runtime.settings, seed=False)
    try:
        assert await dashboard_secret(other) == first and len(first) >= 40
    finally:
        other.close()
    configured = Runtime.open(
        make_settings(runtime.settings.database_url, PERSONA_BOT_DASHBOARD_SECRET="s3cret-value"),
        seed=False,
    )
    try:
        assert await dashboard_secret(configured) == "s3cret-value"
    finally:
        configured.close()


async def test_links_use_the_public_url(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        f"sqlite:///{tmp_path / 'x.db'}", PERSONA_BOT_PUBLIC_URL="https://bot.example.com/"
    )
    runtime = Runtime.open(settings, seed=False)
    try:
        url = await dashboard_url(runtime, runtime.default_org_id)
        assert url.startswith("https://bot.example.com/dashboard?t=")
    finally:
        runtime.close()


async def test_the_page_says_temporarily_unavailable_when_the_database_is_away(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = await path_for(runtime, runtime.default_org_id)

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise TemporarilyUnavailable("the database cannot be reached")

    monkeypatch.setattr(runtime, "db", unreachable)
    resp = await client.get(path)
    assert resp.status == 503 and "temporarily unavailable" in (await resp.text())


def test_default_router_has_the_usage_verbs(router: Router) -> None:
    assert {"stats", "dashboard", "deal", "feedback", "rate"} <= router.verbs
    assert default_router  # the same function the CLI and the web app use
