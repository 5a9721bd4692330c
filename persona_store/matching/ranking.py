"""Ranking personas for a deal, with reasons a rep can check and an honest "none".

``Matcher`` precomputes every persona's features once (``PersonaProfile``) plus an inverted
index from word concepts to personas, so that a query costs one pass of the text readers,
a few dictionary lookups per persona and index work proportional to the deal's words, never
persona x vocabulary fuzzy work. Scores combine firmographic ranges and lists, the buyer's
function and seniority, and the overlap of the deal's words with the persona's goals, pain
points, triggers, tools and keywords. "No persona" is a first-class answer with a stated
cause: not a buyer, a company size no persona covers, a buyer function no persona covers,
a different product category, too little to go on, or simply no good fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process

from persona_store.matching.facts import Facts, Title, merge_fields, read_facts
from persona_store.matching.profile import (
    FIELD_NAMES,
    LogRange,
    PersonaProfile,
    build_profile,
    concepts_of,
    idf,
)
from persona_store.matching.text import PUNCT, tokenize
from persona_store.matching.vocabulary import EXECUTIVE, Vocabulary, load_vocabulary
from persona_store.records import PersonaSpec

# Component weights (points) of the 0-100 score. A component the deal does not state counts
# half against the fit; one the persona does not define is left out.
W_FUNCTION = 30.0
W_SENIORITY = 8.0
W_EMPLOYEES = 20.0
W_REVENUE = 8.0
W_INDUSTRY = 14.0
W_REGION = 4.0
W_STAGE = 6.0
W_NEEDS = 30.0
UNKNOWN_SHARE = 0.5
# Calibrated on the development set: deals that fit score 74 or more there, deals that fit
# no persona mostly 5-56 before their explicit causes are applied; 50 leaves room for sparse
# persona sets, whose good fits score lower.
THRESHOLD = 50
# Needs overlap saturates: a handful of distinctive shared words is already a strong signal.
NEEDS_SCALE = 4.0
# How far outside a size range (log10 units, 0.06 is about 15%) still counts as "inside" for
# the company-size gate.
SIZE_TOLERANCE = 0.06
REVENUE_TOLERANCE = 0.12
# Below this best function similarity a known buyer function is "not covered".
FUNCTION_GATE = 0.4
# Personas beyond this many (best first) get a score but no written reasons: nobody reads
# the reasons of the 900th persona, and writing them is most of the per-persona cost.
EXPLAIN_TOP = 12

_RANK_NAMES = {
    0: "student or entry level",
    1: "individual contributor",
    2: "senior individual contributor",
    3: "manager or lead",
    4: "director or head",
    5: "vice president",
    6: "executive",
}


@dataclass(frozen=True)
class DealQuery:
    """What a rep gives us: free text and any structured fields they know."""

    text: str = ""
    industry: str | None = None
    employees: int | None = None
    revenue_usd: int | None = None
    region: str | None = None
    title: str | None = None
    stage: str | None = None


@dataclass(frozen=True)
class Match:
    """One persona's score for a deal and the checkable reasons behind it."""

    key: str
    name: str
    score: int
    reasons_for: tuple[str, ...] = ()
    reasons_against: tuple[str, ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.reasons_for + self.reasons_against


@dataclass(frozen=True)
class FitResult:
    """The ranking for one deal: best persona (or None), every persona, and why."""

    best: str | None
    matches: tuple[Match, ...]
    verdict: str
    missing: tuple[str, ...] = ()
    facts: Facts = field(default_factory=Facts)

    def to_json(self) -> dict[str, Any]:
        """The ``fit --json`` object of DESIGN.md (plus "verdict" and "missing")."""
        return {
            "best": self.best,
            "matches": [
                {"key": m.key, "name": m.name, "score": m.score, "reasons": list(m.reasons)}
                for m in self.matches
            ],
            "verdict": self.verdict,
            "missing": list(self.missing),
        }


@dataclass
class _Query:
    """Per-query lookups shared by every persona."""

    facts: Facts
    buyer: Title | None
    confidence: float
    emp_log: float | None
    rev_log: float | None
    concepts: dict[str, str]  # concept -> the deal word it came from
    fn_cache: dict[frozenset[str], float] = field(default_factory=dict)
    rank_cache: dict[frozenset[int], float] = field(default_factory=dict)
    ind_cache: dict[frozenset[str], float] = field(default_factory=dict)
    reg_cache: dict[frozenset[str], float] = field(default_factory=dict)
    stage_cache: dict[frozenset[str], float] = field(default_factory=dict)


class Matcher:
    """Ranks a fixed set of personas for deals. Build once, call ``rank`` many times."""

    def __init__(
        self, personas: Sequence[PersonaSpec], vocabulary: Vocabulary | None = None
    ) -> None:
        self.vocabulary = vocabulary or load_vocabulary()
        vocab = self.vocabulary
        self.profiles: tuple[PersonaProfile, ...] = tuple(
            build_profile(i, spec, vocab) for i, spec in enumerate(personas)
        )
        self._idf = idf(self.profiles)
        postings: dict[str, list[tuple[int, float]]] = {}
        for p in self.profiles:
            for concept, weight in p.concepts.items():
                postings.setdefault(concept, []).append((p.index, weight * self._idf[concept]))
        self._postings = {
            c: (tuple(i for i, _ in v), tuple(w for _, w in v)) for c, v in postings.items()
        }
        # Words personas use, for correcting a rep's typos ("maintians" -> "maintain").
        persona_words: set[str] = set()
        seen_texts: set[str] = set()
        for spec in personas:
            for text in _all_texts(spec):
                if text not in seen_texts:
                    seen_texts.add(text)
                    persona_words.update(t.norm for t in tokenize(text) if t.norm.isalpha())
        self._persona_words = frozenset(persona_words)
        self._spell_buckets: dict[str, list[str]] = {}
        for w in persona_words:
            if len(w) >= 5:
                self._spell_buckets.setdefault(w[0], []).append(w)
        self._spell_cache: dict[str, str | None] = {}
        self._covered_products = frozenset().union(*(p.products for p in self.profiles))
        group_of: dict[tuple[object, ...], int] = {}
        self._group_first: list[int] = []
        gids: list[int] = []
        for p in self.profiles:
            gkey = (p.functions, p.ranks, p.industries, p.industry_raw, p.regions, p.stages)
            gid = group_of.get(gkey)
            if gid is None:
                gid = group_of[gkey] = len(self._group_first)
                self._group_first.append(p.index)
            gids.append(gid)
        self._gids = tuple(gids)
        self._emp_ranges = tuple(_bounds(p.employees) for p in self.profiles)
        self._rev_ranges = tuple(_bounds(p.revenue) for p in self.profiles)
        self._function_sets = frozenset(p.functions for p in self.profiles if p.functions)
        self._plain: dict[int, Match] = {}
        self._has_size = bool(self.profiles) and all(p.employees for p in self.profiles)
        self._has_revenue = bool(self.profiles) and all(p.revenue for p in self.profiles)

    # ----------------------------------------------------------------------------------------
    def rank(self, query: DealQuery) -> FitResult:
        """Rank every persona for ``query``; ``best`` is None when none fits well enough."""
        vocab = self.vocabulary
        facts = merge_fields(
            read_facts(query.text, vocab),
            industry=query.industry,
            employees=query.employees,
            revenue_usd=query.revenue_usd,
            region=query.region,
            title=query.title,
            stage=query.stage,
            vocabulary=vocab,
        )
        q = self._query(facts)
        scores, needs_raw = self._scores(q)
        order = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)
        cause, missing = self._none_cause(q, scores, needs_raw, order)
        factor = 0.5 if cause is not None and q.facts.non_buyer else 1.0
        matches: list[Match] = []
        for i in order[:EXPLAIN_TOP]:
            p = self.profiles[i]
            score = round(max(0.0, min(100.0, scores[i] * factor)))
            pros, cons = self._reasons(q, p)
            if cause is not None and not matches:
                cons = (*cons, cause)
            matches.append(Match(p.key, p.name, score, pros, cons))
        if len(order) > EXPLAIN_TOP:
            plain = self._plain
            rest = order[EXPLAIN_TOP:]
            ints = [round(max(0.0, min(100.0, scores[i] * factor))) for i in rest]
            matches.extend(
                [
                    plain.get(i * 101 + s) or self._plain_match(i, s)
                    for i, s in zip(rest, ints, strict=True)
                ]
            )
        best: str | None = None
        if cause is None and matches:
            best = matches[0].key
            verdict = self._verdict(matches)
        else:
            verdict = _sentence(cause or "no personas to rank")
        return FitResult(best, tuple(matches), verdict, tuple(missing), facts)

    def _plain_match(self, index: int, score: int) -> Match:
        """A reason-less Match, reused: they are immutable and the same for every query."""
        key = index * 101 + score
        m = self._plain.get(key)
        if m is None:
            p = self.profiles[index]
            m = self._plain[key] = Match(p.key, p.name, score)
        return m

    # ----------------------------------------------------------------------------------------
    def _query(self, facts: Facts) -> _Query:
        buyer = facts.buyer
        emp = facts.employees
        rev = facts.revenue_usd
        concepts: dict[str, str] = {}
        prev: str | None = None
        for w in facts.words:
            c = self._concept(w)
            concepts.setdefault(c, w)
            if prev is not None:
                concepts.setdefault(prev + "+" + c, w)
            prev = c
        return _Query(
            facts=facts,
            buyer=buyer,
            confidence=buyer.confidence if buyer else 0.0,
            emp_log=math.log10(max(emp.value, 1)) if emp else None,
            rev_log=math.log10(max(rev.value, 1)) if rev else None,
            concepts=concepts,
        )

    def _concept(self, word: str) -> str:
        vocab = self.vocabulary
        c = vocab.concept(word)
        if c in self._postings or len(word) < 5 or not word.isalpha():
            return c
        if word in self._persona_words:
            return c
        fixed = self._spell_cache.get(word, "")
        if fixed == "":
            bucket = self._spell_buckets.get(word[0], ())
            hit = process.extractOne(word, bucket, scorer=fuzz.ratio, score_cutoff=85)
            fixed = hit[0] if hit else None
            if fixed is not None and (fixed.startswith(word[:-1]) or word.startswith(fixed[:-1])):
                fixed = None
            self._spell_cache[word] = fixed
        return vocab.concept(fixed) if fixed else c

    # ----------------------------------------------------------------------------------------
    def _scores(self, q: _Query) -> tuple[list[float], list[float]]:
        n = len(self.profiles)
        needs_raw = [0.0] * n
        for c in q.concepts:
            posting = self._postings.get(c)
            if posting is not None:
                for i, w in zip(*posting, strict=True):
                    needs_raw[i] += w
        # Everything but size, revenue and needs depends only on a persona's sets: score each
        # distinct combination once, then add the per-persona parts list by list.
        groups = [self._group_points(q, self.profiles[first]) for first in self._group_first]
        got = [groups[g][0] for g in self._gids]
        known = [groups[g][1] for g in self._gids]
        unknown = [groups[g][2] for g in self._gids]
        for value, ranges, weight, slope in (
            (q.emp_log, self._emp_ranges, W_EMPLOYEES, 0.15),
            (q.rev_log, self._rev_ranges, W_REVENUE, 0.3),
        ):
            if value is None:
                unknown = [
                    u + weight if r is not None else u for u, r in zip(unknown, ranges, strict=True)
                ]
                continue
            part = [_range_points(r, value, weight, slope) for r in ranges]
            got = [a + b for a, b in zip(got, part, strict=True)]
            known = [k + weight if r is not None else k for k, r in zip(known, ranges, strict=True)]
            unknown = [
                u if r is not None else u + weight for u, r in zip(unknown, ranges, strict=True)
            ]
        if q.concepts:
            scale = -1.0 / NEEDS_SCALE
            exp = math.exp
            got = [
                a + W_NEEDS * (1.0 - exp(r * scale)) for a, r in zip(got, needs_raw, strict=True)
            ]
            known = [k + W_NEEDS for k in known]
        else:
            unknown = [u + W_NEEDS for u in unknown]
        scores = [
            100.0 * g / (k + UNKNOWN_SHARE * u) if k + u else 0.0
            for g, k, u in zip(got, known, unknown, strict=True)
        ]
        return scores, needs_raw

    def _group_points(self, q: _Query, p: PersonaProfile) -> tuple[float, float, float]:
        """(points, known weight, unknown weight) of the set-valued components.

        A component the persona does not define (no industries listed, say) is no criterion
        and is left out; one the deal does not state counts partly against the fit, since
        the persona might not fit it.
        """
        facts = q.facts
        buyer = q.buyer
        got = known = unknown = 0.0
        if p.functions:
            if buyer is not None and buyer.functions:
                w = W_FUNCTION * q.confidence
                got += w * self._function_value(q, p)
                known += w
            else:
                unknown += W_FUNCTION
        if p.ranks:
            if buyer is not None and buyer.rank is not None:
                w = W_SENIORITY * q.confidence
                got += w * self._rank_value(q, p)
                known += w
            else:
                unknown += W_SENIORITY
        if p.industries or p.industry_raw:
            if facts.industries:
                got += W_INDUSTRY * self._industry_value(q, p)
                known += W_INDUSTRY
            else:
                unknown += W_INDUSTRY
        if p.regions:
            if facts.regions:
                got += W_REGION * self._region_value(q, p)
                known += W_REGION
            else:
                unknown += W_REGION
        if p.stages:
            if facts.stage is not None and not facts.stage.id.startswith("raw:"):
                got += W_STAGE * self._stage_value(q, p)
                known += W_STAGE
            else:
                unknown += W_STAGE
        return got, known, unknown

    def _function_value(self, q: _Query, p: PersonaProfile) -> float:
        cached = q.fn_cache.get(p.functions)
        if cached is None:
            sim = self._function_sim(q, p.functions)
            cached = sim if sim >= 0.3 else -0.6
            q.fn_cache[p.functions] = cached
        return cached

    def _function_sim(self, q: _Query, functions: frozenset[str]) -> float:
        assert q.buyer is not None
        vocab = self.vocabulary
        return max(
            (vocab.function_similarity(a, b) for a in q.buyer.functions for b in functions),
            default=0.0,
        )

    def _rank_value(self, q: _Query, p: PersonaProfile) -> float:
        cached = q.rank_cache.get(p.ranks)
        if cached is None:
            assert q.buyer is not None and q.buyer.rank is not None
            gap = min(abs(q.buyer.rank - r) for r in p.ranks)
            cached = {0: 1.0, 1: 0.5, 2: -0.2}.get(gap, -0.6)
            q.rank_cache[p.ranks] = cached
        return cached

    def _industry_value(self, q: _Query, p: PersonaProfile) -> float:
        key = p.industries | frozenset(p.industry_raw)
        cached = q.ind_cache.get(key)
        if cached is None:
            best = self._industry_best(q, p)[0]
            cached = best if best > 0 else -0.6
            q.ind_cache[key] = cached
        return cached

    def _industry_best(self, q: _Query, p: PersonaProfile) -> tuple[float, str, str]:
        """Best similarity, the deal's words and the persona industry that gave it."""
        vocab = self.vocabulary
        best = (0.0, "", "")
        for pos, m in enumerate(q.facts.industries):
            weight = 1.0 if pos == 0 else 0.85
            if m.id.startswith("raw:"):
                names = list(p.industry_names)
                hit = process.extractOne(
                    m.label, names, scorer=fuzz.token_set_ratio, score_cutoff=85
                )
                if hit and weight > best[0]:
                    best = (weight, m.source, hit[0])
                continue
            for pid in p.industries:
                sim = vocab.industry_similarity(m.id, pid) * weight
                if sim > best[0]:
                    best = (sim, m.source, vocab.industry_labels.get(pid, pid))
        return best

    def _region_value(self, q: _Query, p: PersonaProfile) -> float:
        vocab = self.vocabulary
        deal = frozenset(
            r for m in q.facts.regions for r in vocab.region_includes.get(m.id, {m.id})
        )
        return 1.0 if deal & p.regions else -0.5

    def _stage_value(self, q: _Query, p: PersonaProfile) -> float:
        cached = q.stage_cache.get(p.stages)
        if cached is None:
            assert q.facts.stage is not None
            sid = q.facts.stage.id
            sim = max((self.vocabulary.stage_similarity(sid, s) for s in p.stages), default=0.0)
            cached = sim if sim > 0 else -0.4
            q.stage_cache[p.stages] = cached
        return cached

    # ----------------------------------------------------------------------------------------
    def _none_cause(
        self, q: _Query, scores: Sequence[float], needs_raw: Sequence[float], order: Sequence[int]
    ) -> tuple[str | None, list[str]]:
        facts = q.facts
        if not self.profiles:
            return "there are no personas to compare with", []
        if facts.non_buyer:
            return facts.non_buyer[0].label, []
        size = self._size_cause(q)
        if size:
            return size, []
        if (
            q.buyer
            and q.buyer.functions
            and q.confidence >= 0.8
            and EXECUTIVE not in q.buyer.functions
        ):
            best_sim = max((self._function_sim(q, fs) for fs in self._function_sets), default=0.0)
            if best_sim < FUNCTION_GATE:
                labels = ", ".join(
                    self.vocabulary.function_labels.get(f, f) for f in q.buyer.functions
                )
                return (
                    f"no persona covers buyers in {labels} ('{q.buyer.text}')",
                    [],
                )
        top = order[0]
        asked = {m.id for m in facts.products}
        uncovered = [m for m in facts.products if m.id not in self._covered_products]
        # One passing mention ("why the patient portal is slow") is not a request for that
        # product unless the deal shares little else with any persona.
        if (
            uncovered
            and not asked & self._covered_products
            and (len(uncovered) >= 2 or needs_raw[top] < NEEDS_SCALE)
        ):
            m = uncovered[0]
            return (
                f"the deal asks for {m.label} ('{m.source}'), which no persona's needs cover",
                [],
            )
        missing = self._missing(q)
        thin = q.buyer is None and facts.employees is None and not facts.industries
        if thin and needs_raw[top] < 2 * NEEDS_SCALE:
            return "too little to go on", missing or ["head count or the buyer's title"]
        if scores[top] < THRESHOLD:
            p = self.profiles[top]
            return (
                f"no persona fits well enough: the closest, {p.name}, scores "
                f"{round(scores[top])}, below {THRESHOLD}",
                missing,
            )
        return None, []

    def _size_cause(self, q: _Query) -> str | None:
        facts = q.facts
        emp, rev = q.emp_log, q.rev_log
        if (
            emp is not None
            and self._has_size
            and facts.employees is not None
            and all(
                p.employees is not None and p.employees.distance(emp) > SIZE_TOLERANCE
                for p in self.profiles
            )
        ):
            return (
                f"no persona covers companies of {facts.employees.describe()} employees "
                f"({_closest_ranges(self.profiles, emp, 'employees')})"
            )
        if (
            rev is not None
            and facts.employees is None
            and self._has_revenue
            and facts.revenue_usd is not None
            and all(
                p.revenue is not None and p.revenue.distance(rev) > REVENUE_TOLERANCE
                for p in self.profiles
            )
        ):
            return (
                f"no persona covers companies with ${facts.revenue_usd.describe()} revenue "
                f"({_closest_ranges(self.profiles, rev, 'revenue')})"
            )
        return None

    @staticmethod
    def _missing(q: _Query) -> list[str]:
        out: list[str] = []
        if q.facts.employees is None and q.facts.revenue_usd is None:
            out.append("head count")
        if q.buyer is None or not q.buyer.functions:
            out.append("the buyer's title")
        if not q.facts.industries:
            out.append("industry")
        return out

    # ----------------------------------------------------------------------------------------
    def _reasons(self, q: _Query, p: PersonaProfile) -> tuple[tuple[str, ...], tuple[str, ...]]:
        pros: list[str] = []
        cons: list[str] = []
        facts = q.facts
        vocab = self.vocabulary
        buyer = q.buyer
        if buyer and buyer.functions and p.functions:
            sim = self._function_sim(q, p.functions)
            title_hit = _best_title(buyer, p)
            their = ", ".join(vocab.function_labels.get(f, f) for f in sorted(p.functions))
            mine = ", ".join(vocab.function_labels.get(f, f) for f in buyer.functions)
            if title_hit is not None and sim >= 0.5:
                pros.append(f"buyer '{buyer.text}' matches job title '{title_hit}'")
            elif sim >= 0.75:
                pros.append(f"buyer '{buyer.text}' works in {mine}, like this persona ({their})")
            elif sim >= 0.3:
                pros.append(f"buyer '{buyer.text}' ({mine}) is close to this persona's {their}")
            else:
                cons.append(f"buyer '{buyer.text}' works in {mine}; this persona is in {their}")
        if buyer and buyer.rank is not None and p.ranks:
            gap = min(abs(buyer.rank - r) for r in p.ranks)
            level = _RANK_NAMES.get(buyer.rank, str(buyer.rank))
            span = _rank_span(p.ranks)
            if gap == 0:
                pros.append(f"seniority '{level}' is one this persona holds ({span})")
            elif gap >= 2:
                cons.append(f"seniority '{level}' is outside this persona's {span}")
        if facts.employees is not None and p.employees is not None and q.emp_log is not None:
            d = p.employees.distance(q.emp_log)
            said = f"{facts.employees.describe()} employees"
            if d == 0:
                pros.append(f"{said} is inside {p.employees.text}")
            else:
                cons.append(f"{said} is outside {p.employees.text}")
        if facts.revenue_usd is not None and p.revenue is not None and q.rev_log is not None:
            d = p.revenue.distance(q.rev_log)
            said = f"revenue ${facts.revenue_usd.describe()}"
            if d == 0:
                pros.append(f"{said} is inside ${p.revenue.text}")
            else:
                cons.append(f"{said} is outside ${p.revenue.text}")
        if facts.industries and (p.industries or p.industry_raw):
            sim, said, theirs = self._industry_best(q, p)
            if sim >= 0.7:
                pros.append(f"industry '{said}' matches {theirs}")
            elif sim > 0:
                pros.append(f"industry '{said}' is related to {theirs}")
            else:
                cons.append(
                    f"industry '{facts.industries[0].source}' is not one of "
                    f"{', '.join(p.industry_names)}"
                )
        if facts.regions and p.regions:
            if self._region_value(q, p) > 0:
                pros.append(f"region '{facts.regions[0].source}' is in {', '.join(p.region_names)}")
            else:
                cons.append(
                    f"region '{facts.regions[0].source}' is not one of {', '.join(p.region_names)}"
                )
        if facts.stage is not None and p.stages and not facts.stage.id.startswith("raw:"):
            value = self._stage_value(q, p)
            if value >= 1.0:
                pros.append(f"stage '{facts.stage.source}' matches {', '.join(p.stage_names)}")
            elif value > 0:
                pros.append(f"stage '{facts.stage.source}' is close to {', '.join(p.stage_names)}")
            else:
                cons.append(
                    f"stage '{facts.stage.source}' is not one of {', '.join(p.stage_names)}"
                )
        pros.extend(self._need_reasons(q, p))
        return tuple(pros), tuple(cons)

    def _need_reasons(self, q: _Query, p: PersonaProfile) -> list[str]:
        shared: dict[int, list[str]] = {}
        for c in q.concepts:
            for n in p.item_index.get(c, ()):
                shared.setdefault(n, []).append(c)
        scored: list[tuple[float, int, list[str]]] = []
        for n, cs in shared.items():
            weight = sum(self._idf.get(c, 0.0) for c in cs)
            if weight < 1.0:
                continue
            said = list(dict.fromkeys(q.concepts[c] for c in cs))
            scored.append((weight, n, said))
        scored.sort(key=lambda s: (-s[0], s[1]))
        out: list[str] = []
        used: set[str] = set()
        for _, n, said in scored:
            fresh = [w for w in said if w not in used]
            if not fresh:
                continue
            used.update(fresh)
            item = p.items[n]
            quoted = ", ".join(f'"{w}"' for w in fresh[:4])
            out.append(f"mentions {quoted} ({FIELD_NAMES[item.field]}: {item.text})")
            if len(out) == 3:
                break
        return out

    def _verdict(self, matches: Sequence[Match]) -> str:
        top = matches[0]
        why = "; ".join(top.reasons_for[:2]) or "closest overall"
        text = f"{top.name} fits best ({top.score}/100): {why}"
        if len(matches) > 1 and matches[1].score >= top.score - 5:
            text += f"; {matches[1].name} is close ({matches[1].score})"
        return _sentence(text)


def _bounds(r: LogRange | None) -> tuple[float, float] | None:
    """(low, high) on the log scale, an open end as -inf/+inf; None when there is no range."""
    if r is None:
        return None
    return (r.low if r.low is not None else -math.inf), (r.high if r.high is not None else math.inf)


def _range_points(
    r: tuple[float, float] | None, value: float, weight: float, slope: float
) -> float:
    if r is None:
        return 0.0
    low, high = r
    d = low - value if value < low else (value - high if value > high else 0.0)
    return weight if d <= 0 else weight * max(-1.0, 1.0 - d / slope)


def _range_value(r: LogRange, log_value: float, slope: float) -> float:
    d = r.distance(log_value)
    if d == 0:
        return 1.0
    return max(-1.0, 1.0 - d / slope)


def _closest_ranges(profiles: Sequence[PersonaProfile], log_value: float, what: str) -> str:
    ranked = sorted(
        (p for p in profiles if getattr(p, what) is not None),
        key=lambda p: getattr(p, what).distance(log_value),
    )[:2]
    prefix = "$" if what == "revenue" else ""
    return "closest: " + ", ".join(f"{p.name} {prefix}{getattr(p, what).text}" for p in ranked)


def _rank_span(ranks: frozenset[int]) -> str:
    lo, hi = min(ranks), max(ranks)
    if lo == hi:
        return _RANK_NAMES.get(lo, str(lo))
    return f"{_RANK_NAMES.get(lo, str(lo))} to {_RANK_NAMES.get(hi, str(hi))}"


def _best_title(buyer: Title, p: PersonaProfile) -> str | None:
    if not p.titles_expanded:
        return None
    hit = process.extractOne(
        buyer.expanded, p.titles_expanded, scorer=fuzz.token_set_ratio, score_cutoff=80
    )
    if hit is None:
        return None
    return p.titles[hit[2]] if hit[2] < len(p.titles) else None


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _all_texts(spec: PersonaSpec) -> list[str]:
    out = [spec.role, spec.summary, spec.background or ""]
    out += list(spec.goals) + list(spec.pain_points) + list(spec.objections) + list(spec.keywords)
    b = spec.behavioral
    out += list(b.tools) + list(b.triggers) + list(b.content)
    return out


def explain_concepts(text: str, vocabulary: Vocabulary | None = None) -> list[str]:
    """The concepts a text contributes to the needs overlap (for tests and debugging)."""
    return [c for c in concepts_of(text, vocabulary or load_vocabulary()) if c not in PUNCT]
