"""Behaviour of Matcher.rank: ranking, reasons, the causes of "none", the JSON contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from persona_store.matcher import DealQuery, FitResult, Matcher, load_vocabulary
from persona_store.records import PersonaSpec

DATA = Path(__file__).parent / "data"


def _personas(name: str) -> list[PersonaSpec]:
    raw = yaml.safe_load((DATA / name).read_text(encoding="utf-8"))
    return [PersonaSpec.from_dict(p) for p in raw["personas"]]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(_personas("personas_dev.yaml"))


def test_every_persona_is_ranked_best_first(matcher: Matcher) -> None:
    result = matcher.rank(DealQuery(text="CISO at a 3,000-person bank worried about audits"))
    assert len(result.matches) == 4
    scores = [m.score for m in result.matches]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= s <= 100 for s in scores)
    assert result.best == result.matches[0].key == "compliance-carla"


def test_reasons_are_checkable_sentences(matcher: Matcher) -> None:
    result = matcher.rank(
        DealQuery(
            text="Needs audit trails and log retention evidence for the auditors.",
            title="VP Eng",
            employees=300,
            industry="retail",
        )
    )
    sam = next(m for m in result.matches if m.key == "startup-sam")
    assert "300 employees is outside 8-150" in sam.reasons_against
    assert any("industry 'retail' is not one of SaaS, Fintech" in r for r in sam.reasons_against)
    assert any(r.startswith("buyer 'VP Eng' matches job title") for r in sam.reasons_for)
    carla = next(m for m in result.matches if m.key == "compliance-carla")
    assert any("(pain point:" in r and "audit" in r for r in carla.reasons_for)
    assert sam.reasons == sam.reasons_for + sam.reasons_against


def test_structured_fields_win_over_text(matcher: Matcher) -> None:
    result = matcher.rank(DealQuery(text="a 40-person startup", employees=1200))
    assert result.facts.employees is not None
    assert result.facts.employees.value == 1200
    assert result.facts.employees.source == "field"


def test_size_separates_near_identical_deals(matcher: Matcher) -> None:
    text = "Head of Engineering at a developer-tools company; self-hosted Prometheus fell over."
    small = matcher.rank(DealQuery(text=text, employees=60))
    large = matcher.rank(
        DealQuery(text=text, employees=1500, title="Director of Platform Engineering")
    )
    assert small.best == "startup-sam"
    assert large.best == "platform-priya"


def test_none_when_no_persona_covers_the_company_size(matcher: Matcher) -> None:
    result = matcher.rank(
        DealQuery(text="Director of Engineering at a SaaS company", employees=200)
    )
    assert result.best is None
    assert "no persona covers companies of 200 employees" in result.verdict.lower()


def test_none_when_the_buyer_function_is_not_covered(matcher: Matcher) -> None:
    result = matcher.rank(
        DealQuery(
            text="wants to track desk usage across three hubs",
            title="Facilities Manager",
            employees=900,
            industry="SaaS",
        )
    )
    assert result.best is None
    assert "facilities" in result.verdict


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Master's student writing a thesis on alert fatigue and MTTR.", "student"),
        ("An SRE applying for our Staff SRE opening asked about on-call.", "job applicant"),
        ("Consultancy wants reseller margins for Kubernetes and SIEM projects.", "reseller"),
    ],
)
def test_none_for_non_buyers_full_of_persona_words(matcher: Matcher, text: str, says: str) -> None:
    result = matcher.rank(DealQuery(text=text))
    assert result.best is None
    assert says in result.verdict


def test_none_for_a_different_product_that_shares_vocabulary(matcher: Matcher) -> None:
    result = matcher.rank(
        DealQuery(
            text="Replacing the transaction monitoring system: AML scoring and sanctions "
            "screening with dashboards and alerts.",
            title="Head of Financial Crime Compliance",
            industry="Banking",
            employees=3000,
        )
    )
    assert result.best is None
    assert "anti-money-laundering" in result.verdict


def test_thin_input_says_what_to_add(matcher: Matcher) -> None:
    result = matcher.rank(DealQuery(text="Interested in a demo next week."))
    assert result.best is None
    assert "head count" in result.missing
    assert "the buyer's title" in result.missing


def test_to_json_matches_the_fit_contract(matcher: Matcher) -> None:
    result = matcher.rank(DealQuery(text="SRE Manager at a 9,000-person online retailer"))
    data = result.to_json()
    assert set(data) >= {"best", "matches"}
    assert data["best"] == "oncall-omar"
    first = data["matches"][0]
    assert set(first) == {"key", "name", "score", "reasons"}
    assert isinstance(first["score"], int)
    assert all(isinstance(r, str) for r in first["reasons"])


def test_json_best_is_null_when_none_fits(matcher: Matcher) -> None:
    result = matcher.rank(DealQuery(text="Comp-sci student needs a free license"))
    assert result.to_json()["best"] is None


def test_function_matching_generalizes_to_another_persona_set() -> None:
    matcher = Matcher(_personas("heldout_payroll_personas.yaml"))
    result: FitResult = matcher.rank(
        DealQuery(text="Leiterin Personal bei einem Softwarehaus mit rund 450 Mitarbeitenden")
    )
    assert result.best == "people-petra"


def test_large_persona_sets_explain_only_the_top(matcher: Matcher) -> None:
    base = _personas("personas_dev.yaml")
    many = [
        PersonaSpec.from_dict({**p.to_dict(), "key": f"{p.key}-{n}", "name": f"{p.name} {n}"})
        for n in range(10)
        for p in base
    ]
    big = Matcher(many)
    result = big.rank(DealQuery(text="CISO at a 3,000-person bank"))
    assert len(result.matches) == 40
    assert result.matches[0].reasons
    assert result.matches[-1].reasons == ()


def test_empty_persona_set_answers_none() -> None:
    result = Matcher([]).rank(DealQuery(text="CISO at a bank"))
    assert result.best is None
    assert result.matches == ()


def test_vocabulary_is_loaded_once() -> None:
    assert load_vocabulary() is load_vocabulary()


def test_sparse_personas_still_fit_and_missing_fields_are_no_criterion() -> None:
    personas = [
        PersonaSpec.from_dict(
            {
                "key": "revops-rita",
                "name": "RevOps Rita",
                "role": "Head of Revenue Operations",
                "summary": "Owns the CRM and the forecast.",
                "demographic": {"job_titles": ["Head of Revenue Operations", "RevOps Manager"]},
                "keywords": ["forecasting", "pipeline hygiene"],
            }
        ),
        PersonaSpec.from_dict(
            {
                "key": "it-ivan",
                "name": "IT Ivan",
                "role": "IT Director",
                "summary": "Runs laptops and identity.",
                "demographic": {"job_titles": ["IT Director", "Head of IT"]},
                "keywords": ["device management", "single sign-on"],
            }
        ),
    ]
    matcher = Matcher(personas)
    fit = matcher.rank(
        DealQuery(text="RevOps manager says forecasting and pipeline hygiene are poor")
    )
    assert fit.best == "revops-rita"
    assert fit.matches[0].score >= 60
    other = matcher.rank(DealQuery(text="Head of IT wants single sign-on and device management"))
    assert other.best == "it-ivan"
