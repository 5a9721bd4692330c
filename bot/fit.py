"""``/persona fit <deal>``: which persona fits a deal, ranked and explained.

The matcher for an organization is built once per catalog version (off the event loop) and
kept with the catalog. A fit may carry a deal id (``/persona fit D-1042: Series B fintech``):
the best persona is then linked to that deal for outcome reporting, and "This one fits"
records the rep's own choice.
"""

from __future__ import annotations

import asyncio
import re

from bot import messages
from bot.catalog import Catalog
from bot.errors import CommandError
from bot.grammar import MAX_INPUT
from bot.model import Block, Button, Buttons, Context, Header, Reply, Text
from bot.router import Turn
from persona_store.matcher import DealQuery, FitResult, Match, Matcher

TOP = 3
MAX_REASONS_FOR = 4
MAX_REASONS_AGAINST = 2
DEAL_ID = re.compile(
    r"^\s*(?:deal\s+)?(?P<id>[A-Za-z0-9][A-Za-z0-9._/#-]{0,40}\d[A-Za-z0-9._/#-]{0,40}|#\d+)"
    r"\s*[:—–]\s*(?P<rest>.*)$",
    re.DOTALL,
)
NUMERIC_FIELDS = ("employees", "revenue_usd")
TEXT_FIELDS = ("industry", "region", "title", "stage")


def split_deal_id(text: str) -> tuple[str | None, str]:
    """``"D-1042: Series B fintech"`` -> ``("D-1042", "Series B fintech")``."""
    found = DEAL_ID.match(text)
    if found and found.group("rest").strip():
        return found.group("id"), found.group("rest").strip()
    return None, text.strip()


def score_bar(score: int, width: int = 10) -> str:
    filled = round(score / 100 * width)
    return "█" * filled + "░" * (width - filled)


async def matcher_for(catalog: Catalog) -> Matcher:
    """The catalog's matcher, built on first use in a worker thread (large sets take time)."""
    matcher: Matcher | None = catalog.extras.get("matcher")
    if matcher is None:
        lock = catalog.extras.setdefault("matcher_lock", asyncio.Lock())
        async with lock:
            matcher = catalog.extras.get("matcher")
            if matcher is None:
                specs = [p.spec for p in catalog.personas]
                matcher = await asyncio.to_thread(Matcher, specs)
                catalog.extras["matcher"] = matcher
    return matcher


def query_from(text: str, fields: dict[str, str] | None) -> DealQuery:
    """A DealQuery from free text plus structured fields; bad numbers are user errors."""
    values: dict[str, object] = {"text": text}
    for name, raw in (fields or {}).items():
        raw = raw.strip()
        if not raw:
            continue
        if name in NUMERIC_FIELDS:
            cleaned = raw.replace(",", "").replace("_", "").lstrip("$")
            if not cleaned.isdecimal():  # not isdigit(): "²" is a digit that int() refuses
                label = "head count" if name == "employees" else "annual revenue"
                raise CommandError(f"The {label} must be a whole number, not '{raw}'.")
            values[name] = int(cleaned)
        elif name in TEXT_FIELDS:
            values[name] = raw[:200]
    return DealQuery(**values)  # type: ignore[arg-type]


def _match_block(rank: int, match: Match, fits: bool) -> Text:
    reasons = tuple(f"✓ {r}" for r in match.reasons_for[:MAX_REASONS_FOR]) + tuple(
        f"✗ {r}" for r in match.reasons_against[:MAX_REASONS_AGAINST]
    )
    label = "" if fits else " (does not fit)"
    return Text(
        title=f"{rank}. {match.name}{label}: {match.score}/100 {score_bar(match.score)}",
        items=reasons,
    )


def fit_reply(result: FitResult, deal_id: str | None) -> Reply:
    blocks: list[Block] = [Header("Which persona fits this deal?")]
    top = result.matches[:TOP]
    if result.best is not None:
        blocks.append(Text(result.verdict))
        for i, match in enumerate(top, 1):
            blocks.append(_match_block(i, match, fits=i == 1))
        best = top[0]
        blocks.append(
            Buttons(
                (
                    Button(
                        "✅ This one fits", "confirm", f"{deal_id or '-'} {best.key}", "primary"
                    ),
                    Button(f"Show {best.name}", "lookup", best.key),
                )
            )
        )
    else:
        blocks.append(Text(result.verdict, title="No persona fits"))
        if result.missing:
            blocks.append(Text("Add " + " or ".join(result.missing) + " to decide."))
        for i, match in enumerate(top[:2], 1):
            blocks.append(_match_block(i, match, fits=False))
    context = f"Deal {deal_id}. " if deal_id else ""
    context += "Scores compare the deal with each persona's segment, buyer and needs."
    blocks.append(Context(context))
    summary = (
        f"Best fit: {top[0].name} ({top[0].score}/100)"
        if result.best is not None and top
        else f"No persona fits: {result.verdict}"
    )
    return Reply(
        summary=summary,
        blocks=tuple(blocks),
        kind="fit",
        persona_key=result.best,
        data={"fit": result.to_json(), "deal_id": deal_id},
    )


async def fit_handler(turn: Turn) -> Reply:
    # Typed text is already capped by the grammar; a button's arguments are not.
    deal_id, text = split_deal_id(turn.command.args[:MAX_INPUT])
    fields = dict(turn.command.fields)
    if not text and not any(fields.values()):
        raise CommandError(
            "Describe the deal, for example "
            "`/persona fit D-1042: Series B fintech, 300 staff, the CFO worries about audit`."
        )
    query = query_from(text, fields)
    catalog = await turn.catalog()
    if not catalog.personas:
        raise CommandError(messages.NO_PERSONAS)
    matcher = await matcher_for(catalog)
    result = (
        await asyncio.to_thread(matcher.rank, query)
        if len(catalog.personas) > 500
        else (matcher.rank(query))
    )
    turn.usage.query = turn.command.args or text
    turn.usage.deal_id = deal_id
    turn.usage.matched = result.best is not None
    turn.usage.score = float(result.matches[0].score) if result.matches else None
    if result.best is not None:
        best = catalog.get(result.best)
        turn.usage.persona_id = best.id if best else None
        if deal_id:
            await turn.runtime.db(
                turn.runtime.store.link_deal,
                turn.org_id,
                deal_id,
                result.best,
                source="fit",
                user_id=turn.user.id,
            )
    return fit_reply(result, deal_id)


async def confirm_handler(turn: Turn) -> Reply:
    """ "This one fits": the rep confirms a persona for a deal (``-`` when there is none)."""
    deal_id, _, key = turn.command.args.strip().partition(" ")
    catalog = await turn.catalog()
    persona = catalog.get(key.strip())
    if persona is None:
        raise CommandError(messages.no_match(key.strip()), hint=messages.LIST_HINT)
    turn.usage.persona_id, turn.usage.matched = persona.id, True
    if deal_id and deal_id != "-":
        turn.usage.deal_id = deal_id
        await turn.runtime.db(
            turn.runtime.store.link_deal,
            turn.org_id,
            deal_id,
            persona.key,
            source="confirmed",
            user_id=turn.user.id,
        )
        return Reply.text(f"Noted: {persona.name} fits deal {deal_id}.")
    return Reply.text(
        f"Noted: {persona.name} fits. Next time add the deal id "
        f"(`/persona fit D-1042: ...`) so its outcome can be compared."
    )
