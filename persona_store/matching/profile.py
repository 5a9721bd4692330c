"""Per-persona features, computed once when a Matcher is built.

A ``PersonaProfile`` holds what ranking needs from one ``PersonaSpec`` in ready-to-compare
form: the job functions and seniority ranks its titles stand for (read with the same
vocabulary as a deal's buyer title), its size and revenue ranges on a log scale, its
industries, regions and stages as vocabulary ids, the weighted word stems of its goals, pain
points, triggers, tools and keywords, and the product categories its texts cover.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from persona_store.matching.facts import read_facts, read_label, read_title
from persona_store.matching.text import PUNCT, tokenize
from persona_store.matching.titles import TitleSig, title_sig
from persona_store.matching.vocabulary import Vocabulary
from persona_store.records import IntRange, PersonaSpec

# How strongly a word in each part of a persona speaks for it.
FIELD_WEIGHTS: dict[str, float] = {
    "keywords": 1.0,
    "pain_points": 1.0,
    "goals": 0.9,
    "triggers": 0.8,
    "tools": 0.8,
    "summary": 0.6,
    "role": 0.5,
    "objections": 0.4,
    "motivations": 0.35,
    "attitudes": 0.3,
    "interests": 0.4,
    "values": 0.25,
    "content": 0.3,
    "background": 0.3,
    "buying_process": 0.15,
}
# Names used in reasons ("mentions ... (pain point)").
FIELD_NAMES: dict[str, str] = {
    "keywords": "keyword",
    "pain_points": "pain point",
    "goals": "goal",
    "triggers": "trigger",
    "tools": "tool",
    "summary": "summary",
    "role": "role",
    "objections": "objection",
    "motivations": "motivation",
    "attitudes": "attitude",
    "interests": "interest",
    "values": "value",
    "content": "content",
    "background": "background",
    "buying_process": "buying process",
}
# The parts that say what a persona needs, and so which product categories it covers; an
# interest, an objection or the background story ("interested in estimating") does not.
NEED_FIELDS = frozenset(
    {"role", "summary", "goals", "pain_points", "keywords", "tools", "triggers"}
)
# Only these parts are quoted back to a rep as reasons.
QUOTABLE = ("pain_points", "goals", "triggers", "keywords", "tools", "objections")


@dataclass(frozen=True)
class LogRange:
    """An inclusive range kept on a log10 scale, with its original ends for display."""

    low: float | None
    high: float | None
    text: str

    @classmethod
    def of(cls, r: IntRange | None) -> LogRange | None:
        if r is None or (r.min is None and r.max is None):
            return None
        low = math.log10(max(r.min, 1)) if r.min is not None else None
        high = math.log10(max(r.max, 1)) if r.max is not None else None
        return cls(low, high, _range_text(r))

    def distance(self, log_value: float) -> float:
        """0 inside the range, else how far outside it is (in log10 units)."""
        if self.low is not None and log_value < self.low:
            return self.low - log_value
        if self.high is not None and log_value > self.high:
            return log_value - self.high
        return 0.0


def _range_text(r: IntRange) -> str:
    if r.min is not None and r.max is not None:
        return f"{r.min:,}-{r.max:,}"
    if r.min is not None:
        return f"{r.min:,} or more"
    return f"up to {r.max:,}"


@dataclass(frozen=True)
class Item:
    """One quotable list entry of a persona and the concepts it is made of."""

    field: str
    text: str
    concepts: frozenset[str]


@dataclass(frozen=True)
class PersonaProfile:
    """Everything the scorer needs from one persona, precomputed."""

    index: int
    key: str
    name: str
    functions: frozenset[str]
    main_functions: frozenset[str]  # what the titles name first: for reasons
    ranks: frozenset[int]
    titles: tuple[str, ...]
    titles_expanded: tuple[str, ...]
    title_sigs: tuple[TitleSig, ...]
    title_phrases: tuple[tuple[str, str], ...]  # (title, its expanded words), two words or more
    employees: LogRange | None
    revenue: LogRange | None
    industries: frozenset[str]
    industry_names: tuple[str, ...]
    industry_raw: tuple[str, ...]
    regions: frozenset[str]
    region_names: tuple[str, ...]
    stages: frozenset[str]
    stage_names: tuple[str, ...]
    concepts: dict[str, float]
    items: tuple[Item, ...]
    item_index: dict[str, tuple[int, ...]]
    products: frozenset[str]
    # Concepts of the job titles and industry names, which the needs overlap leaves out.
    label_concepts: frozenset[str] = frozenset()

    def uses(self, concept: str) -> bool:
        """Whether the persona's own profile (texts, titles or industries) uses a concept."""
        return concept in self.concepts or concept in self.label_concepts


def _texts(spec: PersonaSpec) -> Iterable[tuple[str, str]]:
    yield "role", spec.role
    yield "summary", spec.summary
    if spec.background:
        yield "background", spec.background
    for name in ("goals", "pain_points", "objections", "keywords"):
        for value in getattr(spec, name):
            yield name, value
    b = spec.behavioral
    for name in ("tools", "triggers", "content"):
        for value in getattr(b, name):
            yield name, value
    if b.buying_process:
        yield "buying_process", b.buying_process
    p = spec.psychographic
    for name in ("values", "motivations", "attitudes", "interests"):
        for value in getattr(p, name):
            yield name, value


def concepts_of(text: str, vocab: Vocabulary) -> list[str]:
    """The concept stems of a text's content words, in order (with adjacent pairs)."""
    out: list[str] = []
    prev: str | None = None
    for tok in tokenize(text):
        w = tok.norm
        if tok.is_number or w in PUNCT or len(w) < 2:
            prev = None
            continue
        if w in vocab.stopwords or w in vocab.fact_words:
            prev = None
            continue
        c = vocab.concept(w)
        out.append(c)
        if prev is not None:
            out.append(prev + "+" + c)
        prev = c
    return out


# Persona sets repeat titles and phrases a lot; reading each distinct string once keeps
# building a Matcher over thousands of personas fast.
_title = functools.lru_cache(maxsize=65536)(read_title)
_label = functools.lru_cache(maxsize=65536)(read_label)


@functools.lru_cache(maxsize=65536)
def _sig(text: str, expanded: str, vocab: Vocabulary) -> TitleSig:
    return title_sig(text, expanded, vocab, persona=True)


@functools.lru_cache(maxsize=65536)
def _text_features(text: str, vocab: Vocabulary) -> tuple[tuple[str, ...], frozenset[str]]:
    norms = [t.norm for t in tokenize(text)]
    return tuple(concepts_of(text, vocab)), frozenset(h.value for h in vocab.products.find(norms))


def build_profile(index: int, spec: PersonaSpec, vocab: Vocabulary) -> PersonaProfile:
    """Precompute one persona's features."""
    demo, firmo = spec.demographic, spec.firmographic
    functions: set[str] = set()
    ranks: set[int] = set()
    expanded: list[str] = []
    sigs: list[TitleSig] = []
    phrases: list[tuple[str, str]] = []
    for title in demo.job_titles:
        parsed = _title(title, vocab)
        if parsed is None:
            continue
        functions.update(parsed.functions)
        if parsed.rank is not None:
            ranks.add(parsed.rank)
        expanded.append(parsed.expanded)
        if " " in parsed.expanded:
            phrases.append((title, parsed.expanded))
        sig = _sig(title, parsed.expanded, vocab)
        if sig.informative:
            sigs.append(sig)
    if not functions:
        # No job titles: the one-line role still names the function.
        for t in read_facts(spec.role, vocab).titles:
            functions.update(t.functions)
            if t.rank is not None:
                ranks.add(t.rank)
            if not sigs:
                sig = _sig(t.text, t.expanded, vocab)
                if sig.informative:
                    sigs.append(sig)
    for level in demo.seniority:
        hits = vocab.seniority.find([t.norm for t in tokenize(level)])
        ranks.update(h.value for h in hits)

    industries: set[str] = set()
    raw_industries: list[str] = []
    for name in firmo.industries:
        found = _label(name, "industries", vocab)
        if found:
            industries.update(m.id for m in found)
        else:
            raw_industries.append(name)
    regions: set[str] = set()
    for name in firmo.regions:
        for m in _label(name, "regions", vocab):
            regions.update(vocab.region_includes.get(m.id, {m.id}))
    stages: set[str] = set()
    for name in firmo.stages:
        stages.update(m.id for m in _label(name, "stages", vocab))

    weights: dict[str, float] = {}
    items: list[Item] = []
    products: set[str] = set()
    for fld, text in _texts(spec):
        cs, covered = _text_features(text, vocab)
        w = FIELD_WEIGHTS.get(fld, 0.2)
        for c in cs:
            if weights.get(c, 0.0) < w:
                weights[c] = w
        if fld in QUOTABLE:
            items.append(Item(fld, text, frozenset(cs)))
        if fld in NEED_FIELDS:
            products.update(covered)

    item_index: dict[str, list[int]] = {}
    for n, item in enumerate(items):
        for c in item.concepts:
            if "+" not in c:
                item_index.setdefault(c, []).append(n)

    return PersonaProfile(
        index=index,
        key=spec.key,
        name=spec.name,
        functions=frozenset(functions),
        main_functions=frozenset(f for sig in sigs for f in sig.primary or sig.generic)
        or frozenset(functions),
        ranks=frozenset(ranks),
        titles=tuple(demo.job_titles),
        titles_expanded=tuple(expanded),
        title_sigs=tuple(dict.fromkeys(sigs)),
        title_phrases=tuple(phrases),
        employees=LogRange.of(firmo.employees),
        revenue=LogRange.of(firmo.annual_revenue_usd),
        industries=frozenset(industries),
        industry_names=tuple(firmo.industries),
        industry_raw=tuple(raw_industries),
        regions=frozenset(regions),
        region_names=tuple(firmo.regions),
        stages=frozenset(stages),
        stage_names=tuple(firmo.stages),
        concepts=weights,
        items=tuple(items),
        item_index={c: tuple(v) for c, v in item_index.items()},
        products=frozenset(products),
        label_concepts=frozenset(
            c
            for text in (*demo.job_titles, *firmo.industries)
            for c in _text_features(text, vocab)[0]
            if "+" not in c
        ),
    )


def idf(profiles: Sequence[PersonaProfile]) -> dict[str, float]:
    """Inverse document frequency of each concept over the persona set.

    A word every persona uses ("team", "data") tells personas apart less than one only
    a single persona uses.
    """
    df: dict[str, int] = {}
    for p in profiles:
        for c in p.concepts:
            df[c] = df.get(c, 0) + 1
    n = len(profiles)
    return {c: math.log((n + 1) / (k + 0.5)) for c, k in df.items()}
