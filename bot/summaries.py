"""The usage summary in chat: ``/persona stats [days]`` and the weekly digest's compact text.

Both render a ``persona_store.summary.Summary`` into neutral blocks; ``persona-bot stats
--json`` prints the same summary's JSON (kept in ``Reply.data``), and the dashboard draws it.
"""

from __future__ import annotations

from bot import messages
from bot.cards import money
from bot.errors import CommandError, PermissionDenied
from bot.model import Block, Context, Fields, Header, Reply, Text
from bot.permissions import can_read_summaries
from bot.router import Turn
from persona_store.outcomes import Comparison, Rate
from persona_store.summary import Gap, Summary, summarize_days

DEFAULT_DAYS = 30
MAX_DAYS = 3650
CHAT_ROWS = 8  # rows per list in chat; the dashboard shows everything
SUMMARY_TIMEOUT = 30.0  # a year of heavy use takes seconds; a command's 3 s would cut it off


def parse_days(text: str, default: int = DEFAULT_DAYS) -> int:
    """``30``, ``30d``, ``30 days`` or nothing (the default)."""
    cleaned = text.strip().lower().removesuffix("days").removesuffix("d").strip()
    if not cleaned:
        return default
    # isdecimal, not isdigit: int() refuses digits such as "²"; the length check keeps
    # thousands of digits (which int() also refuses) out.
    if not cleaned.isdecimal() or len(cleaned) > 6 or not 1 <= int(cleaned) <= MAX_DAYS:
        raise CommandError(f"'{text.strip()}' is not a number of days between 1 and {MAX_DAYS}.")
    return int(cleaned)


def count(n: int, word: str, plural: str | None = None) -> str:
    """``1 fit``, ``3 fits``, ``1 person``, ``2 people``."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def trend_text(trend: float | None) -> str:
    if trend is None:
        return "new"
    if trend == 0:
        return "→ 0%"
    return f"{'▲' if trend > 0 else '▼'} {abs(trend):.0f}%"


def rate_text(rate: Rate) -> str:
    if not rate.closed:
        return "no closed deals"
    low, high = rate.interval
    text = f"{percent(rate.win_rate)} won of {rate.closed} (95% CI {percent(low)}–{percent(high)})"
    if rate.average_won_amount is not None:
        text += f", average won {money(rate.average_won_amount)}"
    return text


def comparison_lines(comparison: Comparison) -> tuple[str, ...]:
    lines: tuple[str, ...] = (
        f"With {comparison.label if comparison.key else 'a persona'}: {rate_text(comparison.used)}",
        f"Without any persona: {rate_text(comparison.not_used)}",
    )
    if comparison.warning:
        lines += (f"⚠️ {comparison.warning}",)
    return lines


def gap_text(gap: Gap) -> str:
    kind = "search found nothing" if gap.kind == "search" else "no persona fits"
    others = [v for v in gap.variants if v != gap.text][:2]
    also = f"; also: {', '.join(others)}" if others else ""
    return f"“{gap.text}” ×{gap.count} ({kind}{also})"


def _clip(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary_reply(summary: Summary) -> Reply:
    """The full summary for chat (``/persona stats``)."""
    days = summary.days
    lookups = summary.lookups
    previous = sum(p.previous_lookups for p in summary.personas)
    trend = trend_text(round(100 * (lookups - previous) / previous, 1)) if previous else "no data"
    blocks: list[Block] = [Header(f"Persona usage, last {days} days")]
    blocks.append(
        Text(
            f"{lookups:,} persona lookups ({trend} against the previous {days} days), "
            f"{count(sum(p.fits for p in summary.personas), 'fit')}. Adoption: "
            f"{percent(summary.adoption)} of the {summary.users:,} people who used the bot "
            f"used a persona ({summary.persona_users:,})."
        )
    )
    if summary.personas:
        blocks.append(
            Fields(
                tuple(
                    (
                        p.name,
                        f"{count(p.lookups, 'lookup')} · {count(p.fits, 'fit')} · "
                        f"{count(p.users, 'person', 'people')} · "
                        f"{trend_text(p.trend)}",
                    )
                    for p in summary.personas[:CHAT_ROWS]
                ),
                title="Per persona",
            )
        )
    if summary.platforms:
        where = [
            f"{s.platform}: {count(s.events, 'command')}, {count(s.users or 0, 'person', 'people')}"
            for s in summary.platforms
        ]
        where += [
            f"{s.platform} {s.channel}: {count(s.events, 'command')}" for s in summary.channels[:5]
        ]
        blocks.append(Text(title="Where", items=tuple(where)))
    gaps_title = (
        f"Knowledge gaps ({count(summary.unmatched_searches, 'search', 'searches')} found nothing, "
        f"{count(summary.unmatched_fits, 'fit')} had no persona)"
    )
    if summary.gaps:
        blocks.append(
            Text(title=gaps_title, items=tuple(gap_text(g) for g in summary.gaps[:CHAT_ROWS]))
        )
    else:
        blocks.append(Text("Every search found a persona.", title="Knowledge gaps"))
    if summary.unused:
        blocks.append(
            Text(
                title="Nobody used",
                items=tuple(f"{p.name} ({p.key})" for p in summary.unused),
            )
        )
    if summary.feedback:
        items = []
        for f in summary.feedback[:CHAT_ROWS]:
            line = (
                f"{f.name}: 👍 {f.up} 👎 {f.down} (score {f.score:+d}), "
                f"{count(f.comments, 'comment')}"
            )
            if f.latest:
                line += f"; latest: “{_clip(f.latest[0].text)}”"
            items.append(line)
        blocks.append(Text(title="Feedback", items=tuple(items)))
    overdue = summary.overdue
    if overdue:
        blocks.append(
            Text(
                title="Reviews overdue",
                items=tuple(
                    f"{r.name}: "
                    + (f"{r.overdue_days} days overdue" if r.due_at else "never reviewed")
                    + (f" (owner {r.owner})" if r.owner else " (no owner)")
                    for r in overdue
                ),
            )
        )
    outcomes = summary.outcomes
    blocks.append(Text(title="Deal outcomes", items=comparison_lines(outcomes.overall)))
    blocks.append(
        Context(f"{outcomes.caveat} Intervals: {outcomes.method}. Charts: `/persona dashboard`.")
    )
    return Reply(
        summary=f"Persona usage, last {days} days: {lookups:,} lookups, "
        f"adoption {percent(summary.adoption)}",
        blocks=tuple(blocks),
        kind="stats",
        data=summary.to_json(),
    )


def digest_reply(summary: Summary, dashboard_url: str | None) -> Reply:
    """The compact weekly digest for managers: the headline numbers and a dashboard link."""
    lookups = summary.lookups
    previous = sum(p.previous_lookups for p in summary.personas)
    trend = (
        trend_text(round(100 * (lookups - previous) / previous, 1))
        if previous
        else "no earlier data"
    )
    lines = [
        f"{lookups:,} persona lookups ({trend}), adoption {percent(summary.adoption)} "
        f"({summary.persona_users:,} of {summary.users:,} people).",
    ]
    if summary.personas:
        top = summary.personas[0]
        lines.append(f"Most used: {top.name} ({count(top.lookups, 'lookup')}).")
    if summary.unused:
        lines.append("Nobody used: " + ", ".join(p.name for p in summary.unused[:5]) + ".")
    if summary.gaps:
        lines.append(
            "Top knowledge gaps: " + "; ".join(f"“{g.text}” ×{g.count}" for g in summary.gaps[:3])
        )
    if summary.overdue:
        lines.append(f"{len(summary.overdue)} persona review(s) overdue.")
    overall = summary.outcomes.overall
    if overall.used.closed or overall.not_used.closed:
        lines.append(
            f"Win rate with a persona {percent(overall.used.win_rate)} "
            f"(n={overall.used.closed}) vs without {percent(overall.not_used.win_rate)} "
            f"(n={overall.not_used.closed})"
            + (" — too few deals to conclude." if overall.warning else ".")
        )
    blocks: list[Block] = [
        Header(f"Persona digest: the last {summary.days} days"),
        Text(items=tuple(lines)),
    ]
    footer = "Correlation, not causation."
    if dashboard_url:
        footer = f"Dashboard (link valid 24 h): {dashboard_url} · " + footer
    blocks.append(Context(footer))
    return Reply(
        summary=f"Persona digest: {lookups:,} lookups, adoption {percent(summary.adoption)}",
        blocks=tuple(blocks),
        kind="stats",
        ephemeral=False,
        data={"dashboard_url": dashboard_url},
    )


async def stats_handler(turn: Turn) -> Reply:
    """``/persona stats [days]``: the full summary, for managers and admins."""
    if not can_read_summaries(turn.role):
        raise PermissionDenied(messages.not_allowed("read usage summaries", "managers and admins"))
    days = parse_days(turn.command.args)
    runtime = turn.runtime
    now = runtime.clock()
    # Include the commands of a moment ago; give up waiting rather than hold the reply.
    await runtime.db(runtime.usage.flush, 1.0)
    summary = await runtime.db(
        summarize_days,
        runtime.engine,
        turn.org_id,
        days,
        now,
        db_timeout=SUMMARY_TIMEOUT,
    )
    return summary_reply(summary)
