"""The general B2B vocabularies the matcher reads text with, loaded once from package data.

``persona_store/data/vocab/*.yaml`` holds plain tables (job functions, seniority words, title
abbreviations, industries, regions, stages, quantity words, non-buyer cues, product categories,
stop words and synonyms). Nothing in them is about one company's personas: the persona side is
read through the very same tables, so a new persona set needs no new vocabulary.
``Vocabulary`` turns the tables into phrase indexes and similarity lookups; ``load_vocabulary``
builds it once per process. Functions of one family are only weakly similar; a specialist
and the generalist above it (recruiting and HR) are close; industries are known in the
singular and the plural.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from persona_store.matching.text import PhraseIndex, build_index, fold, stem, words

EXECUTIVE = "executive"
# Executives can buy anything: never a perfect function match, never a reason to say "none".
_EXECUTIVE_SIMILARITY = 0.45
_FAMILY_SIMILARITY = 0.3


@dataclass(frozen=True)
class NonBuyerCue:
    """One kind of non-buyer (student, job applicant, ...) and the patterns that reveal it."""

    kind: str
    says: str
    patterns: tuple[re.Pattern[str], ...]
    triggers: frozenset[str] = frozenset()
    owners: frozenset[str] = frozenset()  # words that name the relation (see nonbuyers.yaml)

    @functools.cached_property
    def combined(self) -> re.Pattern[str]:
        """All patterns as one alternation: one scan of the text per kind."""
        return re.compile("|".join(f"(?:{p.pattern})" for p in self.patterns))


@dataclass(frozen=True)
class FunctionTerm:
    """What a function phrase means: which function, and whether it is only a generic word."""

    function: str
    generic: bool


class Vocabulary:
    """All vocabulary tables, indexed for fast lookups. Build with ``load_vocabulary``."""

    def __init__(self, tables: Mapping[str, Mapping[str, Any]]) -> None:
        fn = tables["functions"]
        self.function_labels: dict[str, str] = {
            k: str(v.get("label", k)) for k, v in fn["functions"].items()
        }
        phrases: list[tuple[tuple[str, ...], FunctionTerm]] = []
        self.function_compounds: list[tuple[str, str]] = []
        for key, spec in fn["functions"].items():
            for term in spec.get("terms", ()):
                phrases.append((words(term), FunctionTerm(key, False)))
            for term in spec.get("generic", ()):
                phrases.append((words(term), FunctionTerm(key, True)))
            for part in spec.get("compound", ()):
                self.function_compounds.append((fold(part), key))
        self.functions: PhraseIndex[FunctionTerm] = PhraseIndex(phrases)
        self._function_sim = self._function_similarities(fn)

        sen = tables["seniority"]["levels"]
        self.seniority: PhraseIndex[int] = PhraseIndex(
            (words(t), int(spec["rank"])) for spec in sen.values() for t in spec.get("terms", ())
        )
        self.seniority_compounds: list[tuple[str, int]] = [
            (fold(part), int(spec["rank"]))
            for spec in sen.values()
            for part in spec.get("compound", ())
        ]

        titles = tables["titles"]
        self.abbreviations: dict[str, tuple[str, ...]] = {
            fold(k): words(v) for k, v in titles["abbreviations"].items()
        }
        self.case_sensitive_abbreviations = frozenset(fold(w) for w in titles["case_sensitive"])
        self.deputy_words = frozenset(fold(w) for w in titles["deputy_words"])
        self.role_nouns = frozenset(words(w) for w in titles["role_nouns"])
        self.connectors = frozenset(fold(w) for w in titles["connectors"])
        self.modifiers = frozenset(fold(w) for w in titles["modifiers"])
        self.paraphrase_subjects = frozenset(fold(w) for w in titles["paraphrase_subjects"])
        self.paraphrase_links: PhraseIndex[bool] = PhraseIndex(
            (words(w), True) for w in titles["paraphrase_links"]
        )
        self.paraphrase_verbs: PhraseIndex[int] = PhraseIndex(
            (words(k), int(v)) for k, v in titles["paraphrase_verbs"].items()
        )

        ind = tables["industries"]
        self.industry_labels: dict[str, str] = {
            k: str(v.get("label", k)) for k, v in ind["industries"].items()
        }
        # Persona files list industries in the plural ("General contractors") as often as
        # deals name one in the singular: every term is known in both forms.
        self.industries = build_index(
            {
                k: _with_plurals([v.get("label", k), *v.get("terms", ())])
                for k, v in ind["industries"].items()
            }
        )
        parents = {k: tuple(v.get("parents", ())) for k, v in ind["industries"].items()}
        self.industry_ancestors: dict[str, frozenset[str]] = {
            k: frozenset(_ancestors(k, parents)) for k in parents
        }
        self.industry_parents = {k: frozenset(v) for k, v in parents.items()}
        self.industry_compound_tails = tuple(fold(t) for t in ind.get("compound_tails", ()))
        self.industry_single_words = {
            key[0]: value for key, value in self.industries.items() if len(key) == 1
        }

        reg = tables["regions"]
        self.region_labels = {k: str(v.get("label", k)) for k, v in reg["regions"].items()}
        self.regions = build_index(
            {k: [v.get("label", k), *v.get("terms", ())] for k, v in reg["regions"].items()}
        )
        self.region_includes = _closure(
            {k: set(v.get("includes", ())) for k, v in reg["regions"].items()}
        )
        self.region_case_sensitive = {fold(w): w for w in reg.get("case_sensitive", ())}

        st = tables["stages"]
        self.stage_labels = {k: str(v.get("label", k)) for k, v in st["stages"].items()}
        self.stages = build_index(
            {k: [v.get("label", k), *v.get("terms", ())] for k, v in st["stages"].items()}
        )
        # In a note, a one-word label alone is an everyday adjective ("public school",
        # "private cloud", "enterprise customers"): only the terms, and labels of two words
        # or more, name a stage there.
        self.stage_text = build_index(
            {
                k: [
                    *v.get("terms", ()),
                    *(
                        [v.get("label", k)]
                        if " " in str(v.get("label", k)) or v.get("label", k) in v.get("terms", ())
                        else []
                    ),
                ]
                for k, v in st["stages"].items()
            }
        )
        self.stage_order: dict[str, int] = {
            k: int(v["order"]) for k, v in st["stages"].items() if v.get("order") is not None
        }
        self.stage_groups: list[frozenset[str]] = [frozenset(g) for g in st.get("groups", ())]

        q = tables["quantities"]
        self.number_words = PhraseIndex((words(k), int(v)) for k, v in q["number_words"].items())
        self.scale_words = PhraseIndex((words(k), int(v)) for k, v in q["scale_words"].items())
        self.headcount_nouns = PhraseIndex((words(w), True) for w in q["headcount_nouns"])
        self.headcount_modifiers = frozenset(words(w) for w in q["headcount_modifiers"])
        self.partial_headcount_nouns = frozenset(fold(w) for w in q["partial_headcount_nouns"])
        self.team_words = frozenset(fold(w) for w in q["team_words"])
        self.revenue_words = PhraseIndex((words(w), True) for w in q["revenue_words"])
        self.monthly_revenue_words = frozenset(fold(w) for w in q["monthly_revenue_words"])
        self.approx_words = PhraseIndex((words(w), True) for w in q["approx_words"])
        self.lower_bound_words = frozenset(words(w) for w in q["lower_bound_words"])
        self.upper_bound_words = frozenset(words(w) for w in q["upper_bound_words"])
        self.currencies = PhraseIndex((words(k), float(v)) for k, v in q["currencies"].items())
        self.figure_words = {fold(k): int(v) for k, v in q["figure_words"].items()}
        self.figure_positions = {fold(k): int(v) for k, v in q["figure_positions"].items()}

        nb = tables["nonbuyers"]["kinds"]
        self._industry_sim: dict[tuple[str, str], float] = {}
        self.non_buyer_cues: tuple[NonBuyerCue, ...] = tuple(
            NonBuyerCue(
                k,
                str(v["says"]),
                tuple(re.compile(p) for p in v["patterns"]),
                frozenset(fold(str(w)) for w in v.get("triggers", ())),
                frozenset(fold(str(w)) for w in v.get("owners", ())),
            )
            for k, v in nb.items()
        )

        self.non_buyer_owners: dict[str, frozenset[str]] = {
            c.kind: c.owners for c in self.non_buyer_cues
        }

        pr = tables["products"]["categories"]
        self.product_labels = {k: str(v.get("label", k)) for k, v in pr.items()}
        self.products = build_index({k: v.get("terms", ()) for k, v in pr.items()})

        w = tables["words"]
        self.stopwords = frozenset(fold(x) for x in w["stopwords"])
        self.fact_words = frozenset(fold(x) for x in w["fact_words"])
        self.synonyms: dict[str, str] = {}
        for group in w["synonyms"]:
            head = "~" + stem(fold(str(group[0])).replace(" ", "_"))
            for member in group:
                self.synonyms.setdefault(_phrase_stem(str(member)), head)

        # Single words worth correcting a typo towards ("Platfrom" -> "platform").
        spellable: set[str] = set()
        for index in (self.functions, self.seniority, self.industries):
            spellable.update(x for x in index.all_words() if len(x) >= 5 and x.isalpha())
        self.spellable = frozenset(spellable)
        self.known_words = frozenset(
            spellable
            | self.stopwords
            | self.fact_words
            | self.regions.all_words()
            | self.stages.all_words()
            | self.products.all_words()
        )

    @staticmethod
    def _function_similarities(spec: Mapping[str, Any]) -> dict[tuple[str, str], float]:
        sims: dict[tuple[str, str], float] = {}
        names = list(spec["functions"])
        family = float(spec.get("family_similarity", _FAMILY_SIMILARITY))
        for members in spec.get("families", {}).values():
            for a in members:
                for b in members:
                    if a != b:
                        sims[(a, b)] = max(sims.get((a, b), 0.0), family)
        for a, b, value in spec.get("adjacent", ()):
            sims[(a, b)] = sims[(b, a)] = float(value)
        for name in names:
            sims[(name, name)] = 1.0
            if name != EXECUTIVE:
                # An executive buyer fits any function's persona in part; a persona of
                # founders and CEOs does not cover, say, facilities buyers.
                sims[(EXECUTIVE, name)] = max(
                    sims.get((EXECUTIVE, name), 0.0), _EXECUTIVE_SIMILARITY
                )
                sims[(name, EXECUTIVE)] = max(sims.get((name, EXECUTIVE), 0.0), 0.2)
        return sims

    def function_similarity(self, a: str, b: str) -> float:
        """How well a buyer in function ``a`` fits a persona in function ``b`` (0..1)."""
        return self._function_sim.get((a, b), 0.0)

    def industry_similarity(self, deal: str, persona: str) -> float:
        """1 when the same (or the persona names a broader industry), less for relatives."""
        key = (deal, persona)
        cached = self._industry_sim.get(key)
        if cached is None:
            cached = self._industry_sim[key] = self._industry_similarity(deal, persona)
        return cached

    def _industry_similarity(self, deal: str, persona: str) -> float:
        if deal == persona:
            return 1.0
        deal_up = self.industry_ancestors.get(deal, frozenset())
        persona_up = self.industry_ancestors.get(persona, frozenset())
        if persona in deal_up:
            return 1.0
        if deal in persona_up:
            return 0.7
        shared = self.industry_parents.get(deal, frozenset()) & self.industry_parents.get(
            persona, frozenset()
        )
        if shared:
            return 0.5
        return 0.0

    def stage_similarity(self, deal: str, persona: str) -> float:
        """1 for the same stage, 0.5 for a neighbour or a stage that often means the same."""
        if deal == persona:
            return 1.0
        if deal in self.stage_order and persona in self.stage_order:
            gap = abs(self.stage_order[deal] - self.stage_order[persona])
            if gap == 1:
                return 0.5
        for group in self.stage_groups:
            if deal in group and persona in group:
                return 0.5
        return 0.0

    def concept(self, word: str) -> str:
        """The stem of ``word``, or its synonym group when it has one."""
        s = stem(word)
        return self.synonyms.get(s, s)


def _with_plurals(terms: list[str]) -> list[str]:
    """Terms plus the plural of their last word ("general contractor(s)", "pharmacy/-ies")."""
    out = list(terms)
    for term in terms:
        last = term.rsplit(" ", 1)[-1]
        if not last.isalpha() or len(last) < 4 or last.endswith(("s", "x", "sh", "ch")):
            continue
        if last.endswith("y") and last[-2] not in "aeiou":
            out.append(term[:-1] + "ies")
        else:
            out.append(term + "s")
    return out


def _phrase_stem(phrase: str) -> str:
    return "_".join(stem(w) for w in words(phrase))


def _ancestors(key: str, parents: Mapping[str, tuple[str, ...]]) -> set[str]:
    seen: set[str] = set()
    stack = list(parents.get(key, ()))
    while stack:
        item = stack.pop()
        if item not in seen:
            seen.add(item)
            stack.extend(parents.get(item, ()))
    return seen


TABLES = (
    "functions",
    "seniority",
    "titles",
    "industries",
    "regions",
    "stages",
    "quantities",
    "nonbuyers",
    "products",
    "words",
)


def read_tables(directory: Path | None = None) -> dict[str, Any]:
    """The raw YAML tables, from ``directory`` or from the package data."""
    out: dict[str, Any] = {}
    for name in TABLES:
        if directory is not None:
            text = (directory / f"{name}.yaml").read_text(encoding="utf-8")
        else:
            ref = resources.files("persona_store").joinpath("data", "vocab", f"{name}.yaml")
            text = ref.read_text(encoding="utf-8")
        out[name] = yaml.safe_load(text)
    return out


@functools.lru_cache(maxsize=1)
def load_vocabulary() -> Vocabulary:
    """The packaged vocabulary, built once per process."""
    return Vocabulary(read_tables())


def _closure(includes: dict[str, set[str]]) -> dict[str, frozenset[str]]:
    """Each region with everything it includes, directly or through another region
    (EMEA includes Europe, which includes DACH)."""
    out: dict[str, frozenset[str]] = {}
    for start in includes:
        seen = {start}
        todo = list(includes[start])
        while todo:
            region = todo.pop()
            if region not in seen:
                seen.add(region)
                todo.extend(includes.get(region, ()))
        out[start] = frozenset(seen)
    return out
