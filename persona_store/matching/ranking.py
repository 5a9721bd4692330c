"""Ranking personas for a deal, with reasons a rep can check and an honest "none".

``Matcher`` precomputes every persona's features once (``PersonaProfile``) plus an inverted
index from word concepts to personas, so that a query costs one pass of the text readers,
a few dictionary lookups per persona and index work proportional to the deal's words, never
persona x vocabulary fuzzy work. Scores combine firmographic ranges and lists, the buyer's
title (compared title by title with the persona's job titles, see ``titles``) and seniority,
and the overlap of the deal's words with the persona's goals, pain points, triggers, tools
and keywords, weighed by how much the note says about needs. Two things only lower a score
by a share: a clearly stated buyer title that fits a persona's titles only loosely (a related
function family, another sub-function) keeps it below THRESHOLD, so that such a persona is
never the best fit; and a deal from an industry the persona does not list keeps less, the
narrower the persona's list. "No persona" is a first-class answer with a stated cause: not a
buyer (unless the best persona's own profile uses the cue's words, as a reseller's or a
procurement team's does), a company size no persona covers, a buyer function no persona
covers or only a related one, a different product category, too little to go on, or simply
no good fit (saying so when the industry is the reason).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rapidfuzz import fuzz, process

from persona_store.matching.facts import (
    TITLE_CONFIDENCE,
    Facts,
    Mention,
    Quantity,
    Title,
    merge_fields,
    read_facts,
    read_title,
    title_tokens,
)
from persona_store.matching.profile import (
    FIELD_NAMES,
    LogRange,
    PersonaProfile,
    build_profile,
    concepts_of,
    idf,
)
from persona_store.matching.text import PUNCT, PhraseIndex, tokenize, words
from persona_store.matching.titles import TitleSig, persona_fit, title_fit, title_sig
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
# Words about needs (beyond title, industry and place) a note needs for its needs to count in
# full; "asked for a demo" states almost none.
NEEDS_FULL_WORDS = 8
# How far outside a size range (log10 units, 0.06 is about 15%) still counts as "inside" for
# the company-size gate.
SIZE_TOLERANCE = 0.06
REVENUE_TOLERANCE = 0.12
# Below this best function similarity a known buyer function is "not covered".
FUNCTION_GATE = 0.4
# A persona whose titles fit a clearly stated buyer title less than this (a related function
# of the same family, or another sub-function) may still rank, but never as the best fit:
# its score is scaled below THRESHOLD.
FUNCTION_FIT = 0.6
RELATED_ONLY_SHARE = (THRESHOLD - 1) / 100
# A deal from an industry a persona does not list (nor a broader or sibling one) takes this
# share off the persona's score: from the first value for a persona listing many industries
# to the second for one whose list covers a single industry ("carriers and brokers" and a
# brewery). NARROW_INDUSTRIES is how many covered industries count as a broad list.
INDUSTRY_MISMATCH_CUT = (0.2, 0.45)
NARROW_INDUSTRIES = 8
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
    need_words: int = 0  # words that are not the title, industry, region or stage
    sig: TitleSig | None = None  # the buyer's title, ready to compare with persona titles
    title_known: bool = False  # the buyer's title is one some persona holds
    title_fits: list[float] | None = None  # per persona title id; -1: nothing to compare
    set_fits: dict[int, float | None] = field(default_factory=dict)  # per persona title set
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
        # Seniority, industry, region and stage depend only on a persona's sets, titles only
        # on its title set: each distinct combination is scored once per query.
        group_of: dict[tuple[object, ...], int] = {}
        self._group_first: list[int] = []
        gids: list[int] = []
        for p in self.profiles:
            gkey = (p.ranks, p.industries, p.industry_raw, p.regions, p.stages)
            gid = group_of.get(gkey)
            if gid is None:
                gid = group_of[gkey] = len(self._group_first)
                self._group_first.append(p.index)
            gids.append(gid)
        self._gids = tuple(gids)
        # Each group's industry list, as an index into the distinct lists.
        list_of: dict[tuple[frozenset[str], tuple[str, ...]], int] = {}
        self._industry_lists: list[int] = []  # first persona with each distinct list
        group_industry: list[int] = []
        for first in self._group_first:
            p = self.profiles[first]
            lid = list_of.get((p.industries, p.industry_raw))
            if lid is None:
                lid = list_of[(p.industries, p.industry_raw)] = len(self._industry_lists)
                self._industry_lists.append(first)
            group_industry.append(lid)
        self._group_industry = tuple(group_industry)
        sig_of: dict[TitleSig, int] = {}
        set_of: dict[frozenset[int], int] = {}
        self._title_sets: list[tuple[int, ...]] = []  # distinct title sets, as title ids
        tids: list[int] = []
        for p in self.profiles:
            ids = frozenset(sig_of.setdefault(sig, len(sig_of)) for sig in p.title_sigs)
            tid = set_of.get(ids)
            if tid is None:
                tid = set_of[ids] = len(self._title_sets)
                self._title_sets.append(tuple(ids))
            tids.append(tid)
        self._tids = tuple(tids)
        # Each persona's (group, title set) pair as one cell, so that the per-persona lists
        # below take one lookup each.
        cell_of: dict[tuple[int, int], int] = {}
        for pair in zip(gids, tids, strict=True):
            cell_of.setdefault(pair, len(cell_of))
        self._cells: tuple[tuple[int, int], ...] = tuple(cell_of)
        self._cids = tuple(cell_of[pair] for pair in zip(gids, tids, strict=True))
        self._sigs: tuple[TitleSig, ...] = tuple(sig_of)
        self._sig_keys = tuple(
            (s.primary, s.secondary, s.generic, s.executive, bool(s.words)) for s in self._sigs
        )
        # Persona titles by their words: a buyer's title that shares words with one is
        # compared in full; every other title only by its functions.
        self._titles_by_word: dict[str, list[int]] = {}
        for sid, sig in enumerate(self._sigs):
            for w in sig.words:
                self._titles_by_word.setdefault(w, []).append(sid)
        # Persona job titles as phrases, so that a title the vocabulary cannot read as one
        # ("Service Delivery Manager", "Senior Project Manager") is still found in a note.
        self._title_phrases: PhraseIndex[str] = PhraseIndex(
            (words(expanded), title) for p in self.profiles for title, expanded in p.title_phrases
        )
        self._emp_ranges = tuple(_bounds(p.employees) for p in self.profiles)
        self._rev_ranges = tuple(_bounds(p.revenue) for p in self.profiles)
        # Per persona, the size and revenue weights known or not known for each combination
        # of what a deal states (employees stated?, revenue stated?).
        self._size_weights: dict[tuple[bool, bool], list[float]] = {}
        self._plain: dict[int, Match] = {}
        self._breadth: dict[frozenset[str], int] = {}
        self._index = {p.key: p.index for p in self.profiles}
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
        facts = self._persona_title_in_text(query.text, facts)
        q = self._query(facts)
        scores, needs_raw = self._scores(q)
        order = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)
        cause, missing = self._none_cause(q, scores, needs_raw, order)
        factor = 0.5 if cause is not None and self._not_a_buyer(q, order) else 1.0
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
            verdict = self._verdict(matches, q)
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
        q = _Query(
            facts=facts,
            buyer=buyer,
            confidence=buyer.confidence if buyer else 0.0,
            emp_log=math.log10(max(emp.value, 1)) if emp else None,
            rev_log=math.log10(max(rev.value, 1)) if rev else None,
            concepts=concepts,
        )
        said = {t.norm for m in (*facts.industries, *facts.regions) for t in tokenize(m.source)}
        if facts.stage is not None:
            said.update(t.norm for t in tokenize(facts.stage.source))
        if buyer is not None:
            said.update(t.norm for t in tokenize(buyer.text))
        q.need_words = sum(1 for w in facts.words if w not in said)
        if buyer is not None:
            q.sig = self._buyer_sig(buyer)
            q.title_known = self._title_known(q.sig)
        return q

    def _persona_title_in_text(self, text: str, facts: Facts) -> Facts:
        """Read a persona's own job title from the note when it names the buyer better than
        what the vocabulary read: no title, one without a function, a paraphrase, or a title
        that comes later in the note. A title field always wins."""
        buyer = facts.buyer
        if not text or (buyer is not None and buyer.confidence > TITLE_CONFIDENCE):
            return facts
        if buyer is not None and buyer.functions and text.startswith(buyer.text):
            return facts  # the note opens with a title the vocabulary read
        toks = title_tokens(text, self.vocabulary)
        hits = self._title_phrases.find([t.norm for t in toks])
        if not hits:
            return facts
        hit = hits[0]
        start, end = toks[hit.start].start, toks[hit.end - 1].end
        if (
            buyer is not None
            and buyer.functions
            and buyer.confidence >= TITLE_CONFIDENCE
            and 0 <= text.find(buyer.text) <= start
        ):
            return facts
        parsed = read_title(hit.value, self.vocabulary)
        found = Title(
            text=text[start:end],
            functions=parsed.functions if parsed else (),
            rank=parsed.rank if parsed else None,
            confidence=TITLE_CONFIDENCE,
            expanded=" ".join(t.norm for t in toks[hit.start : hit.end]),
        )
        return replace(facts, titles=(found, *facts.titles))

    def _buyer_sig(self, buyer: Title) -> TitleSig:
        if buyer.confidence >= TITLE_CONFIDENCE:
            return _buyer_title_sig(buyer.text, buyer.expanded, self.vocabulary)
        # A paraphrase or an implied function: its clause words are no title.
        named = frozenset(f for f in buyer.functions if f != EXECUTIVE)
        return TitleSig(buyer.text, primary=named, executive=EXECUTIVE in buyer.functions)

    def _title_known(self, sig: TitleSig) -> bool:
        if not sig.words:
            return False
        first = min(sig.words, key=lambda w: len(self._titles_by_word.get(w, ())))
        return any(sig.words <= self._sigs[t].words for t in self._titles_by_word.get(first, ()))

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
        # Everything but size, revenue and needs depends only on a persona's sets and titles:
        # score each distinct combination once, then add the per-persona parts list by list.
        groups = [self._group_points(q, self.profiles[first]) for first in self._group_first]
        titles = [self._function_points(q, t) for t in range(len(self._title_sets))]
        cg = [groups[g][0] + titles[t][0] for g, t in self._cells]
        # The score is points / (known weight + UNKNOWN_SHARE * unknown weight): the weights
        # of a cell, then per persona those of size and revenue, then needs, the same for all.
        gd = [k + UNKNOWN_SHARE * u for _, k, u in groups]
        td = [t[1] + UNKNOWN_SHARE * t[2] for t in titles]
        cd = [gd[g] + td[t] for g, t in self._cells]
        cids = self._cids
        got = [cg[c] for c in cids]
        for value, ranges, weight, slope in (
            (q.emp_log, self._emp_ranges, W_EMPLOYEES, 0.15),
            (q.rev_log, self._rev_ranges, W_REVENUE, 0.3),
        ):
            if value is not None:
                # The full weight inside the range, falling linearly to minus the weight
                # `slope` log10 units outside it; inlined, since this runs once per persona.
                got = [
                    a
                    + (
                        0.0
                        if r is None
                        else weight
                        if r[0] <= value <= r[1]
                        else weight * max(-1.0, 1.0 - _outside(r, value) / slope)
                    )
                    for a, r in zip(got, ranges, strict=True)
                ]
        if q.concepts:
            # A note of a few words says little about needs: only that share of the needs
            # weight counts as stated, the rest as not stated.
            stated = W_NEEDS * min(1.0, q.need_words / NEEDS_FULL_WORDS)
            scale = -1.0 / NEEDS_SCALE
            exp = math.exp
            got = [a + stated * (1.0 - exp(r * scale)) for a, r in zip(got, needs_raw, strict=True)]
            common = stated + UNKNOWN_SHARE * (W_NEEDS - stated)
        else:
            common = UNKNOWN_SHARE * W_NEEDS
        sizes = self._size_denominators(q.emp_log is not None, q.rev_log is not None)
        # A deal from an industry the persona does not cover, and a buyer whose title only
        # loosely fits the persona's titles, keep only a share of the score (per cell).
        industry = self._industry_factors(q)
        if industry is None and not any(t[3] for t in titles):
            kept = [100.0] * len(self._cells)
        else:
            kept = [
                100.0
                * (industry[g] if industry is not None else 1.0)
                * (RELATED_ONLY_SHARE if titles[t][3] else 1.0)
                for g, t in self._cells
            ]
        scores = [
            g * kept[c] / d if (d := cd[c] + s + common) else 0.0
            for g, c, s in zip(got, cids, sizes, strict=True)
        ]
        return scores, needs_raw

    def _size_denominators(self, emp_stated: bool, rev_stated: bool) -> list[float]:
        """Per persona, the size and revenue weights in a score's denominator: in full when
        the deal states them, UNKNOWN_SHARE of them when it does not, nothing when the
        persona has no such range."""
        key = (emp_stated, rev_stated)
        found = self._size_weights.get(key)
        if found is None:
            emp = W_EMPLOYEES * (1.0 if emp_stated else UNKNOWN_SHARE)
            rev = W_REVENUE * (1.0 if rev_stated else UNKNOWN_SHARE)
            values = [
                (emp if e is not None else 0.0) + (rev if r is not None else 0.0)
                for e, r in zip(self._emp_ranges, self._rev_ranges, strict=True)
            ]
            found = self._size_weights[key] = values
        return found

    def _group_points(self, q: _Query, p: PersonaProfile) -> tuple[float, float, float]:
        """(points, known weight, unknown weight) of the set-valued components.

        A component the persona does not define (no industries listed, say) is no criterion
        and is left out; one the deal does not state counts partly against the fit, since
        the persona might not fit it.
        """
        facts = q.facts
        buyer = q.buyer
        got = known = unknown = 0.0
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

    def _function_points(self, q: _Query, tid: int) -> tuple[float, float, float, bool]:
        """(points, known weight, unknown weight, related only) of the buyer's title against
        one title set."""
        if not self._title_sets[tid]:
            return 0.0, 0.0, 0.0, False
        fit = self._set_fit(q, tid)
        if fit is None:
            return 0.0, 0.0, W_FUNCTION, False
        w = W_FUNCTION * q.confidence
        related_only = fit < FUNCTION_FIT and self._gates_function(q)
        return w * (fit if fit >= 0.3 else -0.6), w, 0.0, related_only

    def _set_fit(self, q: _Query, tid: int) -> float | None:
        """How well the buyer's title fits a persona title set (None: nothing to compare)."""
        if tid in q.set_fits:
            return q.set_fits[tid]
        if q.sig is None:
            return None
        if q.title_fits is None:
            q.title_fits = self._title_fits(q)
        fits = q.title_fits
        best = max((fits[s] for s in self._title_sets[tid]), default=-1.0)
        found: float | None = best
        if best < 0:
            # Nothing to compare, unless the buyer holds another persona's title.
            found = 0.0 if q.title_known else None
        q.set_fits[tid] = found
        return found

    def _title_fits(self, q: _Query) -> list[float]:
        """The buyer's fit with every distinct persona title (-1: nothing to compare).

        Titles that share no word with the buyer's are compared by their functions alone,
        once per distinct combination of functions."""
        buyer = q.sig
        assert buyer is not None
        sim = self.vocabulary.function_similarity
        shared = {sid for w in buyer.words for sid in self._titles_by_word.get(w, ())}
        by_key: dict[tuple[object, ...], float] = {}
        out: list[float] = []
        for sid, sig in enumerate(self._sigs):
            if sid in shared:
                value = title_fit(buyer, sig, sim)
                out.append(-1.0 if value is None else value)
                continue
            key = self._sig_keys[sid]
            found = by_key.get(key)
            if found is None:
                value = title_fit(buyer, sig, sim)
                found = by_key[key] = -1.0 if value is None else value
            out.append(found)
        return out

    def _fit(self, q: _Query, p: PersonaProfile) -> tuple[float | None, TitleSig | None]:
        """How well the buyer's title fits the persona's titles (None: nothing to compare),
        and the persona title that fits best."""
        fit = self._set_fit(q, self._tids[p.index])
        if fit is None or q.sig is None or fit < FUNCTION_FIT:
            return fit, None  # no title is named in reasons below FUNCTION_FIT
        best = persona_fit(q.sig, p.title_sigs, self.vocabulary.function_similarity)[1]
        return fit, best

    def _gates_function(self, q: _Query) -> bool:
        """Whether the buyer's title is clear enough to rule a persona out by function:
        a real title (not a paraphrase), naming a job other than general management."""
        sig = q.sig
        if sig is None or q.confidence < TITLE_CONFIDENCE:
            return False
        return bool(sig.primary or sig.generic or (q.title_known and not sig.executive))

    def _related_only(self, q: _Query, p: PersonaProfile) -> bool:
        """The buyer's clear title fits this persona's titles only loosely: the persona may
        rank, never as the best fit."""
        fit = self._set_fit(q, self._tids[p.index])
        return fit is not None and fit < FUNCTION_FIT and self._gates_function(q)

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

    def _industry_mismatch(self, q: _Query, p: PersonaProfile) -> bool:
        """The deal names an industry the vocabulary knows, and none of it fits the
        persona's industries, broader ones or siblings."""
        if not (p.industries or p.industry_raw):
            return False
        if not any(not m.id.startswith("raw:") for m in q.facts.industries):
            return False
        return self._industry_value(q, p) < 0

    def _industry_factors(self, q: _Query) -> list[float] | None:
        """Per group: the share of the score kept after an industry mismatch (None: no
        mismatch anywhere)."""
        if not q.facts.industries:
            return None
        low, high = INDUSTRY_MISMATCH_CUT
        kept: list[float] = []
        for first in self._industry_lists:
            p = self.profiles[first]
            cut = 0.0
            if self._industry_mismatch(q, p):
                breadth = self._industry_breadth(p)
                narrow = max(0.0, (NARROW_INDUSTRIES - breadth) / (NARROW_INDUSTRIES - 1))
                cut = low + (high - low) * narrow
            kept.append(1.0 - cut)
        if all(k == 1.0 for k in kept):
            return None
        return [kept[i] for i in self._group_industry]

    def _industry_breadth(self, p: PersonaProfile) -> int:
        """How many industries a persona's list covers, narrower ones included."""
        key = p.industries | frozenset(p.industry_raw)
        found = self._breadth.get(key)
        if found is None:
            vocab = self.vocabulary
            covered = {
                x
                for x in vocab.industry_labels
                if any(vocab.industry_similarity(x, pid) >= 0.7 for pid in p.industries)
            }
            found = self._breadth[key] = len(covered) + len(p.industry_raw)
        return found

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
        not_buyer = self._not_a_buyer(q, order)
        if not_buyer is not None:
            return not_buyer, []
        size = self._size_cause(q)
        if size:
            return size, []
        top = order[0]
        function = self._function_cause(q, self.profiles[top])
        if function:
            return function, []
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
        # Judged on the score as shown: "scores 50, below 50" must never be said.
        if round(scores[top]) < THRESHOLD:
            p = self.profiles[top]
            text = (
                f"no persona fits well enough: the closest, {p.name}, scores "
                f"{round(scores[top])}, below {THRESHOLD}"
            )
            if self._industry_mismatch(q, p):
                text += "; " + self._industry_con(q, p)
            return text, missing
        return None, []

    def _not_a_buyer(self, q: _Query, order: Sequence[int]) -> str | None:
        """The first non-buyer cue that the best-scoring persona does not own (a persona
        that resells or manages suppliers owns the words "reseller" or "supplier")."""
        if not q.facts.non_buyer:
            return None
        top = self.profiles[order[0]] if order else None
        for m in q.facts.non_buyer:
            if top is None or not self._owns(top, m):
                return m.label
        return None

    def _owns(self, p: PersonaProfile, cue: Mention) -> bool:
        vocab = self.vocabulary
        owners = vocab.non_buyer_owners.get(cue.id, frozenset())
        return any(
            w in owners and p.uses(vocab.concept(w)) for w in (t.norm for t in tokenize(cue.source))
        )

    def _function_cause(self, q: _Query, top: PersonaProfile) -> str | None:
        if q.buyer is None or q.sig is None or not self._gates_function(q):
            return None
        sig = q.sig
        fits = [self._set_fit(q, t) for t in range(len(self._title_sets))]
        best = max((f for f in fits if f is not None), default=None)
        mine = self._labels(sig.primary or sig.generic)
        if best is not None and best < FUNCTION_GATE and mine:
            return f"no persona covers buyers in {mine} ('{q.buyer.text}')"
        if not self._related_only(q, top):
            return None
        theirs = self._labels(top.main_functions)
        if mine and theirs:
            return (
                f"buyer '{q.buyer.text}' works in {mine}; the closest persona, {top.name}, "
                f"is in {theirs}, a related function but not the same"
            )
        return (
            f"buyer '{q.buyer.text}' holds none of the job titles of the closest persona, "
            f"{top.name} ({', '.join(top.titles[:4])})"
        )

    def _labels(self, functions: frozenset[str]) -> str:
        labels = self.vocabulary.function_labels
        return ", ".join(labels.get(f, f) for f in sorted(functions) if f != EXECUTIVE)

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
                f"no persona covers companies of {_headcount(facts.employees)} "
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
        if q.buyer is None or not (q.buyer.functions or (q.sig and q.sig.words)):
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
        fit, fit_title = self._fit(q, p)
        if buyer and fit is not None:
            their = self._labels(p.main_functions)
            mine = ", ".join(vocab.function_labels.get(f, f) for f in buyer.functions)
            title_hit = _best_title(buyer, p) if fit >= 0.99 else None
            if title_hit is None and fit >= 0.99 and fit_title is not None and not mine:
                title_hit = fit_title.text
            if title_hit is not None:
                pros.append(f"buyer '{buyer.text}' matches job title '{title_hit}'")
            elif fit >= 0.75 and mine:
                pros.append(f"buyer '{buyer.text}' works in {mine}, like this persona ({their})")
            elif fit >= FUNCTION_FIT and mine:
                pros.append(f"buyer '{buyer.text}' ({mine}) is close to this persona's {their}")
            elif fit >= FUNCTION_FIT and fit_title is not None:
                pros.append(f"buyer '{buyer.text}' shares words with job title '{fit_title.text}'")
            elif fit >= 0.3 and mine and their:
                cons.append(
                    f"buyer '{buyer.text}' works in {mine}, only related to this persona's {their}"
                )
            elif mine and their:
                cons.append(f"buyer '{buyer.text}' works in {mine}; this persona is in {their}")
            else:
                cons.append(f"buyer '{buyer.text}' holds none of this persona's job titles")
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
            said = _headcount(facts.employees)
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
                cons.append(self._industry_con(q, p))
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

    @staticmethod
    def _industry_con(q: _Query, p: PersonaProfile) -> str:
        return (
            f"industry '{q.facts.industries[0].source}' is not one of {', '.join(p.industry_names)}"
        )

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

    def _verdict(self, matches: Sequence[Match], q: _Query) -> str:
        top = matches[0]
        why = "; ".join(top.reasons_for[:2]) or "closest overall"
        text = f"{top.name} fits best ({top.score}/100): {why}"
        p = self.profiles[self._index[top.key]]
        if self._industry_mismatch(q, p):
            text += "; but " + self._industry_con(q, p)
        if len(matches) > 1 and matches[1].score >= top.score - 5:
            text += f"; {matches[1].name} is close ({matches[1].score})"
        return _sentence(text)


@functools.lru_cache(maxsize=4096)
def _buyer_title_sig(text: str, expanded: str, vocab: Vocabulary) -> TitleSig:
    # Reps type the same few titles again and again.
    return title_sig(text, expanded, vocab, persona=False)


def _headcount(q: Quantity) -> str:
    """ "1 employee", "2,500 employees", "200-500 employees"."""
    text = q.describe()
    return f"{text} employee" if text == "1" else f"{text} employees"


def _bounds(r: LogRange | None) -> tuple[float, float] | None:
    """(low, high) on the log scale, an open end as -inf/+inf; None when there is no range."""
    if r is None:
        return None
    return (r.low if r.low is not None else -math.inf), (r.high if r.high is not None else math.inf)


def _outside(r: tuple[float, float], value: float) -> float:
    """How far (log10 units) a value lies outside a range it is not inside."""
    return r[0] - value if value < r[0] else value - r[1]


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
