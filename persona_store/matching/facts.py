"""Text readers: the facts a rep's free-text deal note states, each with the words it came from.

``read_facts`` reads head count ("2,500 staff", "12k employees", "north of 2,000", "environ
3 200 salariés", "twelve thousand employees"), revenue ("$40M ARR", "mid-eight-figure ARR",
"R$15M a year in revenue"), the buyer's title in any form (copied, abbreviated, paraphrased
as "the person who owns our Kubernetes platform", or in German, French, Spanish or
Portuguese) reduced to a job function and a seniority rank, industries, regions, the company
stage, signs that the writer is not a buyer at all, and product categories the deal asks for.
Every fact keeps the text it was read from so that a rep can check it. ``merge_fields`` lays
the structured fields of a deal over what the text said: fields always win.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from persona_store.matching.text import PUNCT, PhraseIndex, Token, fold, stem, tokenize
from persona_store.matching.vocabulary import EXECUTIVE, Vocabulary, load_vocabulary

# How much a title can be trusted to name the buyer's function.
FIELD_CONFIDENCE = 1.0
TITLE_CONFIDENCE = 0.9
PARAPHRASE_CONFIDENCE = 0.8
IMPLIED_CONFIDENCE = 0.35

_HEADCOUNT, _TEAM, _PARTIAL = 3, 2, 1
_POSSESSIVES = frozenset({"his", "her", "their", "our", "its", "my", "your", "whose"})
_TEAM_NOUNS = frozenset({"team", "squad", "department", "org", "unit", "crew", "group"})
_CLAUSE_STOPS = frozenset({"at", "@", "with", "where", "whose", "bei", "chez"})
_CLAUSE_STOP_BEFORE_ARTICLE = frozenset({"for", "of", "in", "from", "on"})
_ARTICLES = frozenset({"a", "an", "the", "one"})
_SPAN_JOINERS = frozenset({"/", "&", "+"})
_COMPANY_OF_ONE = re.compile(
    r"\b(no (other )?employees|solo (founder|entrepreneur)|one-person|sole trader)\b", re.I
)


@dataclass(frozen=True)
class Quantity:
    """A number read from a deal: a point or a range, and the text that said it."""

    value: int
    source: str
    low: int | None = None
    high: int | None = None
    approximate: bool = False

    def describe(self) -> str:
        if self.low is not None and self.high is not None and self.low != self.high:
            return f"{self.low:,}-{self.high:,}"
        return f"{self.value:,}"


@dataclass(frozen=True)
class Title:
    """A buyer title read as a job function and a seniority rank.

    ``confidence`` says how clearly the text named it: 1.0 for the title field, 0.9 for a
    title in the text, 0.8 for a paraphrase ("the person who runs the pager rotation"),
    lower for a function only implied by the need.
    """

    text: str
    functions: tuple[str, ...] = ()
    rank: int | None = None
    confidence: float = TITLE_CONFIDENCE
    expanded: str = ""

    @property
    def is_executive(self) -> bool:
        return EXECUTIVE in self.functions


@dataclass(frozen=True)
class Mention:
    """A vocabulary entry found in a deal: its id, readable label and the words it came from."""

    id: str
    label: str
    source: str


@dataclass(frozen=True)
class Facts:
    """Everything read from one deal, with the text each fact came from."""

    employees: Quantity | None = None
    revenue_usd: Quantity | None = None
    titles: tuple[Title, ...] = ()
    industries: tuple[Mention, ...] = ()
    regions: tuple[Mention, ...] = ()
    stage: Mention | None = None
    non_buyer: tuple[Mention, ...] = ()
    products: tuple[Mention, ...] = ()
    words: tuple[str, ...] = field(default=(), repr=False)

    @property
    def buyer(self) -> Title | None:
        """The buyer's title: the title field, else the first title in the text."""
        return self.titles[0] if self.titles else None

    @property
    def functions(self) -> tuple[str, ...]:
        return self.buyer.functions if self.buyer else ()

    @property
    def seniority(self) -> int | None:
        return self.buyer.rank if self.buyer else None

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly summary for display and debugging."""
        return {
            "employees": self.employees.value if self.employees else None,
            "revenue_usd": self.revenue_usd.value if self.revenue_usd else None,
            "title": self.buyer.text if self.buyer else None,
            "functions": list(self.functions),
            "seniority": self.seniority,
            "industries": [m.id for m in self.industries],
            "regions": [m.id for m in self.regions],
            "stage": self.stage.id if self.stage else None,
            "non_buyer": list(dict.fromkeys(m.id for m in self.non_buyer)),
            "products": [m.id for m in self.products],
        }


# --------------------------------------------------------------------------------------------
# Numbers


def parse_number(text: str) -> float | None:
    """A digit string with thousands separators in any convention ("2,500", "5.000", "3 200")."""
    s = text.replace("\u00a0", " ").replace("\u202f", " ")
    if re.fullmatch(r"\d{1,3}(?:( |,|\.)\d{3})(?:\1\d{3})*", s):
        return float(re.sub(r"[ ,.]", "", s))
    m = re.fullmatch(r"(\d{1,3}(?:,\d{3})+)\.(\d+)", s)
    if m:
        return float(m.group(1).replace(",", "") + "." + m.group(2))
    m = re.fullmatch(r"(\d{1,3}(?:\.\d{3})+),(\d+)", s)
    if m:
        return float(m.group(1).replace(".", "") + "." + m.group(2))
    s = s.replace(" ", "")
    if re.fullmatch(r"\d+,\d{1,2}", s):
        return float(s.replace(",", "."))
    try:
        return float(s.replace(",", ""))
    except ValueError:
        return None


@dataclass(frozen=True)
class _Num:
    value: float
    start: int  # first token (including an approximation word or currency sign)
    end: int  # one past the last token
    num_start: int
    currency: float | None = None
    approximate: bool = False
    bound: str = ""  # "low" for "north of N", "high" for "under N"
    scaled: bool = False
    high: float | None = None


def _numbers(tokens: Sequence[Token], raw: str, vocab: Vocabulary) -> list[_Num]:
    norms = [t.norm for t in tokens]
    found: list[_Num] = []
    i = 0
    n = len(tokens)
    while i < n:
        start = i
        value: float | None = None
        j = i
        if tokens[i].is_number:
            value = parse_number(tokens[i].norm)
            j = i + 1
        else:
            fig = _figures(norms, i, vocab)
            if fig is not None:
                value, j = fig
                found.append(_Num(value, i, j, i, scaled=True, approximate=True))
                i = j
                continue
            value, j = _word_number(norms, i, vocab)
        if value is None:
            i += 1
            continue
        scaled = False
        while j < n:
            hit = vocab.scale_words.match_at(norms, j)
            if hit is not None:
                value *= hit.value
                j = hit.end
                scaled = True
            else:
                break
        high: float | None = None
        # "200-500 employees", "200 to 500 employees"
        if (
            j < n
            and tokens[j].is_number
            and raw[tokens[j - 1].end : tokens[j].start].strip()
            in (
                "-",
                "–",
            )
        ):
            other = parse_number(tokens[j].norm)
            if other is not None:
                k = j + 1
                mult = 1.0
                hit = vocab.scale_words.match_at(norms, k)
                if hit is not None:
                    mult = hit.value
                    k = hit.end
                    if not scaled:
                        value *= mult
                high = other * mult
                j = k
        currency: float | None = None
        cur = _currency_before(norms, start, vocab)
        if cur is not None:
            currency, start = cur
        else:
            after = vocab.currencies.match_at(norms, j)
            if after is not None:
                currency = after.value
                j = after.end
        approx, bound, start = _approximation_before(norms, start, vocab)
        found.append(
            _Num(value, start, j, i, currency, approx, bound, scaled or currency is not None, high)
        )
        i = j
    return found


def _currency_before(norms: Sequence[str], i: int, vocab: Vocabulary) -> tuple[float, int] | None:
    for size in (2, 1):
        if i - size >= 0:
            rate = vocab.currencies.get(tuple(norms[i - size : i]))
            if rate is not None:
                return rate, i - size
    return None


def _approximation_before(norms: Sequence[str], i: int, vocab: Vocabulary) -> tuple[bool, str, int]:
    for size in (3, 2, 1):
        if i - size >= 0:
            key = tuple(norms[i - size : i])
            if key in vocab.approx_words:
                bound = ""
                if key in vocab.lower_bound_words:
                    bound = "low"
                elif key in vocab.upper_bound_words:
                    bound = "high"
                return True, bound, i - size
    return False, "", i


def _word_number(norms: Sequence[str], i: int, vocab: Vocabulary) -> tuple[float | None, int]:
    """ "twelve thousand", "three hundred", "twenty five", "a dozen"."""
    total = 0.0
    current = 0.0
    j = i
    seen = False
    n = len(norms)
    while j < n:
        hit = vocab.number_words.match_at(norms, j)
        if hit is not None:
            current += hit.value
            j = hit.end
            seen = True
            continue
        if seen and norms[j] in ("hundred",):
            current = max(current, 1) * 100
            j += 1
            continue
        if seen and norms[j] == "and" and j + 1 < n and vocab.number_words.get((norms[j + 1],)):
            j += 1
            continue
        break
    if not seen:
        return None, i
    total += current
    return total, j


def _figures(norms: Sequence[str], i: int, vocab: Vocabulary) -> tuple[float, int] | None:
    """ "mid-eight-figure" -> 50,000,000; "seven figures" -> about 3,000,000."""
    j = i
    position = vocab.figure_positions.get(norms[j]) if j < len(norms) else None
    if position is not None:
        j += 1
    if (
        j + 1 < len(norms)
        and norms[j] in vocab.figure_words
        and norms[j + 1]
        in (
            "figure",
            "figures",
        )
    ):
        digits = vocab.figure_words[norms[j]]
        base = 10 ** (digits - 1)
        return float(base * (position if position is not None else 3)), j + 2
    return None


def _quantity(num: _Num, tokens: Sequence[Token], raw: str, end: int) -> Quantity:
    source = raw[tokens[num.start].start : tokens[end - 1].end]
    value = num.value
    low: float | None = None
    high: float | None = None
    if num.high is not None:
        low, high = num.value, num.high
        value = math.sqrt(max(low, 1) * max(high, 1))
    return Quantity(
        value=round(value),
        source=source,
        low=round(low) if low is not None else None,
        high=round(high) if high is not None else None,
        approximate=num.approximate,
    )


def _read_employees(
    tokens: Sequence[Token], raw: str, nums: Sequence[_Num], vocab: Vocabulary
) -> Quantity | None:
    norms = [t.norm for t in tokens]
    n = len(norms)
    candidates: list[tuple[int, float, int, Quantity]] = []
    for num in nums:
        if num.currency is not None or (num.value <= 0 and num.high is None):
            continue
        j = num.end
        while j < n and (norms[j],) in vocab.headcount_modifiers:
            j += 1
        hit = vocab.headcount_nouns.match_at(norms, j)
        if hit is not None:
            strength = _HEADCOUNT
            k = hit.end
            # "a 40-person platform team" is a department, not the company.
            m = k
            while m < n and _function_word(norms[m], vocab):
                m += 1
            if m > k and m < n and norms[m] in _TEAM_NOUNS:
                strength = _PARTIAL
            candidates.append((strength, num.value, num.start, _quantity(num, tokens, raw, k)))
            continue
        if j < n and norms[j] in vocab.partial_headcount_nouns:
            candidates.append((_PARTIAL, num.value, num.start, _quantity(num, tokens, raw, j + 1)))
            continue
        # "headcount north of 2,000", "a team of ~20", "workforce of 3,000"
        before = num.start - 1
        if before >= 0 and norms[before] in ("of", "is", ":", "around", "about"):
            before -= 1
        if before >= 0:
            if vocab.headcount_nouns.get((norms[before],)) and norms[before] not in (
                "people",
                "person",
            ):
                candidates.append(
                    (_HEADCOUNT, num.value, num.start, _quantity(num, tokens, raw, j))
                )
            elif norms[before] in vocab.team_words and not _owned_team(norms, before, vocab):
                candidates.append((_TEAM, num.value, num.start, _quantity(num, tokens, raw, j)))
    # "no employees", "solo founder", "a team of one" all mean a company of one.
    alone = _COMPANY_OF_ONE.search(raw)
    if alone:
        candidates.append((_TEAM, 1, 0, Quantity(1, alone.group(), approximate=True)))
    if not candidates:
        return None
    best_strength = max(c[0] for c in candidates)
    top = [c for c in candidates if c[0] == best_strength]
    # When a team and the whole company are both sized, the company is the larger number.
    return max(top, key=lambda c: (c[1], -c[2]))[3]


def _owned_team(norms: Sequence[str], team_at: int, vocab: Vocabulary) -> bool:
    """ "her platform team of eight" describes a department: skip it."""
    for k in range(max(0, team_at - 3), team_at):
        if norms[k] in _POSSESSIVES or _function_word(norms[k], vocab):
            return True
    return False


def _function_word(word: str, vocab: Vocabulary) -> bool:
    term = vocab.functions.get((word,))
    return term is not None and not term.generic


def _read_revenue(
    tokens: Sequence[Token], raw: str, nums: Sequence[_Num], vocab: Vocabulary
) -> Quantity | None:
    norms = [t.norm for t in tokens]
    n = len(norms)
    revenue_at: list[tuple[int, int]] = [
        (h.start, h.end) for h in vocab.revenue_words.find(norms) if not _pre_word(norms, h.start)
    ]
    if not revenue_at and not any("revenue" in w for w in norms):
        return None
    best: tuple[int, _Num, int] | None = None
    for num in nums:
        if not (num.currency is not None or num.scaled):
            continue
        if num.end < n and norms[num.end] == "%":
            continue
        for rs, re_ in revenue_at:
            if re_ <= num.start:
                gap = _gap(norms, re_, num.start)
            elif rs >= num.end:
                gap = _gap(norms, num.end, rs)
            else:
                continue
            if gap is None or gap > 6:
                continue
            if best is None or gap < best[0]:
                best = (gap, num, rs)
    if best is None:
        if re.search(r"\bpre-?revenue\b", fold(raw)):
            return Quantity(0, "pre-revenue")
        return None
    gap, num, rs = best
    value = num.value * (num.currency or 1.0)
    high = num.high * (num.currency or 1.0) if num.high is not None else None
    tail = norms[num.end : num.end + 3]
    monthly = norms[rs] in vocab.monthly_revenue_words or (
        ("month" in tail or "mo" in tail or "monthly" in tail) and "year" not in tail
    )
    if monthly:
        value *= 12
        high = high * 12 if high is not None else None
    end = max(num.end, rs + 1) if rs >= num.end else num.end
    start = min(num.start, rs)
    source = raw[tokens[start].start : tokens[end - 1].end]
    if high is not None:
        return Quantity(
            round(math.sqrt(max(value, 1) * max(high, 1))), source, round(value), round(high), True
        )
    return Quantity(round(value), source, approximate=num.approximate)


def _pre_word(norms: Sequence[str], i: int) -> bool:
    return i > 0 and norms[i - 1] == "pre"


def _gap(norms: Sequence[str], a: int, b: int) -> int | None:
    """Words between positions a and b, or None when a sentence or clause break lies between."""
    gap = 0
    for k in range(a, b):
        if norms[k] in (".", ";", "(", ")", "!", "?"):
            return None
        if norms[k] == ",":
            gap += 3
        else:
            gap += 1
    return gap


# --------------------------------------------------------------------------------------------
# Titles


@dataclass
class WordTag:
    """What the vocabulary says about one word of a title: functions (with whether each is
    only a generic word), seniority rank and the word's part in a title."""

    functions: list[tuple[str, bool]] = field(default_factory=list)
    rank: int | None = None
    role: bool = False
    connector: bool = False
    modifier: bool = False
    deputy: bool = False
    punct: bool = False


def _expand(tokens: Sequence[Token], raw: str, vocab: Vocabulary) -> list[Token]:
    """Replace title abbreviations by their words ("VP Eng" -> "vice president engineering")."""
    out: list[Token] = []
    for tok in tokens:
        exp = vocab.abbreviations.get(tok.norm)
        if exp is not None and tok.norm in vocab.case_sensitive_abbreviations:
            original = raw[tok.start : tok.end]
            if not original.isupper():
                exp = None
        if exp is None:
            out.append(tok)
        else:
            out.extend(Token(w, tok.start, tok.end) for w in exp)
    return out


def tag_words(norms: Sequence[str], vocab: Vocabulary) -> list[WordTag]:
    """Tag each folded word of a title with its functions, rank and role in the title."""
    tags = [WordTag() for _ in norms]
    for hit in vocab.functions.find(norms):
        for k in range(hit.start, hit.end):
            tags[k].functions.append((hit.value.function, hit.value.generic))
    for level in vocab.seniority.find(norms):
        for k in range(level.start, level.end):
            current = tags[k].rank
            tags[k].rank = level.value if current is None else max(current, level.value)
    for k, w in enumerate(norms):
        tag = tags[k]
        if (w,) in vocab.role_nouns:
            tag.role = True
        if w in vocab.connectors:
            tag.connector = True
        if w in vocab.modifiers:
            tag.modifier = True
        if w in vocab.deputy_words:
            tag.deputy = True
        if w in PUNCT:
            tag.punct = True
        if len(w) >= 8 and not tag.functions and w.isalpha():
            for part, fid in vocab.function_compounds:
                if part in w and part != w:
                    tag.functions.append((fid, False))
        if len(w) >= 7 and tag.rank is None and w.isalpha():
            for part, rank in vocab.seniority_compounds:
                if w.endswith(part) and part != w:
                    tag.rank = rank
    # "co founder": a two-word role noun after tokenizing the hyphen.
    for k in range(len(norms) - 1):
        if (norms[k], norms[k + 1]) in vocab.role_nouns:
            tags[k].role = tags[k + 1].role = True
    return tags


def _titleish(tag: WordTag) -> bool:
    return bool(tag.functions or tag.rank is not None or tag.role or tag.modifier)


def _title_from_span(
    toks: Sequence[Token], tags: Sequence[WordTag], a: int, b: int, raw: str, confidence: float
) -> Title | None:
    specific: list[str] = []
    generic: list[str] = []
    rank: int | None = None
    role = False
    deputy = False
    for k in range(a, b):
        tag = tags[k]
        for fid, is_generic in tag.functions:
            target = generic if is_generic else specific
            if fid not in target:
                target.append(fid)
        if tag.rank is not None:
            rank = tag.rank if rank is None else max(rank, tag.rank)
        role = role or tag.role
        deputy = deputy or tag.deputy
    functions = _choose_functions(specific, generic)
    norms = [t.norm for t in toks[a:b]]
    # "Kubernetes platform owner" owns a platform, not the company.
    if "owner" in norms:
        at = norms.index("owner")
        if any(tags[a + k].functions and norms[k] != "owner" for k in range(at)):
            if EXECUTIVE in functions and len(functions) > 1:
                functions = [f for f in functions if f != EXECUTIVE]
            rank = 3
    if EXECUTIVE in functions and len(functions) > 1 and rank is not None and rank < 6:
        functions = [f for f in functions if f != EXECUTIVE]
    has_function = bool(functions)
    if not (role or (has_function and rank is not None) or (rank is not None and rank >= 4)):
        return None
    if rank is None and role:
        rank = 1
    if deputy and rank is not None and rank > 1:
        rank -= 1
    text = raw[toks[a].start : toks[b - 1].end]
    return Title(
        text=text,
        functions=tuple(functions),
        rank=rank,
        confidence=confidence,
        expanded=" ".join(norms),
    )


def _choose_functions(specific: list[str], generic: list[str]) -> list[str]:
    """A title's functions: generic words ("technology", "operations") count only when no
    specific function is named, except beside a founder's or owner's role ("Technical
    co-founder" is an engineering founder; "Legal Technology Manager" works in legal)."""
    if any(f != EXECUTIVE for f in specific):
        return specific
    return specific + [g for g in generic if g not in specific]


def _title_spans(toks: Sequence[Token], tags: Sequence[WordTag]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    n = len(toks)
    i = 0
    while i < n:
        if not _titleish(tags[i]) or tags[i].punct:
            i += 1
            continue
        j = i + 1
        while j < n:
            tag = tags[j]
            if tag.punct:
                break
            if _titleish(tag):
                j += 1
                continue
            nxt = j + 1
            # connectors and one filler word may sit inside a title
            # ("Money Laundering Reporting Officer", "Head of Platform").
            while nxt < n and tags[nxt].connector and not _titleish(tags[nxt]):
                nxt += 1
            if (tag.connector or toks[j].norm in _SPAN_JOINERS) and nxt < n and _strong(tags[nxt]):
                j = nxt
                continue
            if (
                toks[j].norm.isalpha()
                and nxt < n
                and _strong(tags[nxt])
                and _strong(tags[j - 1])
                and not tags[j].connector
                and toks[j].norm not in _ARTICLES
            ):
                j = nxt
                continue
            break
        spans.append((i, j))
        i = j
    return spans


def _strong(tag: WordTag) -> bool:
    return bool(tag.functions or tag.rank is not None or tag.role)


def _paraphrases(
    toks: Sequence[Token], tags: Sequence[WordTag], raw: str, vocab: Vocabulary
) -> list[tuple[int, Title]]:
    """ "the person who owns our Kubernetes platform" -> platform function, manager rank."""
    norms = [t.norm for t in toks]
    out: list[tuple[int, Title]] = []
    n = len(norms)
    for i in range(1, n - 1):
        if norms[i] not in vocab.paraphrase_subjects or norms[i - 1] not in (
            "the",
            "a",
            "an",
            "their",
            "our",
            "'",
        ):
            continue
        link = vocab.paraphrase_links.match_at(norms, i + 1)
        if link is None:
            continue
        a = link.end
        b = a
        while b < n and b - a < 16:
            w = norms[b]
            if w in PUNCT or w in _CLAUSE_STOPS:
                break
            if w in _CLAUSE_STOP_BEFORE_ARTICLE and b + 1 < n and norms[b + 1] in _ARTICLES:
                break
            b += 1
        if b == a:
            continue
        specific: list[str] = []
        generic: list[str] = []
        for k in range(a, b):
            for fid, is_generic in tags[k].functions:
                target = generic if is_generic else specific
                if fid not in target:
                    target.append(fid)
        subject_title = _title_from_span(toks, tags, i, i + 1, raw, PARAPHRASE_CONFIDENCE)
        if subject_title:
            for fid in subject_title.functions:
                if fid not in generic:
                    generic.append(fid)
        functions = [f for f in specific if f != EXECUTIVE] or generic
        verb_ranks = [h.value for h in vocab.paraphrase_verbs.find(norms, link.start, b)]
        rank = max(verb_ranks) if verb_ranks else None
        if rank is None and subject_title is not None:
            rank = subject_title.rank
        if not functions and rank is None:
            continue
        text = raw[toks[i - 1].start : toks[b - 1].end]
        out.append(
            (
                i - 1,
                Title(
                    text=text,
                    functions=tuple(functions),
                    rank=rank,
                    confidence=PARAPHRASE_CONFIDENCE,
                    expanded=" ".join(norms[i - 1 : b]),
                ),
            )
        )
    return out


def read_title(text: str, vocabulary: Vocabulary | None = None) -> Title | None:
    """Read one title as written in a title field ("VP Eng", "Runs infra (employee #2)")."""
    vocab = vocabulary or load_vocabulary()
    tokens = _corrected(tokenize(text), vocab)
    toks = _expand(tokens, text, vocab)
    norms = [t.norm for t in toks]
    tags = tag_words(norms, vocab)
    if not toks:
        return None
    title = _title_from_span(toks, tags, 0, len(toks), text, FIELD_CONFIDENCE)
    specific = [f for t in tags for f, g in t.functions if not g]
    generic = [f for t in tags for f, g in t.functions if g]
    functions = tuple(dict.fromkeys(_choose_functions(specific, generic)))
    if title is None:
        # "Deal Desk Manager" names no function the vocabulary knows, but still a level.
        levels = [h.value for h in vocab.paraphrase_verbs.find(norms)]
        levels += [t.rank for t in tags if t.rank is not None]
        if not functions and not levels:
            return Title(text=text, confidence=FIELD_CONFIDENCE, expanded=" ".join(norms))
        return Title(
            text=text,
            functions=functions,
            rank=max(levels) if levels else None,
            confidence=FIELD_CONFIDENCE,
            expanded=" ".join(norms),
        )
    return replace(title, text=text)


def title_tokens(text: str, vocabulary: Vocabulary | None = None) -> list[Token]:
    """The words of a text as titles are read: typos fixed, abbreviations expanded ("Sr PM"
    -> "senior product manager"), each keeping its span in ``text``."""
    vocab = vocabulary or load_vocabulary()
    return _expand(_corrected(tokenize(text), vocab), text, vocab)


def _read_titles(
    tokens: Sequence[Token], raw: str, vocab: Vocabulary
) -> tuple[list[Title], list[tuple[int, int]]]:
    toks = _expand(tokens, raw, vocab)
    norms = [t.norm for t in toks]
    tags = tag_words(norms, vocab)
    found: list[tuple[int, Title]] = []
    char_spans: list[tuple[int, int]] = []
    for a, b in _title_spans(toks, tags):
        title = _title_from_span(toks, tags, a, b, raw, TITLE_CONFIDENCE)
        if title is not None:
            found.append((toks[a].start, title))
            char_spans.append((toks[a].start, toks[b - 1].end))
    for _, title in _paraphrases(toks, tags, raw, vocab):
        pos = raw.find(title.text)
        found.append((pos, title))
    found.sort(key=lambda item: item[0])
    titles = [t for _, t in found]
    # A paraphrase beats the bare role noun that starts it ("the engineer who runs infra").
    merged: list[Title] = []
    for t in titles:
        if merged and t.confidence == PARAPHRASE_CONFIDENCE:
            prev = merged[-1]
            if prev.confidence == TITLE_CONFIDENCE and prev.text in t.text and not prev.functions:
                merged[-1] = t
                continue
            if prev.confidence == TITLE_CONFIDENCE and prev.text in t.text:
                functions = tuple(dict.fromkeys((*t.functions, *prev.functions)))
                merged[-1] = replace(t, functions=functions)
                continue
        merged.append(t)
    if not merged:
        specific = [
            (k, f)
            for k, tag in enumerate(tags)
            for f, g in tag.functions
            if not g and f != EXECUTIVE
        ]
        if specific:
            counts: dict[str, int] = {}
            for _, f in specific:
                counts[f] = counts.get(f, 0) + 1
            ranked = sorted(counts, key=lambda f: -counts[f])[:2]
            k0 = specific[0][0]
            merged.append(
                Title(
                    text=raw[toks[k0].start : toks[k0].end],
                    functions=tuple(ranked),
                    rank=None,
                    confidence=IMPLIED_CONFIDENCE,
                    expanded=" ".join(norms[k0 : k0 + 1]),
                )
            )
    return merged, char_spans


# --------------------------------------------------------------------------------------------
# Vocabulary mentions


def _mentions(
    tokens: Sequence[Token],
    raw: str,
    index: object,
    labels: dict[str, str],
    skip: Sequence[tuple[int, int]] = (),
    case_sensitive: dict[str, str] | None = None,
    per_term: bool = False,
) -> list[Mention]:
    assert isinstance(index, PhraseIndex)
    norms = [t.norm for t in tokens]
    out: list[Mention] = []
    seen: set[str] = set()
    for hit in index.find(norms):
        a, b = tokens[hit.start].start, tokens[hit.end - 1].end
        if any(s <= a < e for s, e in skip):
            continue
        single = hit.end - hit.start == 1
        if (
            case_sensitive
            and single
            and norms[hit.start] in case_sensitive
            and raw[a:b] != case_sensitive[norms[hit.start]]
        ):
            continue
        key = str(hit.value)
        if per_term:
            key = " ".join(norms[hit.start : hit.end])
        if key in seen:
            continue
        seen.add(key)
        value = str(hit.value)
        out.append(Mention(value, labels.get(value, value), raw[a:b]))
    return out


def _compound_industries(tokens: Sequence[Token], raw: str, vocab: Vocabulary) -> list[Mention]:
    """German compounds such as "Softwarehaus" or "Stahlwerk"."""
    out: list[Mention] = []
    for tok in tokens:
        w = tok.norm
        if len(w) < 8 or not w.isalpha():
            continue
        for tail in vocab.industry_compound_tails:
            if w.endswith(tail) and len(w) - len(tail) >= 4:
                head = w[: len(w) - len(tail)].rstrip("s")
                key = vocab.industry_single_words.get(head)
                if key is not None:
                    out.append(
                        Mention(key, vocab.industry_labels.get(key, key), raw[tok.start : tok.end])
                    )
    return out


def _corrected(tokens: list[Token], vocab: Vocabulary) -> list[Token]:
    """Fix obvious typos in words the vocabulary knows ("Platfrom" -> "platform")."""
    out = tokens
    for k, tok in enumerate(tokens):
        w = tok.norm
        if len(w) < 6 or not w.isalpha() or w in vocab.known_words:
            continue
        fixed = _spelling(vocab, w)
        if fixed is not None and fixed != w:
            if out is tokens:
                out = list(tokens)
            out[k] = Token(fixed, tok.start, tok.end)
    return out


_SPELLING_CACHE: dict[tuple[int, str], str | None] = {}


def _spelling(vocab: Vocabulary, word: str) -> str | None:
    key = (id(vocab), word)
    if key in _SPELLING_CACHE:
        return _SPELLING_CACHE[key]
    from rapidfuzz import fuzz, process

    candidates = _spelling_candidates(vocab, word[0], len(word))
    best = process.extractOne(word, candidates, scorer=fuzz.ratio, score_cutoff=86)
    result = best[0] if best else None
    # "produce" is not a typo of "producer": an inflection shares the whole shorter word.
    if result is not None and (result.startswith(word[:-1]) or word.startswith(result[:-1])):
        result = None
    if len(_SPELLING_CACHE) > 50_000:
        _SPELLING_CACHE.clear()
    _SPELLING_CACHE[key] = result
    return result


_CANDIDATES: dict[tuple[int, str, int], list[str]] = {}


def _spelling_candidates(vocab: Vocabulary, first: str, length: int) -> list[str]:
    key = (id(vocab), first, length)
    found = _CANDIDATES.get(key)
    if found is None:
        found = [w for w in vocab.spellable if w[0] == first and abs(len(w) - length) <= 2]
        _CANDIDATES[key] = found
    return found


# --------------------------------------------------------------------------------------------
# Entry point


def read_facts(text: str, vocabulary: Vocabulary | None = None) -> Facts:
    """Read every fact that ``text`` states (see the module docstring for what is read)."""
    vocab = vocabulary or load_vocabulary()
    raw = text or ""
    tokens = _corrected(tokenize(raw), vocab)
    nums = _numbers(tokens, raw, vocab)
    employees = _read_employees(tokens, raw, nums, vocab)
    revenue = _read_revenue(tokens, raw, nums, vocab)
    titles, title_spans = _read_titles(tokens, raw, vocab)
    industries = _mentions(tokens, raw, vocab.industries, vocab.industry_labels, title_spans)
    seen = {m.id for m in industries}
    for m in _compound_industries(tokens, raw, vocab):
        if m.id not in seen:
            industries.append(m)
            seen.add(m.id)
    regions = _mentions(
        tokens, raw, vocab.regions, vocab.region_labels, (), vocab.region_case_sensitive
    )
    stages = _mentions(tokens, raw, vocab.stage_text, vocab.stage_labels)
    products = _mentions(tokens, raw, vocab.products, vocab.product_labels, per_term=True)
    folded = " ".join(t.norm for t in tokens)
    non_buyer: list[Mention] = []
    present = {t.norm for t in tokens}
    for cue in vocab.non_buyer_cues:
        if cue.triggers and not cue.triggers & present:
            continue
        # Every match, not just the first: a persona may own one cue's words but not another's.
        for found in cue.combined.finditer(folded):
            said = found.group().strip()
            if said and all(m.source != said for m in non_buyer):
                non_buyer.append(Mention(cue.kind, cue.says, said))
    content = tuple(
        t.norm
        for t in tokens
        if not t.is_number
        and t.norm not in PUNCT
        and t.norm not in vocab.stopwords
        and t.norm not in vocab.fact_words
        and len(t.norm) > 1
    )
    return Facts(
        employees=employees,
        revenue_usd=revenue,
        titles=tuple(titles),
        industries=tuple(industries),
        regions=tuple(regions),
        stage=stages[0] if stages else None,
        non_buyer=tuple(non_buyer),
        products=tuple(products),
        words=content,
    )


def read_label(
    value: str, index_name: str, vocabulary: Vocabulary | None = None
) -> tuple[Mention, ...]:
    """Read a structured field or a persona list item ("Fin-tech", "EMEA", "Series D")."""
    vocab = vocabulary or load_vocabulary()
    index, labels = {
        "industries": (vocab.industries, vocab.industry_labels),
        "regions": (vocab.regions, vocab.region_labels),
        "stages": (vocab.stages, vocab.stage_labels),
    }[index_name]
    tokens = tokenize(value)
    key = tuple(t.norm for t in tokens)
    exact = index.get(key)
    if exact is not None:
        return (Mention(str(exact), labels.get(str(exact), str(exact)), value),)
    found = _mentions(tokens, value, index, labels)
    if index_name == "industries":
        seen = {m.id for m in found}
        found += [m for m in _compound_industries(tokens, value, vocab) if m.id not in seen]
    return tuple(Mention(m.id, m.label, value) for m in found)


def merge_fields(
    facts: Facts,
    *,
    industry: str | None = None,
    employees: int | None = None,
    revenue_usd: int | None = None,
    region: str | None = None,
    title: str | None = None,
    stage: str | None = None,
    vocabulary: Vocabulary | None = None,
) -> Facts:
    """Lay structured deal fields over facts read from text: a field always wins."""
    vocab = vocabulary or load_vocabulary()
    changes: dict[str, Any] = {}
    if employees is not None:
        changes["employees"] = Quantity(int(employees), "field")
    if revenue_usd is not None:
        changes["revenue_usd"] = Quantity(int(revenue_usd), "field")
    if industry:
        found = read_label(industry, "industries", vocab) or (
            Mention("raw:" + fold(industry), industry, industry),
        )
        # The rep named the company's industry: words the text happens to share with an
        # industry ("on paper", "sells to banks") no longer count, unless the vocabulary
        # cannot read the field.
        rest: tuple[Mention, ...] = ()
        if all(m.id.startswith("raw:") for m in found):
            rest = tuple(m for m in facts.industries if m.id not in {f.id for f in found})
        changes["industries"] = (*found, *rest)
    if region:
        found = read_label(region, "regions", vocab)
        if found:
            changes["regions"] = found
    if stage:
        found = read_label(stage, "stages", vocab)
        changes["stage"] = found[0] if found else Mention("raw:" + fold(stage), stage, stage)
    if title:
        parsed = read_title(title, vocab)
        if parsed is not None:
            changes["titles"] = (parsed, *facts.titles)
    return replace(facts, **changes) if changes else facts


def stems(words_: Sequence[str]) -> tuple[str, ...]:
    """Stems of content words, for comparing a deal's words with a persona's."""
    return tuple(stem(w) for w in words_)
