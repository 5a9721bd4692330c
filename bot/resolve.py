"""Finding the persona a user means: by fuzzy name, or as the leading words of a command.

Used by every handler that takes a persona name, so "did you mean" and "no persona matches"
read the same everywhere.
"""

from __future__ import annotations

from bot import messages
from bot.errors import CommandError
from bot.router import Turn
from persona_store.lookup import normalise
from persona_store.records import StoredPersona


async def resolve_persona(turn: Turn, query: str) -> StoredPersona:
    """The persona a name refers to, or a CommandError that says what to do instead."""
    catalog = await turn.catalog()
    if not catalog.personas:
        raise CommandError(messages.NO_PERSONAS)
    result = catalog.index.lookup(query)
    if result.persona is not None:
        return result.persona
    if result.suggestions:
        raise CommandError(messages.did_you_mean(query, [p.name for p in result.suggestions]))
    raise CommandError(messages.no_match(query), hint=messages.LIST_HINT)


async def split_name(turn: Turn, args: str) -> tuple[StoredPersona, str]:
    """Split ``NAME TEXT``: the longest leading words that name a persona exactly, else the
    first word as a fuzzy name."""
    words = args.split()
    if not words:
        raise CommandError(messages.needs_argument("feedback", "fiona too US-centric"))
    catalog = await turn.catalog()
    for n in range(min(len(words), 4), 0, -1):
        head = normalise(" ".join(words[:n]))
        result = catalog.index.lookup(head)
        if result.outcome == "exact" and result.persona is not None:
            return result.persona, " ".join(words[n:])
    return await resolve_persona(turn, words[0]), " ".join(words[1:])
