"""The dashboard in a real browser: headless Chromium loads it from the running web app, the
charts render (SVG elements with bars and points, drawn at a real size), the console stays
free of errors (a Content-Security-Policy violation would be one), a screenshot is saved under
tests/artifacts/, and a forged link gets 403."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot.dashboard import dashboard_url
from bot.router import Router
from bot.runtime import Runtime
from bot.web import create_app
from persona_store.deals import DealRow, save_deals
from persona_store.summary import to_ms
from persona_store.usage import UsageRecord, write_usage
from tests.conftest import command
from tests.e2e.browser import chromium_page, find_chromium

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium; .ci/run does it)",
)


def history(runtime: Runtime) -> None:
    """Twelve weeks of plausible use, a few knowledge gaps, feedback and closed deals."""
    rng = random.Random(3)
    org = runtime.default_org_id
    personas = runtime.store.list_personas(org)
    now = runtime.clock()
    events = []
    for day in range(84):
        when = now - timedelta(days=day, hours=rng.randrange(8))
        for _ in range(rng.randrange(3, 12)):
            persona = rng.choice(personas)
            user = f"U{rng.randrange(25)}"
            roll = rng.random()
            if roll < 0.12:
                query = rng.choice(["hr director", "HR manager", "ceo of a bank", "pirate"])
                command, persona_id, matched = "lookup", None, False
            elif roll < 0.2:
                command, persona_id, matched, query = "list", None, False, None
            else:
                command, persona_id, matched, query = "lookup", persona.id, True, persona.key
            events.append(
                UsageRecord(
                    org_id=org,
                    ts=to_ms(when),
                    platform=rng.choice(["slack", "teams"]),
                    user_id=user,
                    command=command,
                    channel=f"C{rng.randrange(4)}",
                    persona_id=persona_id,
                    query=query,
                    matched=matched,
                )
            )
    write_usage(runtime.engine, events)
    rows = []
    for i in range(30):
        persona = personas[i % len(personas)]
        runtime.store.link_deal(org, f"D-{i}", persona.key, source="fit", user_id="U1")
        rows.append(DealRow(f"D-{i}", "won" if i % 3 else "lost", 10_000.0 + i, now))
    rows += [DealRow(f"N-{i}", "won" if i % 2 else "lost", 8_000.0, now) for i in range(24)]
    save_deals(runtime.engine, org, rows, now=now)


async def test_dashboard_renders_in_chromium(
    runtime: Runtime, router: Router, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    history(runtime)
    await router.dispatch(command(router, "feedback fiona needs EMEA examples <b>please</b>"))
    app = create_app(runtime, router)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        url = await dashboard_url(runtime, runtime.default_org_id)
        local = str(server.make_url("/dashboard")) + url[url.index("?") :]
        async with chromium_page(CHROMIUM, tmp_path / "profile") as page:
            status, since = await page.open(local)
            assert status == 200
            facts = await page.evaluate(
                "({svgs: document.querySelectorAll('main svg').length,"
                " bars: document.querySelectorAll('svg rect.bar').length,"
                " points: document.querySelectorAll('svg circle.point').length,"
                " intervals: document.querySelectorAll('svg line.ci').length,"
                " width: Math.round(document.querySelector('main svg')"
                "   .getBoundingClientRect().width),"
                " scripts: document.scripts.length,"
                " title: document.title,"
                " text: document.body.innerText})"
            )
            assert facts["svgs"] == 5
            assert facts["bars"] > 20 and facts["points"] >= 12 and facts["intervals"] >= 2
            assert facts["width"] > 300 and facts["scripts"] == 0
            assert "Persona dashboard" in facts["title"]
            assert "Correlation, not causation" in facts["text"]
            assert "<b>please</b>" in facts["text"]  # shown as text, not markup
            assert page.errors(since) == []
            png = await page.screenshot(ARTIFACTS / "dashboard.png")
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000

            forged = local[:-1] + ("0" if local[-1] != "0" else "1")
            status, _ = await page.open(forged)
            assert status == 403
            assert "expired or is not valid" in await page.evaluate("document.body.innerText")
    finally:
        await server.close()
