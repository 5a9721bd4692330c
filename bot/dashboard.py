"""The managers' dashboard: ``GET /dashboard`` behind a signed, expiring link.

The page is rendered on the server from the same ``Summary`` as ``/persona stats``: plain
HTML with charts drawn as inline SVG (lookups per persona per week, adoption over time,
knowledge gaps, review status, outcome comparison with its intervals), no script, no external
resource, so it works offline and under a strict Content-Security-Policy. Every user string
(persona names, search texts, comments, channel ids) is escaped.

Access: ``/persona dashboard`` (managers and admins) sends a private link carrying
``ORG.EXPIRES.SIGNATURE``, an HMAC-SHA256 over the organization id and the expiry with the
server secret (``PERSONA_BOT_DASHBOARD_SECRET``, else one generated once and kept in the
database so every replica agrees). Links live 24 hours; an expired or forged one gets 403.
The CSV downloads (the summary, the raw events) take the same token and only ever read the
token's organization.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import html
import io
import logging
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot import messages
from bot.cards import money
from bot.errors import CommandError, PermissionDenied, TemporarilyUnavailable
from bot.model import Context, Reply, Text
from bot.notify import DeliveryError, Recipient
from bot.permissions import can_read_summaries
from bot.router import Turn
from bot.runtime import Runtime
from bot.settings import Settings
from bot.summaries import SUMMARY_TIMEOUT, parse_days, percent, trend_text
from persona_store.app_secrets import get_or_create_secret
from persona_store.outcomes import Comparison
from persona_store.summary import Gap, ReviewStatus, Summary, Week, summarize_days
from persona_store.usage import usage_events_page

log = logging.getLogger(__name__)

LINK_LIFETIME = timedelta(hours=24)
DEFAULT_DAYS = 90
SECRET_NAME = "dashboard"  # noqa: S105 - the name under which the key is stored
CSV_PAGE = 5000
PALETTE = (
    "#2563eb",
    "#f97316",
    "#16a34a",
    "#db2777",
    "#7c3aed",
    "#0891b2",
    "#ca8a04",
    "#dc2626",
    "#4b5563",
    "#65a30d",
)
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#111827;
background:#f9fafb}
header{background:#111827;color:#f9fafb;padding:16px 32px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#d1d5db}
nav{padding:8px 32px;background:#e5e7eb}nav a{margin-right:14px;color:#1d4ed8}
main{padding:16px 32px;display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));
gap:20px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:14px 18px}
section.wide{grid-column:1/-1}
h2{font-size:17px;margin:0 0 10px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #f3f4f6;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.kpis{display:flex;gap:28px;flex-wrap:wrap}.kpi b{display:block;font-size:26px}
.warn{color:#b45309}.muted{color:#6b7280;font-size:13px}
svg{width:100%;height:auto;font-family:inherit}
footer{padding:8px 32px 24px;color:#6b7280;font-size:13px}
"""
CSP = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()}'; "
    "img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the link is the key: never send it anywhere
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


# signed links ------------------------------------------------------------------------------


_NUMBER = re.compile(r"[0-9]{1,20}")


def _mac(secret: str, org_id: int, expires: int) -> str:
    message = f"persona-bot dashboard|{org_id}|{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, org_id: int, expires: datetime) -> str:
    """The token for an organization's dashboard until ``expires``: ``ORG.EXPIRES.MAC``."""
    stamp = int(expires.timestamp())
    return f"{org_id}.{stamp}.{_mac(secret, org_id, stamp)}"


def verify(secret: str, token: str, now: datetime) -> int | None:
    """The organization a valid, unexpired token grants, else None."""
    parts = token.strip().split(".")
    # ASCII digits only, and not thousands of them: int() refuses "²" and over 4,300 digits,
    # and hmac.compare_digest refuses non-ASCII text (a 500 for anyone who tries).
    if (
        len(parts) != 3
        or not all(_NUMBER.fullmatch(part) for part in parts[:2])
        or not parts[2].isascii()
    ):
        return None
    org_id, stamp = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(_mac(secret, org_id, stamp), parts[2].lower()):
        return None
    if stamp <= now.timestamp():
        return None
    return org_id


async def dashboard_secret(runtime: Runtime) -> str:
    """The configured secret, else the one generated once and stored in the database."""
    if runtime.settings.dashboard_secret:
        return runtime.settings.dashboard_secret
    return await runtime.db(get_or_create_secret, runtime.engine, SECRET_NAME)


def base_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


async def dashboard_url(
    runtime: Runtime, org_id: int, now: datetime | None = None, *, days: int | None = None
) -> str:
    """A signed link to an organization's dashboard, valid for 24 hours from ``now``."""
    return link(
        runtime.settings, await dashboard_secret(runtime), org_id, now or runtime.clock(), days
    )


def dashboard_url_sync(
    runtime: Runtime, org_id: int, now: datetime, *, days: int | None = None
) -> str:
    """``dashboard_url`` for code already off the event loop (the digest is built there)."""
    secret = runtime.settings.dashboard_secret or get_or_create_secret(runtime.engine, SECRET_NAME)
    return link(runtime.settings, secret, org_id, now, days)


def link(settings: Settings, secret: str, org_id: int, now: datetime, days: int | None) -> str:
    token = sign(secret, org_id, now + LINK_LIFETIME)
    query = {"t": token, **({"days": str(days)} if days else {})}
    return f"{base_url(settings)}/dashboard?{urlencode(query)}"


# charts --------------------------------------------------------------------------------------


def _svg(width: int, height: int, label: str, body: Iterable[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{esc(label)}">'
        f"<title>{esc(label)}</title>" + "".join(body) + "</svg>"
    )


def _text(
    x: float,
    y: float,
    value: object,
    *,
    size: int = 12,
    anchor: str = "start",
    fill: str = "#374151",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}">{esc(value)}</text>'
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step * 4:
            return step * 4 if value > step * 2 else step * 2
    return float(value)


def chart_weekly_lookups(weeks: Sequence[Week], names: dict[str, str]) -> str:
    """Stacked bars: lookups per persona per week."""
    width, height, left, top, bottom = 1100, 300, 48, 12, 40
    keys = sorted(
        {k for w in weeks for k in w.lookups},
        key=lambda k: (-sum(w.lookups.get(k, 0) for w in weeks), k),
    )
    colours = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}
    legend_rows = (len(keys) + 4) // 5
    total_height = height + legend_rows * 18
    peak = _nice_max(max((sum(w.lookups.values()) for w in weeks), default=0))
    plot_w, plot_h = width - left - 10, height - top - bottom
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
        'stroke="#9ca3af"/>'
    ]
    for i in range(5):
        value = peak * i / 4
        y = top + plot_h - plot_h * i / 4
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#f3f4f6"/>'
        )
        body.append(_text(left - 6, y + 4, f"{value:,.0f}", size=11, anchor="end"))
    slot = plot_w / max(1, len(weeks))
    bar = max(2.0, slot * 0.7)
    for i, week in enumerate(weeks):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        for key in keys:
            n = week.lookups.get(key, 0)
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colours[key]}"><title>{esc(names.get(key, key))}, week of '
                f"{week.start:%Y-%m-%d}: {n:,} lookups</title></rect>"
            )
        if len(weeks) <= 16 or i % max(1, len(weeks) // 12) == 0:
            body.append(
                _text(
                    x + bar / 2, top + plot_h + 16, f"{week.start:%b %d}", size=10, anchor="middle"
                )
            )
    for i, key in enumerate(keys):
        lx = left + (i % 5) * 200
        ly = height + (i // 5) * 18
        body.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colours[key]}"/>')
        body.append(_text(lx + 17, ly, _clip(names.get(key, key), 26), size=12))
    if not keys:
        body.append(
            _text(width / 2, top + plot_h / 2, "No persona lookups in this period", anchor="middle")
        )
    return _svg(width, total_height, "Lookups per persona per week", body)


def chart_adoption(weeks: Sequence[Week]) -> str:
    """A line: the share of active users who used a persona, per week."""
    width, height, left, top, bottom = 560, 240, 44, 12, 36
    plot_w, plot_h = width - left - 24, height - top - bottom
    body = []
    for pct in (0, 25, 50, 75, 100):
        y = top + plot_h - plot_h * pct / 100
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 14}" y2="{y:.1f}" stroke="#f3f4f6"/>'
        )
        body.append(_text(left - 6, y + 4, f"{pct}%", size=11, anchor="end"))
    step = plot_w / max(1, len(weeks) - 1)
    points = []
    for i, week in enumerate(weeks):
        x = left + (i * step if len(weeks) > 1 else plot_w / 2)
        if len(weeks) <= 16 or i % max(1, len(weeks) // 12) == 0:
            body.append(
                _text(x, top + plot_h + 16, f"{week.start:%b %d}", size=10, anchor="middle")
            )
        if week.adoption is None:
            continue
        y = top + plot_h - plot_h * week.adoption
        points.append((x, y))
        body.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#2563eb">'
            f"<title>Week of {week.start:%Y-%m-%d}: {percent(week.adoption)} "
            f"({week.persona_users} of {week.users} people)</title></circle>"
        )
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.insert(0, f'<polyline points="{path}" fill="none" stroke="#2563eb" stroke-width="2"/>')
    if not points:
        body.append(
            _text(
                width / 2, top + plot_h / 2, "Nobody used the bot in this period", anchor="middle"
            )
        )
    return _svg(width, height, "Adoption per week", body)


def chart_gaps(gaps: Sequence[Gap]) -> str:
    """Horizontal bars: the biggest groups of searches and fits that found no persona."""
    shown = list(gaps[:12])
    width, row, left = 560, 24, 230
    height = max(60, 16 + row * len(shown))
    peak = max((g.count for g in shown), default=1)
    body = []
    for i, gap in enumerate(shown):
        y = 8 + i * row
        w = (width - left - 60) * gap.count / peak
        colour = "#f97316" if gap.kind == "search" else "#7c3aed"
        kind = "search" if gap.kind == "search" else "fit"
        body.append(_text(left - 8, y + 15, f"{_clip(gap.text, 28)} ({kind})", anchor="end"))
        body.append(
            f'<rect class="bar" x="{left}" y="{y + 3}" width="{max(w, 2):.1f}" height="{row - 8}" '
            f'fill="{colour}"><title>{esc(gap.text)}: {gap.count:,} times</title></rect>'
        )
        body.append(_text(left + max(w, 2) + 6, y + 15, f"{gap.count:,}"))
    if not shown:
        body.append(_text(width / 2, 34, "Every search found a persona", anchor="middle"))
    return _svg(width, height, "Knowledge gaps", body)


def chart_reviews(reviews: Sequence[ReviewStatus], now: datetime) -> str:
    """Horizontal bars: how far each persona is into its review cycle (past 100% is overdue)."""
    width, row, left = 560, 26, 170
    height = max(60, 30 + row * len(reviews))
    plot_w = width - left - 130
    due_x = left + plot_w / 2  # the scale runs to twice the cadence
    body = [
        f'<line x1="{due_x:.1f}" y1="4" x2="{due_x:.1f}" y2="{height - 16}" stroke="#dc2626" '
        'stroke-dasharray="4 3"/>',
        _text(due_x, height - 4, "review due", size=11, anchor="middle", fill="#dc2626"),
    ]
    for i, review in enumerate(reviews):
        y = 6 + i * row
        if review.due_at is None or review.last_reviewed_at is None:
            share, label = 2.0, "never reviewed"
        else:
            cycle = (review.due_at - review.last_reviewed_at).total_seconds() or 1
            share = min(2.0, (now - review.last_reviewed_at).total_seconds() / cycle)
            label = (
                f"{review.overdue_days} days overdue"
                if review.overdue
                else f"due {review.due_at:%Y-%m-%d}"
            )
        colour = "#dc2626" if review.overdue else ("#ca8a04" if share > 0.8 else "#16a34a")
        w = max(2.0, plot_w / 2 * share)
        body.append(_text(left - 8, y + 15, _clip(review.name, 22), anchor="end"))
        body.append(
            f'<rect class="bar" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 10}" '
            f'fill="{colour}"><title>{esc(review.name)}: {esc(label)}</title></rect>'
        )
        body.append(_text(left + w + 6, y + 15, label, size=11))
    if not reviews:
        body.append(_text(width / 2, 34, "No active personas", anchor="middle"))
    return _svg(width, height, "Review status", body)


def chart_outcomes(comparisons: Sequence[Comparison]) -> str:
    """Win rate with its 95% interval, with (blue) and without (grey) personas, per row."""
    width, row, left = 1100, 44, 220
    height = 40 + row * len(comparisons)
    plot_w = width - left - 30
    body = []
    for pct in (0, 25, 50, 75, 100):
        x = left + plot_w * pct / 100
        body.append(f'<line x1="{x:.1f}" y1="18" x2="{x:.1f}" y2="{height - 6}" stroke="#f3f4f6"/>')
        body.append(_text(x, 12, f"{pct}%", size=11, anchor="middle"))
    for i, comparison in enumerate(comparisons):
        y = 30 + i * row
        body.append(_text(left - 8, y + 18, _clip(comparison.label, 28), anchor="end"))
        for offset, rate, colour, side in (
            (10, comparison.used, "#2563eb", "with"),
            (26, comparison.not_used, "#9ca3af", "without"),
        ):
            if rate.win_rate is None:
                continue
            low, high = rate.interval
            cy = y + offset
            x1, x2 = left + plot_w * low, left + plot_w * high
            cx = left + plot_w * rate.win_rate
            body.append(
                f'<line class="ci" x1="{x1:.1f}" y1="{cy}" x2="{x2:.1f}" y2="{cy}" '
                f'stroke="{colour}" stroke-width="2"/>'
                f'<line x1="{x1:.1f}" y1="{cy - 4}" x2="{x1:.1f}" y2="{cy + 4}" stroke="{colour}"/>'
                f'<line x1="{x2:.1f}" y1="{cy - 4}" x2="{x2:.1f}" y2="{cy + 4}" stroke="{colour}"/>'
                f'<circle class="point" cx="{cx:.1f}" cy="{cy}" r="5" fill="{colour}"><title>'
                f"{esc(comparison.label)} ({side}): {percent(rate.win_rate)} of {rate.closed} "
                f"closed deals won, 95% interval {percent(low)}–{percent(high)}</title></circle>"
            )
    if not comparisons:
        body.append(_text(width / 2, 30, "No closed deals in this period", anchor="middle"))
    return _svg(width, height, "Win rate with and without personas", body)


# page ---------------------------------------------------------------------------------------


def _table(head: Sequence[str], rows: Iterable[Sequence[object]], numeric: set[int]) -> str:
    cells = "".join(
        f'<th class="n">{esc(h)}</th>' if i in numeric else f"<th>{esc(h)}</th>"
        for i, h in enumerate(head)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{esc(v)}</td>' if i in numeric else f"<td>{esc(v)}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _rate_cells(comparison: Comparison) -> list[object]:
    out: list[object] = []
    for rate in (comparison.used, comparison.not_used):
        low, high = rate.interval
        out += [
            rate.closed,
            percent(rate.win_rate),
            f"{percent(low)}–{percent(high)}" if rate.closed else "",
            money(rate.average_won_amount) if rate.average_won_amount is not None else "",
        ]
    return out


def render_dashboard(summary: Summary, *, org_name: str, token: str, days: int) -> str:
    """The whole page as one HTML string (every user string escaped)."""
    names = {p.key: p.name for p in summary.personas}
    links = " ".join(
        f'<a href="/dashboard?{esc(urlencode({"t": token, "days": d}))}">{d} days</a>'
        for d in (7, 30, 90, 365)
    )
    csv_links = (
        f'<a href="/dashboard/summary.csv?{esc(urlencode({"t": token, "days": days}))}">'
        "summary CSV</a>"
        f'<a href="/dashboard/events.csv?{esc(urlencode({"t": token, "days": days}))}">'
        "raw events CSV</a>"
    )
    lookups = summary.lookups
    previous = sum(p.previous_lookups for p in summary.personas)
    trend = trend_text(round(100 * (lookups - previous) / previous, 1)) if previous else "new"
    kpis = (
        f'<div class="kpis"><div class="kpi"><b>{lookups:,}</b>persona lookups ({esc(trend)})</div>'
        f'<div class="kpi"><b>{esc(percent(summary.adoption))}</b>adoption '
        f"({summary.persona_users:,} of {summary.users:,} people)</div>"
        f'<div class="kpi"><b>{summary.unmatched_searches + summary.unmatched_fits:,}</b>'
        "searches and fits without a persona</div>"
        f'<div class="kpi"><b>{len(summary.overdue)}</b>reviews overdue</div></div>'
    )
    persona_table = _table(
        ("Persona", "Lookups", "Fits", "People", "Trend"),
        (
            (p.name, f"{p.lookups:,}", f"{p.fits:,}", f"{p.users:,}", trend_text(p.trend))
            for p in summary.personas
        ),
        {1, 2, 3},
    )
    where_table = _table(
        ("Platform", "Channel", "Commands", "People"),
        [(s.platform, "all", f"{s.events:,}", f"{s.users or 0:,}") for s in summary.platforms]
        + [(s.platform, s.channel or "", f"{s.events:,}", "") for s in summary.channels],
        {2, 3},
    )
    unused = (
        "<p>Nobody used: " + esc(", ".join(p.name for p in summary.unused)) + "</p>"
        if summary.unused
        else "<p>Every persona was used in this period.</p>"
    )
    feedback_rows = []
    for f in summary.feedback:
        latest = " · ".join(f"“{_clip(c.text, 160)}” ({c.created_at:%Y-%m-%d})" for c in f.latest)
        feedback_rows.append((f.name, f.up, f.down, f"{f.score:+d}", f.comments, latest))
    feedback = (
        _table(
            ("Persona", "Up", "Down", "Score", "Comments", "Latest"), feedback_rows, {1, 2, 3, 4}
        )
        if feedback_rows
        else "<p>No feedback in this period.</p>"
    )
    outcomes = summary.outcomes
    comparisons = [outcomes.overall, *outcomes.personas]
    outcome_table = _table(
        (
            "",
            "Deals with",
            "Won",
            "95% CI",
            "Avg won",
            "Deals without",
            "Won",
            "95% CI",
            "Avg won",
            "Note",
        ),
        ([c.label, *_rate_cells(c), c.warning or ""] for c in comparisons),
        {1, 2, 4, 5, 6, 8},
    )
    warning = (
        f'<p class="warn">⚠️ {esc(outcomes.overall.warning)}</p>' if outcomes.overall.warning else ""
    )
    sections = [
        f'<section class="wide"><h2>At a glance</h2>{kpis}</section>',
        '<section class="wide"><h2>Lookups per persona per week</h2>'
        f"{chart_weekly_lookups(summary.weeks, names)}</section>",
        f"<section><h2>Adoption over time</h2>{chart_adoption(summary.weeks)}"
        '<p class="muted">Share of the people who used the bot that week who used a persona.'
        "</p></section>",
        f"<section><h2>Knowledge gaps</h2>{chart_gaps(summary.gaps)}"
        f'<p class="muted">{summary.unmatched_searches:,} searches found nothing and '
        f"{summary.unmatched_fits:,} fits had no persona; similar wordings are grouped.</p>"
        "</section>",
        f"<section><h2>Per persona</h2>{persona_table}{unused}</section>",
        f"<section><h2>Where</h2>{where_table}</section>",
        f"<section><h2>Review status</h2>{chart_reviews(summary.reviews, summary.generated_at)}"
        "</section>",
        f"<section><h2>Feedback</h2>{feedback}</section>",
        '<section class="wide"><h2>Deal outcomes: with and without personas</h2>'
        f"{chart_outcomes(comparisons)}{warning}{outcome_table}"
        f'<p><strong>{esc(outcomes.caveat)}</strong></p><p class="muted">Intervals: '
        f"{esc(outcomes.method)}. Blue: deals on which the persona was used (a lookup or fit "
        f"carrying the deal id); grey: deals on which no persona was used. "
        f"{outcomes.open_deals:,} deals are still open.</p></section>",
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>Persona dashboard · {esc(org_name)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>Persona dashboard · {esc(org_name)}</h1>"
        f"<p>Last {days} days: {summary.start:%Y-%m-%d} to {summary.end:%Y-%m-%d %H:%M} UTC</p>"
        f"</header><nav>{links} · Download: {csv_links}</nav>"
        f"<main>{''.join(sections)}</main>"
        f"<footer>Generated {summary.generated_at:%Y-%m-%d %H:%M} UTC. This link is private "
        "and expires 24 hours after it was sent; ask for a new one with "
        "<code>/persona dashboard</code>.</footer></body></html>"
    )


# CSV ----------------------------------------------------------------------------------------


def csv_safe(value: object) -> object:
    """Neutralise spreadsheet formulas in user text (=, +, -, @ at the start of a cell)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def summary_csv(summary: Summary) -> str:
    """The summary as rows of (section, name, metric, value)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "name", "metric", "value"])
    rows: list[tuple[object, ...]] = [
        ("period", "", "start", summary.start.isoformat()),
        ("period", "", "end", summary.end.isoformat()),
        ("overall", "", "events", summary.events),
        ("overall", "", "users", summary.users),
        ("overall", "", "persona_users", summary.persona_users),
        ("overall", "", "adoption", "" if summary.adoption is None else round(summary.adoption, 4)),
    ]
    for p in summary.personas:
        rows += [
            ("persona", p.key, "lookups", p.lookups),
            ("persona", p.key, "fits", p.fits),
            ("persona", p.key, "users", p.users),
            ("persona", p.key, "previous_lookups", p.previous_lookups),
        ]
    rows += [("platform", s.platform, "events", s.events) for s in summary.platforms]
    rows += [("channel", f"{s.platform}:{s.channel}", "events", s.events) for s in summary.channels]
    rows += [("gap", g.text, f"{g.kind}_count", g.count) for g in summary.gaps]
    rows += [("unused", p.key, "lookups", 0) for p in summary.unused]
    for f in summary.feedback:
        rows += [("feedback", f.key, "up", f.up), ("feedback", f.key, "down", f.down)]
        rows += [("feedback", f.key, "comments", f.comments)]
    rows += [("review_overdue", r.key, "overdue_days", r.overdue_days) for r in summary.overdue]
    for c in [summary.outcomes.overall, *summary.outcomes.personas]:
        for side, rate in (("with", c.used), ("without", c.not_used)):
            low, high = rate.interval
            name = c.key or "any"
            rows += [
                ("outcome", name, f"{side}_closed", rate.closed),
                ("outcome", name, f"{side}_won", rate.won),
                (
                    "outcome",
                    name,
                    f"{side}_win_rate",
                    "" if rate.win_rate is None else round(rate.win_rate, 4),
                ),
                ("outcome", name, f"{side}_ci95_low", round(low, 4)),
                ("outcome", name, f"{side}_ci95_high", round(high, 4)),
            ]
    for row in rows:
        writer.writerow([csv_safe(v) for v in row])
    return out.getvalue()


EVENT_COLUMNS = (
    "ts",
    "platform",
    "user_id",
    "channel",
    "command",
    "persona",
    "query",
    "matched",
    "score",
    "deal_id",
    "latency_ms",
)


# web ----------------------------------------------------------------------------------------


def _page(status: int, title: str, text: str) -> web.Response:
    body = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{esc(title)}</h1></header><main><section><p>{esc(text)}</p>"
        "</section></main></body></html>"
    )
    return web.Response(
        status=status,
        text=body,
        content_type="text/html",
        charset="utf-8",
        headers=SECURITY_HEADERS,
    )


FORBIDDEN_TEXT = (
    "This dashboard link has expired or is not valid. "
    "Ask for a new one with /persona dashboard (managers and admins)."
)


class DashboardRoutes:
    """The dashboard's request handlers, bound to one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def _authorise(self, request: web.Request) -> tuple[int, int] | web.Response:
        """(organization, days) for a valid token, else the 403/503 page to answer."""
        try:
            days = parse_days(request.query.get("days", ""), DEFAULT_DAYS)
        except CommandError:
            days = DEFAULT_DAYS
        try:
            secret = await dashboard_secret(self.runtime)
        except TemporarilyUnavailable:
            return _page(503, "Temporarily unavailable", messages.UNAVAILABLE)
        org_id = verify(secret, request.query.get("t", ""), self.runtime.clock())
        if org_id is None:
            return _page(403, "Link expired or not valid", FORBIDDEN_TEXT)
        return org_id, days

    async def _summary(self, org_id: int, days: int) -> Summary:
        runtime = self.runtime
        now = runtime.clock()
        await runtime.db(runtime.usage.flush, 1.0)
        return await runtime.db(
            summarize_days,
            runtime.engine,
            org_id,
            days,
            now,
            db_timeout=SUMMARY_TIMEOUT,
        )

    async def page(self, request: web.Request) -> web.Response:
        granted = await self._authorise(request)
        if isinstance(granted, web.Response):
            return granted
        org_id, days = granted
        try:
            summary = await self._summary(org_id, days)
            org_name = await self.runtime.db(self.runtime.store.org_name, org_id)
        except TemporarilyUnavailable:
            return _page(503, "Temporarily unavailable", messages.UNAVAILABLE)
        page = render_dashboard(summary, org_name=org_name, token=request.query["t"], days=days)
        return web.Response(
            text=page, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS
        )

    async def summary_csv(self, request: web.Request) -> web.Response:
        granted = await self._authorise(request)
        if isinstance(granted, web.Response):
            return granted
        org_id, days = granted
        try:
            summary = await self._summary(org_id, days)
        except TemporarilyUnavailable:
            return _page(503, "Temporarily unavailable", messages.UNAVAILABLE)
        headers = {
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="persona-summary-{days}d.csv"',
        }
        return web.Response(
            text=summary_csv(summary), content_type="text/csv", charset="utf-8", headers=headers
        )

    async def events_csv(self, request: web.Request) -> web.StreamResponse:
        """The raw usage events of the token's organization for the period, streamed."""
        granted = await self._authorise(request)
        if isinstance(granted, web.Response):
            return granted
        org_id, days = granted
        runtime = self.runtime
        now = runtime.clock()
        start_ms = int((now - timedelta(days=days)).timestamp() * 1000)
        end_ms = int(now.timestamp() * 1000) + 1  # up to and including now

        async def fetch(after: tuple[int, int] | None) -> list[tuple[Any, ...]]:
            return await runtime.db(
                usage_events_page, runtime.engine, org_id, start_ms, end_ms, after, CSV_PAGE
            )

        try:
            await runtime.db(runtime.usage.flush, 1.0)
            rows = await fetch(None)
        except TemporarilyUnavailable:
            return _page(503, "Temporarily unavailable", messages.UNAVAILABLE)
        response = web.StreamResponse(
            headers={
                **SECURITY_HEADERS,
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="persona-usage-events-{days}d.csv"',
            }
        )
        await response.prepare(request)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EVENT_COLUMNS)
        while True:
            for row in rows:
                ts = datetime.fromtimestamp(row[0] / 1000, UTC).isoformat(timespec="milliseconds")
                writer.writerow([csv_safe(v) for v in (ts, *row[1:-1])])
            await response.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
            if len(rows) < CSV_PAGE:
                break
            try:
                rows = await fetch((rows[-1][0], rows[-1][-1]))
            except TemporarilyUnavailable:
                log.warning("events CSV of organization %d cut short: database unavailable", org_id)
                break
        await response.write_eof()
        return response


def mount_dashboard(app: web.Application, runtime: Runtime) -> None:
    """Add ``/dashboard`` and its CSV downloads to the web app."""
    routes = DashboardRoutes(runtime)
    app.router.add_get("/dashboard", routes.page)
    app.router.add_get("/dashboard/summary.csv", routes.summary_csv)
    app.router.add_get("/dashboard/events.csv", routes.events_csv)


# chat ---------------------------------------------------------------------------------------


async def dashboard_handler(turn: Turn) -> Reply:
    """``/persona dashboard``: a private, 24-hour link for managers and admins."""
    if not can_read_summaries(turn.role):
        raise PermissionDenied(messages.not_allowed("open the dashboard", "managers and admins"))
    runtime = turn.runtime
    days = parse_days(turn.command.args, DEFAULT_DAYS)
    url = await dashboard_url(runtime, turn.org_id, days=days if turn.command.args else None)
    private = Reply(
        summary="Your persona dashboard link",
        blocks=(
            Text(url, title="Your persona dashboard (private, valid 24 hours)"),
            Context("Do not share this link: anyone who has it can read the dashboard."),
        ),
        kind="ack",
        ephemeral=True,
        data={"url": url},
    )
    notifier = runtime.notifiers.get(turn.command.platform)
    if notifier is None:
        return private
    # Teams and Slack channels show replies to everyone: send the link in a direct message.
    recipient = Recipient(
        org_id=turn.org_id,
        user_id=turn.user.id,
        email=turn.user.email,
        platform=turn.command.platform,
    )
    try:
        await notifier.send(recipient, private)
    except DeliveryError as exc:
        log.warning("dashboard link not sent privately (%s); answering ephemerally", exc)
        return private
    return Reply.text("I sent you the dashboard link in a direct message (valid 24 hours).")
