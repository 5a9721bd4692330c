"""How well a buyer's title fits a persona's job titles: function, sub-function and the
title's own words.

A job function read through the vocabulary ("IT", "learning and development") is only part of
what a title says. "Claims Operations Manager" and "Warranty Operations Manager" share the
generic word "operations" but not their sub-function; "Deal Desk Manager" names no function the
vocabulary knows, yet a persona listing "Head of Deal Desk" is plainly the same job. A
``TitleSig`` keeps, for one title, the functions it names (the first one named at full weight
on the persona side, the others as secondary), its generic function words and its qualifying
words (stems of everything that is not seniority, a generic function word or filler).
``title_fit`` compares a buyer's signature with one persona title; a persona's fit is the
best over its titles. Titles are compared per title, never as the union of a persona's
functions, so one odd title cannot make a persona cover a whole function family.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from persona_store.matching.facts import EXECUTIVE, WordTag, tag_words
from persona_store.matching.text import PUNCT, stem, words
from persona_store.matching.vocabulary import Vocabulary

# A secondary function of a persona title ("IT" in "Office and IT Manager") fits at this share:
# alone it is no more than related.
SECONDARY_SHARE = 0.5
# Two titles of the same generic function, each qualified by different words ("claims
# operations" and "warranty operations"), are different sub-functions.
OTHER_QUALIFIER = 0.2
# One side qualified, the other a bare generic title ("Director of Operations").
ONE_QUALIFIED = 0.7
# Some, not all, of a title's qualifying words shared.
PARTIAL_WORDS = 0.6


@dataclass(frozen=True)
class TitleSig:
    """What one title says about the job, ready to compare."""

    text: str
    primary: frozenset[str] = frozenset()
    secondary: frozenset[str] = frozenset()
    generic: frozenset[str] = frozenset()
    executive: bool = False
    words: frozenset[str] = frozenset()

    @property
    def functions(self) -> frozenset[str]:
        """Every function the title names (specific ones, else its generic words)."""
        named = self.primary | self.secondary or self.generic
        return named | ({EXECUTIVE} if self.executive else frozenset())

    @property
    def informative(self) -> bool:
        return bool(self.primary or self.secondary or self.generic or self.executive or self.words)


def title_sig(text: str, expanded: str, vocab: Vocabulary, *, persona: bool) -> TitleSig:
    """The signature of a title from its expanded words ("VP Eng" -> "vice president
    engineering"). On the persona side only the first function a title names counts fully."""
    norms = list(words(expanded))
    tags = tag_words(norms, vocab)
    specific: list[str] = []
    generic: list[str] = []
    executive = False
    kept: set[str] = set()
    for k, w in enumerate(norms):
        tag = tags[k]
        own_specific = [f for f, g in tag.functions if not g]
        for f in own_specific:
            if f == EXECUTIVE:
                executive = True
            elif f not in specific:
                specific.append(f)
        for f, g in tag.functions:
            if g and f not in generic:
                generic.append(f)
        if _filler(w, tag, own_specific, vocab):
            continue
        kept.add(stem(w))
    if persona and specific:
        primary, secondary = frozenset(specific[:1]), frozenset(specific[1:])
    else:
        primary, secondary = frozenset(specific), frozenset()
    gen = frozenset(generic) - primary - secondary
    return TitleSig(
        text=text,
        primary=primary,
        secondary=secondary,
        generic=gen,
        executive=executive,
        words=frozenset(kept),
    )


def _filler(word: str, tag: WordTag, own_specific: list[str], vocab: Vocabulary) -> bool:
    """Words that say nothing about which job it is: seniority, generic function words,
    connectors, modifiers and stop words."""
    if word in PUNCT or not word.isalpha() or len(word) < 2:
        return True
    if tag.rank is not None or tag.role:
        return True  # "manager", "head", "chief", "owner"
    if tag.functions and not own_specific:
        return True  # only generic function words ("operations", "technology")
    if own_specific == [EXECUTIVE]:
        return True
    return tag.connector or tag.modifier or word in _LINKS


# Small words inside titles ("Chief of Staff to the General Counsel"). The needs stop list is
# too broad here: "deal" or "people" name the job in "Deal Desk" or "Head of People".
_LINKS = frozenset({"the", "a", "an", "to", "at", "with", "by", "on", "our", "their", "s"})

Similarity = Callable[[str, str], float]


def title_fit(buyer: TitleSig, title: TitleSig, sim: Similarity) -> float | None:
    """How well a buyer with title ``buyer`` fits a persona holding ``title`` (0..1), or
    None when neither the vocabulary nor the titles' words say anything either way."""
    bw, tw = buyer.words, title.words
    same_words = bool(bw) and bw <= tw
    shared_words = bool(bw & tw)
    if buyer.primary:
        value = _best(buyer.primary, title, sim)
        if same_words:
            return 1.0
        return value
    if buyer.executive:
        value = _best(frozenset({EXECUTIVE}), title, sim)
        return 1.0 if same_words else value
    if buyer.generic:
        if title.primary or title.secondary:
            value = _best(buyer.generic, title, sim)
            if buyer.generic & title.generic:
                # "Operations Manager" and "Operations Training Lead": the same generic
                # function word, with a specialism on the persona's side.
                value = max(value or 0.0, PARTIAL_WORDS)
            if value is not None and bw and not same_words:
                value = min(value, PARTIAL_WORDS)
            return value
        if title.generic:
            base = max(sim(a, b) for a in buyer.generic for b in title.generic)
            if bw and tw:
                if same_words:
                    return base
                return base * (PARTIAL_WORDS if shared_words else OTHER_QUALIFIER)
            return base * ONE_QUALIFIED if (bw or tw) else base
        if same_words:
            return 1.0
        return PARTIAL_WORDS if shared_words else None
    if same_words:
        return 1.0
    return PARTIAL_WORDS if shared_words else None


def _best(functions: frozenset[str], title: TitleSig, sim: Similarity) -> float | None:
    values: list[float] = []
    for a in functions:
        values.extend(sim(a, b) for b in title.primary)
        values.extend(SECONDARY_SHARE * sim(a, b) for b in title.secondary)
        if not (title.primary or title.secondary):
            values.extend(sim(a, b) for b in title.generic)
        if title.executive:
            values.append(sim(a, EXECUTIVE))
    return max(values) if values else None


def persona_fit(
    buyer: TitleSig, titles: Iterable[TitleSig], sim: Similarity
) -> tuple[float | None, TitleSig | None]:
    """The best fit over a persona's titles and the title that gave it."""
    best: float | None = None
    best_title: TitleSig | None = None
    for t in titles:
        value = title_fit(buyer, t, sim)
        if value is not None and (best is None or value > best):
            best, best_title = value, t
    return best, best_title
