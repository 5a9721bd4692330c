"""Fuzzy persona lookup: exact keys and names, prefixes, nicknames and typos.

``/persona fiona`` must find "Finance Fiona", ``finanse fiona`` too, and ``pa`` between
"Platform Paula" and "Procurement Paula" must ask rather than guess. Each persona gets a few
aliases (its name, its key as words, and each longer word of either, the nicknames), and a
query is scored against all of them at once with rapidfuzz: whole-string similarity,
word-order-insensitive similarity, and prefix similarity weighted by how much of the alias the
query covers. A clear winner is a match; close calls become "did you mean" suggestions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from rapidfuzz import fuzz, process

from persona_store.records import StoredPersona

CONFIDENT = 84.0  # a score at or above this is a match, if it is clearly ahead
MARGIN = 8.0  # ... by at least this much over the next persona
SUGGEST = 60.0  # scores at or above this are offered as "did you mean"
MAX_SUGGESTIONS = 3
CLEAR_LEAD = 25.0  # a lower score still wins when nothing else comes close
MIN_PREFIX = 3  # shorter queries must match a whole word ("IT") to be a match
SHORT_PREFIX_WEIGHT = 0.72  # keeps two-letter prefixes below every match threshold
MEMO_SIZE = 2048  # answers kept per index: people ask for the same few names all day

Outcome = Literal["exact", "match", "ambiguous", "none"]


def normalise(text: str) -> str:
    """Lower case, no accents, words separated by single spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


@dataclass(frozen=True)
class LookupResult:
    outcome: Outcome
    query: str
    persona: StoredPersona | None = None
    score: float = 0.0
    suggestions: tuple[StoredPersona, ...] = ()

    @property
    def matched(self) -> bool:
        return self.persona is not None


class PersonaIndex:
    """Aliases of a fixed set of personas, ready to be searched."""

    def __init__(self, personas: Sequence[StoredPersona]) -> None:
        self.personas = list(personas)
        self._exact: dict[str, int] = {}
        aliases: list[str] = []
        owners: list[int] = []
        for i, persona in enumerate(self.personas):
            full_names = {normalise(persona.spec.name), normalise(persona.spec.key)}
            for full in full_names:
                self._exact.setdefault(full, i)
            words = {w for full in full_names for w in full.split() if len(w) >= 2}
            for alias in sorted(full_names | words):
                aliases.append(alias)
                owners.append(i)
        self._aliases = aliases
        self._owners = np.array(owners, dtype=np.int64)
        # The index never changes (a new catalog version builds a new one), so an answer
        # stays right as long as the index lives.
        self._memo: dict[str, LookupResult] = {}

    def lookup(self, query: str) -> LookupResult:
        result = self._memo.get(query)
        if result is None:
            result = self._lookup(query)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[query] = result
        return result

    def _lookup(self, query: str) -> LookupResult:
        q = normalise(query)
        if not q or not self.personas:
            return LookupResult("none", query)
        if q in self._exact:
            return LookupResult("exact", query, self.personas[self._exact[q]], 100.0)
        scores = self._persona_scores(q)
        order = np.argsort(-scores, kind="stable")
        best = float(scores[order[0]])
        second = float(scores[order[1]]) if len(order) > 1 else 0.0
        lead = best - second
        if (best >= CONFIDENT and lead >= MARGIN) or (best >= SUGGEST + 15 and lead >= CLEAR_LEAD):
            return LookupResult("match", query, self.personas[int(order[0])], best)
        suggestions = tuple(
            self.personas[int(i)] for i in order[:MAX_SUGGESTIONS] if scores[i] >= SUGGEST
        )
        if suggestions:
            return LookupResult("ambiguous", query, None, best, suggestions)
        return LookupResult("none", query, None, best)

    def _persona_scores(self, q: str) -> np.ndarray:
        whole = process.cdist([q], self._aliases, scorer=fuzz.ratio)[0]
        unordered = process.cdist([q], self._aliases, scorer=fuzz.token_sort_ratio)[0]
        alias_scores = np.maximum(whole, unordered)
        if len(q) >= 2:
            heads = [a[: len(q)] for a in self._aliases]
            prefix = process.cdist([q], heads, scorer=fuzz.ratio, dtype=np.float32)[0]
            if len(q) >= MIN_PREFIX:
                coverage = np.array([min(1.0, len(q) / len(a)) for a in self._aliases])
                # A 3-letter prefix of a long word is a weaker hint than most of the word.
                weight = 0.86 + 0.14 * coverage
            else:
                # Two letters can only suggest, never decide.
                weight = np.full(len(self._aliases), SHORT_PREFIX_WEIGHT)
            alias_scores = np.maximum(alias_scores, prefix * weight)
        per_persona = np.zeros(len(self.personas))
        np.maximum.at(per_persona, self._owners, alias_scores)
        return per_persona
