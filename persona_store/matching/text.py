"""Small text tools shared by the fact readers and the scorer: one tokenizer, one normalizer.

Deal notes and persona files are both read through ``tokenize`` so that a vocabulary phrase,
a persona keyword and a rep's sentence are compared word for word in the same form
(lower case, no accents, hyphens and apostrophes split). Every token keeps its character
span in the original text, so a fact can always quote what it was read from. ``stem`` is a
deliberately light English suffix stripper: good enough to meet "pages" with "paging", cheap
enough to run on every word of every query.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")

_QUOTES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "–": "-", "—": "-", "‑": "-"})

# Numbers first, so "12k" is "12" + "k" and "3 200" (French thousands) stays one number.
_TOKEN_RE = re.compile(
    r"\d{1,3}(?:[,.\u00a0\u202f ]\d{3})+(?:[.,]\d+)?(?!\d)"
    r"|\d+(?:[.,]\d+)?"
    r"|[^\W\d_]+\d*[^\W\d_]*"
    r"|[&$€£¥₹~+/#@%]"
    r"|[,;:.()!?]"
)
PUNCT = frozenset(",;:.()!?")


@functools.lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Lower-case, accent-free form of ``text`` (é -> e, ß kept as ss)."""
    text = text.translate(_QUOTES).replace("ß", "ss")
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


class Token(NamedTuple):
    """One word of a text: its folded form and where it sits in the original.

    A named tuple rather than a dataclass: thousands are made per query and tuples are
    several times cheaper to build.
    """

    norm: str
    start: int
    end: int

    @property
    def is_number(self) -> bool:
        return self.norm[:1].isdigit()


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into folded tokens with their spans in ``text``."""
    text = text.translate(_QUOTES)
    return [Token(fold(m.group()), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def words(text: str) -> tuple[str, ...]:
    """Folded tokens of ``text`` without spans (for vocabulary phrases)."""
    return tuple(fold(m.group()) for m in _TOKEN_RE.finditer(text.translate(_QUOTES)))


_SUFFIXES: tuple[tuple[str, str, int], ...] = (
    # (suffix, replacement, shortest stem left); longest suffixes first.
    ("izations", "", 4),
    ("isations", "", 4),
    ("ization", "", 4),
    ("isation", "", 4),
    ("ations", "", 4),
    ("ation", "", 4),
    ("ators", "", 4),
    ("ator", "", 4),
    ("ements", "", 4),
    ("ement", "", 4),
    ("ities", "", 4),
    ("ity", "", 4),
    ("ness", "", 4),
    ("izing", "", 4),
    ("ising", "", 5),
    ("izes", "", 4),
    ("ized", "", 4),
    ("ize", "", 4),
    ("ings", "", 4),
    ("ing", "", 4),
    ("ies", "y", 3),
    ("ied", "y", 3),
    ("ates", "", 4),
    ("ated", "", 4),
    ("ate", "", 4),
    ("ers", "", 4),
    ("er", "", 4),
    ("ed", "", 4),
    ("es", "", 4),
    ("s", "", 3),
)
_KEEP_ENDINGS = ("ss", "us", "is", "os", "as")


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English stem: "paging", "pages", "paged" -> "pag"; short words stay as they are."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith(_KEEP_ENDINGS):
        return word
    for suffix, repl, shortest in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= shortest:
            base = word[: len(word) - len(suffix)] + repl
            # "running" -> "runn" -> "run": double consonants left by a suffix are one sound.
            if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "aeiouls":
                base = base[:-1]
            if base.endswith("e") and len(base) > 4:
                base = base[:-1]
            return base
    if word.endswith("e") and len(word) > 4:
        return word[:-1]
    return word


class PhraseHit(NamedTuple, Generic[T]):
    """A vocabulary phrase found in a token list: tokens [start, end) and its payload."""

    start: int
    end: int
    value: T


class PhraseIndex(Generic[T]):
    """Longest-match lookup of multi-word phrases in a token list.

    Built once per vocabulary; a lookup costs one set test per token plus a few dictionary
    probes where a phrase can start, so it stays cheap on every query.
    """

    def __init__(self, phrases: Iterable[tuple[tuple[str, ...], T]]) -> None:
        self._table: dict[tuple[str, ...], T] = {}
        self._longest: dict[str, int] = {}
        for key, value in phrases:
            if not key:
                continue
            # The first definition of a phrase wins: tables list the specific meaning first.
            self._table.setdefault(key, value)
            self._longest[key[0]] = max(self._longest.get(key[0], 0), len(key))

    def __contains__(self, key: tuple[str, ...]) -> bool:
        return key in self._table

    def get(self, key: tuple[str, ...]) -> T | None:
        return self._table.get(key)

    def first_words(self) -> set[str]:
        return set(self._longest)

    def all_words(self) -> set[str]:
        return {w for key in self._table for w in key}

    def items(self) -> Iterator[tuple[tuple[str, ...], T]]:
        return iter(self._table.items())

    def match_at(self, norms: Sequence[str], i: int, end: int | None = None) -> PhraseHit[T] | None:
        """The longest phrase starting exactly at ``norms[i]``, if any."""
        end = len(norms) if end is None else end
        if i >= end:
            return None
        n = self._longest.get(norms[i], 0)
        for size in range(min(n, end - i), 0, -1):
            value = self._table.get(tuple(norms[i : i + size]))
            if value is not None:
                return PhraseHit(i, i + size, value)
        return None

    def find(
        self, norms: Sequence[str], start: int = 0, end: int | None = None
    ) -> list[PhraseHit[T]]:
        """Non-overlapping longest phrases in ``norms[start:end]``, left to right."""
        end = len(norms) if end is None else end
        hits: list[PhraseHit[T]] = []
        longest = self._longest
        table = self._table
        after = start
        # Only positions whose word can start a phrase are probed at all.
        for i in [k for k in range(start, end) if norms[k] in longest]:
            if i < after:
                continue
            for size in range(min(longest[norms[i]], end - i), 0, -1):
                value = table.get(tuple(norms[i : i + size]))
                if value is not None:
                    hits.append(PhraseHit(i, i + size, value))
                    after = i + size
                    break
        return hits


def build_index(table: Mapping[str, Iterable[str]]) -> PhraseIndex[str]:
    """Index ``{id: [phrase, ...]}`` so that each phrase finds its id."""
    return PhraseIndex((words(phrase), key) for key, phrases in table.items() for phrase in phrases)
