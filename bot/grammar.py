"""The ``/persona`` grammar, shared by every platform.

One parser turns what someone typed (``/persona fiona``, ``@persona-bot which persona fits
a 300-person fintech?``, ``persona fit D-1042: ...`` in Teams, a line in the terminal) into a
verb and its argument text. Anything that is not a known verb is a lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz, process

# verb -> what it does, in the order ``help`` lists them. Aliases map onto these.
VERBS: dict[str, str] = {
    "lookup": "show a persona card (the default: `/persona fiona`)",
    "list": "list all personas",
    "fit": "which persona fits a deal: `/persona fit D-1042: Series B fintech, 300 staff, CFO`",
    "feedback": "tell the persona owner something: `/persona feedback fiona too US-centric`",
    "stats": "usage summary for the last N days (managers): `/persona stats 30`",
    "dashboard": "a private link to the usage dashboard (managers)",
    "deal": "record a deal's outcome: `/persona deal D-1042 won 12000`",
    "review": "mark a persona reviewed (its owner or an admin): `/persona review fiona`",
    "health": "check the persona programme for the classic failures",
    "history": "the last changes to a persona: `/persona history fiona`",
    "edit": "change a persona in an editor (its owner or an admin): `/persona edit fiona`",
    "new": "create a persona (admins)",
    "archive": "hide a persona from lookup and matching, keeping its history (owner or admin)",
    "help": "this help",
}
ALIASES: dict[str, str] = {
    "?": "help",
    "-h": "help",
    "--help": "help",
    "ls": "list",
    "all": "list",
    "show": "lookup",
    "find": "lookup",
    "lookup": "lookup",
    "match": "fit",
    "changes": "history",
    "log": "history",
}
_LEADING = re.compile(r"^\s*(?:/persona|persona)\b[\s:,]*", re.IGNORECASE)
_QUESTION = re.compile(
    r"^\s*(?:which|what|who|whose)\s+(?:persona|personas|profile)?\s*"
    r"(?:fits|fit|matches|match|is|would\s+fit|best\s+fits)\b[\s:,-]*(?P<deal>.*)$",
    re.IGNORECASE | re.DOTALL,
)
MAX_INPUT = 4000


@dataclass(frozen=True)
class Parsed:
    verb: str
    args: str


def clean(text: str) -> str:
    """Drop control characters and squeeze white space; cap the length."""
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text[: MAX_INPUT * 2])
    return " ".join(text.split())[:MAX_INPUT]


def parse(text: str, *, extra_verbs: frozenset[str] = frozenset()) -> Parsed:
    """Split typed text into a verb and its arguments. Empty text asks for help."""
    text = clean(text)
    stripped = _LEADING.sub("", text, count=1) if _LEADING.match(text) else text
    if not stripped:
        return Parsed("help", "")
    question = _QUESTION.match(stripped)
    if question:
        return Parsed("fit", question.group("deal").strip().rstrip("?").strip())
    head, _, rest = stripped.partition(" ")
    word = head.lower()
    if word in VERBS or word in extra_verbs:
        return Parsed(word, rest.strip())
    if word in ALIASES:
        return Parsed(ALIASES[word], rest.strip())
    return Parsed("lookup", stripped.strip().rstrip("?").strip())


def close_verb(word: str, *, extra_verbs: frozenset[str] = frozenset()) -> str | None:
    """A verb the user probably meant (``hlep`` -> ``help``), if any."""
    if len(word) < 3:
        return None
    choices = [v for v in (*VERBS, *extra_verbs) if v != "lookup"]
    found = process.extractOne(word.lower(), choices, scorer=fuzz.ratio, score_cutoff=75)
    return found[0] if found else None
