"""Hypothesis strategies for hostile input: text people type and payloads platforms send.

``nasty_text`` mixes arbitrary Unicode with the characters that break parsers and renderers
(control characters, NUL, lone surrogates, right-to-left marks, emoji sequences, combining
marks, Slack markup, markdown); ``huge_text`` repeats it past 100 KB without drawing that
much data. ``mutated`` takes a recorded payload and changes a few of its values: deleted,
given another type, filled with nasty text, or joined by unknown keys.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

SPECIAL = (
    "\x00",
    "\x07",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\x9b",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\x0b",
    "\x0c",
    "\u00a0",
    "\u200b",
    "\u200d",
    "\u200e",
    "\u200f",
    "\u202e",
    "\u2066",
    "\u2028",
    "\u2029",
    "\u3000",
    "\ufeff",
    "\ufffd",
    "\U0001f600",
    "👩\u200d💻",
    "🏳️\u200d🌈",
    "🇩🇪",
    "e\u0301",
    "a\u0338\u0336\u035c\u0361",
    "שלום",
    "مرحبا بالعالم",
    "٣٠٠",
    "ﬁ",
    "İ",
    "ß",
    "&amp;",
    "&lt;",
    "<@U1>",
    "<!here>",
    "<!channel>",
    "<https://example.com|click>",
    "<at>persona-bot</at>",
    "*bold*",
    "_x_",
    "`code`",
    "[link](https://example.com)",
    "{{DATE(2030-01-01)}}",
    "1. ",
    "# ",
    "- ",
    "\\",
    "'",
    '"',
    "%s",
    "{0}",
    "/persona",
    "persona",
    "which persona fits",
    "fit",
    "fiona",
    ":",
    "?",
    "-1",
    "1e999",
    "9" * 30,
    "   ",
)
# Lone surrogates reach the bot through JSON escapes ("\ud800"), never through UTF-8 bytes.
SURROGATES = ("\ud800", "\udbff", "\udc00", "\udfff", "\ud83d")


def nasty_text(max_size: int = 120, *, surrogates: bool = True) -> st.SearchStrategy[str]:
    """Arbitrary text, biased towards characters and sequences that break things."""
    pieces = st.sampled_from(SPECIAL + (SURROGATES if surrogates else ()))
    mixed = st.lists(pieces | st.text(max_size=6), max_size=max(1, max_size // 4)).map("".join)
    control = st.text(st.characters(max_codepoint=0x9F), max_size=max_size)
    return st.one_of(st.text(max_size=max_size), mixed.map(lambda s: s[:max_size]), control)


def huge_text(min_size: int = 100 * 1024) -> st.SearchStrategy[str]:
    """Text of at least ``min_size`` characters: a drawn chunk repeated."""

    def repeat(chunk: str) -> str:
        return chunk * math.ceil(min_size / len(chunk))

    return nasty_text(60).filter(bool).map(repeat)


def typed_text(max_size: int = 120, *, surrogates: bool = True) -> st.SearchStrategy[str]:
    """What someone could type: mostly nasty text, now and then more than 100 KB of it."""
    return st.one_of(
        nasty_text(max_size, surrogates=surrogates),
        huge_text().map(lambda s: s if surrogates else without_surrogates(s)),
    )


def without_surrogates(text: str) -> str:
    """The text as UTF-8 bytes could carry it (a form body, a YAML file)."""
    return "".join(ch for ch in text if not "\ud800" <= ch <= "\udfff")


scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    nasty_text(40),
)


def json_values(keys: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Any]:
    """Any JSON-like value: scalars of every type, lists and objects nested a few levels."""
    names = keys if keys is not None else nasty_text(12)
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(names, children, max_size=4)
        ),
        max_leaves=8,
    )


def _slots(value: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key-or-index) in a nested structure, outermost first."""
    if isinstance(value, dict):
        for key in list(value):
            yield value, key
            yield from _slots(value[key])
    elif isinstance(value, list):
        for index in range(len(value)):
            yield value, index
            yield from _slots(value[index])


@st.composite
def mutated(
    draw: st.DrawFn,
    base: dict[str, Any],
    *,
    max_changes: int = 4,
    keys: st.SearchStrategy[str] | None = None,
    text: st.SearchStrategy[str] | None = None,
) -> dict[str, Any]:
    """``base`` with up to ``max_changes`` values deleted, retyped, rewritten or added."""
    doc = copy.deepcopy(base)
    values = json_values(keys)
    texts = text if text is not None else nasty_text(80)
    names = keys if keys is not None else nasty_text(12)
    for _ in range(draw(st.integers(0, max_changes))):
        slots = list(_slots(doc))
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["delete", "retype", "text", "add"]))
        if action == "delete":
            del container[key]
        elif action == "retype":
            container[key] = draw(values)
        elif action == "text":
            container[key] = draw(texts)
        elif isinstance(container, dict):
            container[draw(names)] = draw(values)
        else:
            container.insert(key, draw(values))
    return doc
