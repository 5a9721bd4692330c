"""The /persona grammar every platform shares."""

from __future__ import annotations

import pytest

from bot.grammar import clean, close_verb, parse


@pytest.mark.parametrize(
    ("text", "verb", "args"),
    [
        ("", "help", ""),
        ("   ", "help", ""),
        ("help", "help", ""),
        ("?", "help", ""),
        ("/persona", "help", ""),
        ("persona", "help", ""),
        ("fiona", "lookup", "fiona"),
        ("Finance Fiona", "lookup", "Finance Fiona"),
        ("persona fiona", "lookup", "fiona"),
        ("/persona fiona", "lookup", "fiona"),
        ("personal finance", "lookup", "personal finance"),  # "persona" only as a word
        ("list", "list", ""),
        ("LIST", "list", ""),
        ("ls", "list", ""),
        ("fit Series B fintech, 300 staff", "fit", "Series B fintech, 300 staff"),
        ("persona fit D-1042: Series B fintech", "fit", "D-1042: Series B fintech"),
        (
            "which persona fits a 300-person fintech whose CFO worries?",
            "fit",
            "a 300-person fintech whose CFO worries",
        ),
        ("Which persona fits: bank, 5k staff", "fit", "bank, 5k staff"),
        ("who fits a hospital CISO?", "fit", "a hospital CISO"),
        ("feedback fiona too US-centric", "feedback", "fiona too US-centric"),
        ("stats 30", "stats", "30"),
        ("stats", "stats", ""),
        ("review fiona", "review", "fiona"),
        ("health", "health", ""),
        ("history fiona", "history", "fiona"),
        ("show fiona", "lookup", "fiona"),
        ("fiona?", "lookup", "fiona"),
    ],
)
def test_parse(text: str, verb: str, args: str) -> None:
    parsed = parse(text)
    assert (parsed.verb, parsed.args) == (verb, args)


def test_extra_verbs_from_extensions_are_recognised() -> None:
    assert parse("wiggle", extra_verbs=frozenset({"wiggle"})).verb == "wiggle"
    assert parse("wiggle").verb == "lookup"


def test_clean_drops_control_characters_and_caps_length() -> None:
    assert clean("fi\x00on\x1ba") == "fi on a"
    assert len(clean("x" * 100_000)) == 4000


@pytest.mark.parametrize(
    ("word", "verb"), [("hepl", "help"), ("lsit", "list"), ("histroy", "history"), ("zz", None)]
)
def test_close_verb(word: str, verb: str | None) -> None:
    assert close_verb(word) == verb
