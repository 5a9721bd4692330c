"""Public API of the explainable "which persona fits this deal?" matcher.

Build a ``Matcher`` once from a persona set and call ``rank(DealQuery(...))`` per deal; the
``FitResult`` names the best persona (or None, with the cause), scores every persona 0-100
with reasons a rep can check, says what to add when the deal is too thin, and carries the
``Facts`` read from the text. ``read_facts`` and ``load_vocabulary`` are public for display,
tests and tools. The implementation lives in ``persona_store.matching``.
"""

from persona_store.matching.facts import Facts, Mention, Quantity, Title, read_facts, read_title
from persona_store.matching.ranking import THRESHOLD, DealQuery, FitResult, Match, Matcher
from persona_store.matching.vocabulary import Vocabulary, load_vocabulary

__all__ = [
    "THRESHOLD",
    "DealQuery",
    "Facts",
    "FitResult",
    "Match",
    "Matcher",
    "Mention",
    "Quantity",
    "Title",
    "Vocabulary",
    "load_vocabulary",
    "read_facts",
    "read_title",
]
