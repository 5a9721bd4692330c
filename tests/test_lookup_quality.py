"""Lookup quality: exact, prefix, nickname, typo, ambiguous and nonsense queries.

Each row is a query and what a person typing it expects: the persona it must find, the
personas it should offer as "did you mean" (in any order), or nothing at all.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from persona_store.lookup import PersonaIndex
from persona_store.records import StoredPersona
from persona_store.schema import load_persona_file
from tests.conftest import DATA

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def index() -> PersonaIndex:
    specs = load_persona_file(DATA / "lookup_personas.yaml")
    return PersonaIndex(
        [StoredPersona(i, 1, s, 1, NOW, False, NOW, NOW) for i, s in enumerate(specs)]
    )


MATCH = [
    # exact
    ("finance-fiona", "finance-fiona"),
    ("Finance Fiona", "finance-fiona"),
    ("IT Ivan", "it-ivan"),
    ("  PLATFORM   paula ", "platform-paula"),
    # nickname / single word
    ("fiona", "finance-fiona"),
    ("Carlos", "controller-carlos"),
    ("ivan", "it-ivan"),
    ("it", "it-ivan"),
    ("maria", "marketing-maria"),  # accents do not matter
    ("maría", "marketing-maria"),
    # prefix
    ("fin", "finance-fiona"),
    ("contr", "controller-carlos"),
    ("procure", "procurement-paula"),
    ("marketing", "marketing-maria"),
    # typos, swapped letters, word order
    ("finanse fiona", "finance-fiona"),
    ("fionna", "finance-fiona"),
    ("carlso", "controller-carlos"),
    ("contoller carlos", "controller-carlos"),
    ("procurment paula", "procurement-paula"),
    ("fiona finance", "finance-fiona"),
    ("platfrom paula", "platform-paula"),
    ("Fiona!", "finance-fiona"),
]

AMBIGUOUS = [
    ("paula", {"procurement-paula", "platform-paula"}),
    ("p paula", {"procurement-paula", "platform-paula"}),
    ("paul", {"procurement-paula", "platform-paula"}),
    ("pa", {"procurement-paula", "platform-paula"}),
]

NOTHING = ["xyzzy", "pirate ship", "zzzz", "q", "1234", "", "!!!", "the quick brown fox"]


@pytest.mark.parametrize(("query", "expected"), MATCH)
def test_confident_queries_find_the_persona(index: PersonaIndex, query: str, expected: str) -> None:
    result = index.lookup(query)
    assert result.persona is not None, f"{query!r} found nothing ({result.outcome})"
    assert result.persona.key == expected


@pytest.mark.parametrize(("query", "expected"), AMBIGUOUS)
def test_ambiguous_queries_offer_suggestions(
    index: PersonaIndex, query: str, expected: set[str]
) -> None:
    result = index.lookup(query)
    assert result.persona is None
    assert result.outcome == "ambiguous"
    assert expected <= {p.key for p in result.suggestions}
    assert len(result.suggestions) <= 3


@pytest.mark.parametrize("query", NOTHING)
def test_nonsense_finds_nothing(index: PersonaIndex, query: str) -> None:
    result = index.lookup(query)
    assert result.outcome == "none"
    assert result.persona is None and result.suggestions == ()


def test_an_empty_index_finds_nothing() -> None:
    assert PersonaIndex([]).lookup("fiona").outcome == "none"
