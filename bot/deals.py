"""``/persona deal D-1042 won|lost|open [amount]``: record a deal's outcome from chat.

Anyone who works deals may record an outcome (the usage event keeps who did); CRM imports
(``persona-bot deals import``) do the same in bulk. ``/persona deal D-1042`` alone shows the
deal and the personas used on it.
"""

from __future__ import annotations

import re

from bot.cards import money
from bot.errors import CommandError
from bot.model import Context, Fields, Header, Reply
from bot.router import Turn
from persona_store.deals import DealInfo, deal_info, record_outcome
from persona_store.deals_import import parse_amount

DEAL_ID = re.compile(r"^[A-Za-z0-9#][A-Za-z0-9._/#-]{0,127}$")
USAGE = "Record an outcome with `/persona deal D-1042 won 12000` (or `lost`, or `open`)."
_SCALE = {"k": 1e3, "m": 1e6}


def parse_chat_amount(text: str) -> float:
    """``12000``, ``$12,000``, ``12k``, ``1.5M`` -> a number, or a CommandError."""
    raw = text.strip()
    scale = 1.0
    if raw[-1:].lower() in _SCALE:
        scale, raw = _SCALE[raw[-1].lower()], raw[:-1]
    try:
        value = parse_amount(raw)
    except ValueError:
        value = None
    if value is None:
        raise CommandError(f"'{text}' is not an amount. {USAGE}")
    return value * scale


def deal_reply(info: DealInfo, headline: str) -> Reply:
    pairs = [("Outcome", info.outcome)]
    if info.amount is not None:
        pairs.append(("Amount", money(info.amount)))
    if info.closed_at is not None:
        pairs.append(("Closed", f"{info.closed_at:%Y-%m-%d}"))
    used = ", ".join(f"{name} ({source})" for _, name, source in info.personas)
    pairs.append(("Personas used", used or "none"))
    return Reply(
        summary=headline,
        blocks=(
            Header(f"Deal {info.external_id}" + (f": {info.name}" if info.name else "")),
            Fields(tuple(pairs)),
            Context(
                "Personas count as used on a deal when a lookup or a fit carries its id "
                "(`/persona fiona for D-1042`, `/persona fit D-1042: ...`)."
            ),
        ),
        kind="ack",
        data={"deal": info.external_id, "outcome": info.outcome, "amount": info.amount},
    )


async def deal_handler(turn: Turn) -> Reply:
    words = turn.command.args.split()
    if not words:
        raise CommandError(USAGE)
    deal_id = words[0]
    if not DEAL_ID.match(deal_id):
        raise CommandError(f"'{deal_id[:60]}' is not a deal id. {USAGE}")
    turn.usage.deal_id = deal_id
    runtime = turn.runtime
    if len(words) == 1:
        info = await runtime.db(deal_info, runtime.engine, turn.org_id, deal_id)
        if info is None:
            raise CommandError(f"No deal {deal_id} is known yet. {USAGE}")
        return deal_reply(info, f"Deal {deal_id}: {info.outcome}")
    outcome = words[1].lower()
    if outcome not in ("won", "lost", "open"):
        raise CommandError(f"A deal is `won`, `lost` or `open`, not '{words[1][:40]}'. {USAGE}")
    amount = parse_chat_amount(" ".join(words[2:])) if len(words) > 2 else None
    info = await runtime.db(
        record_outcome,
        runtime.engine,
        turn.org_id,
        deal_id,
        outcome,
        amount=amount,
        now=runtime.clock(),
    )
    verb = {"won": "won 🎉", "lost": "lost", "open": "open again"}[outcome]
    return deal_reply(info, f"Deal {deal_id} is {verb}.")
