"""Rules of the matcher that keep it honest on persona sets it was never tuned on.

Each test builds a small persona set of its own: a related function family is never enough
for the best fit, sub-functions and a title's own words decide between personas, an industry
the persona does not cover weighs heavily, non-buyer cues need the person's relation (and a
persona that works with resellers or suppliers owns those words), thin notes are not punished
for saying little about needs, and the threshold is judged on the score that is shown.
"""

from __future__ import annotations

from typing import Any

import pytest

from persona_store.matcher import (
    THRESHOLD,
    DealQuery,
    Matcher,
    load_vocabulary,
    read_facts,
    read_title,
)
from persona_store.matching.facts import read_label
from persona_store.matching.ranking import _Query
from persona_store.matching.titles import TitleSig, title_fit, title_sig
from persona_store.records import PersonaSpec


def _persona(key: str, titles: list[str], **extra: Any) -> PersonaSpec:
    firmographic = {
        "industries": extra.pop("industries", []),
        "employees": extra.pop("employees", {"min": 200, "max": 20000}),
    }
    data: dict[str, Any] = {
        "key": key,
        "name": key.replace("-", " ").title(),
        "role": extra.pop("role", titles[0]),
        "summary": extra.pop("summary", "A persona for tests."),
        "demographic": {"job_titles": titles, "seniority": extra.pop("seniority", [])},
        "firmographic": firmographic,
        **extra,
    }
    return PersonaSpec.from_dict(data)


@pytest.fixture(scope="module")
def freight() -> Matcher:
    return Matcher(
        [
            _persona(
                "carrier-ops",
                ["Director of Operations", "VP Operations", "Dispatch Manager"],
                industries=["Trucking", "Freight"],
                keywords=["dispatch", "load tracking", "on-time delivery", "driver check calls"],
                pain_points=["Dispatchers call drivers all day to find out where loads are"],
            ),
            _persona(
                "shipper-logistics",
                ["Director of Logistics", "Transportation Manager", "VP Supply Chain"],
                industries=["Retail", "Consumer goods", "Manufacturing"],
                keywords=["shipment visibility", "carrier performance", "late deliveries"],
            ),
        ]
    )


def test_an_exact_title_at_an_industry_the_persona_does_not_cover_is_no_fit(
    freight: Matcher,
) -> None:
    result = freight.rank(
        DealQuery(
            text="Wants to see where every delivery truck is and call drivers less.",
            title="Operations Director",
            industry="Brewery",
            employees=900,
        )
    )
    assert result.best is None
    assert "industry 'Brewery' is not one of Trucking, Freight" in result.verdict


def test_a_narrow_industry_list_weighs_more_than_a_broad_one() -> None:
    narrow = _persona("narrow", ["Head of Quality"], industries=["Dairy"])
    broad = _persona(
        "broad",
        ["Head of Quality"],
        industries=["Manufacturing", "Retail", "Energy", "Logistics", "Pharmaceuticals"],
    )
    query = DealQuery(text="Head of Quality at a bank", industry="Banking", employees=2000)
    scores = {m.key: m.score for m in Matcher([narrow, broad]).rank(query).matches}
    assert scores["narrow"] < scores["broad"]


def test_a_best_fit_despite_another_industry_says_so_in_the_verdict() -> None:
    persona = _persona(
        "quality-lead",
        ["Head of Quality", "Quality Director"],
        industries=["Manufacturing", "Retail", "Energy", "Logistics", "Pharmaceuticals"],
        keywords=["batch records", "deviations", "audit readiness", "CAPA"],
        pain_points=["Batch records and deviations live on paper"],
    )
    result = Matcher([persona]).rank(
        DealQuery(
            text="Batch records and deviations are on paper; wants CAPA and audit readiness.",
            title="Head of Quality",
            industry="Banking",
            employees=3000,
        )
    )
    assert result.best == "quality-lead"
    assert "but industry 'Banking' is not one of" in result.verdict


def test_a_related_function_family_never_makes_the_best_fit(freight: Matcher) -> None:
    result = freight.rank(
        DealQuery(
            text="Wants dispatch and load tracking dashboards for the yard.",
            title="Head of Workplace",
            industry="Trucking",
            employees=3000,
        )
    )
    assert result.best is None
    assert "facilities and workplace ('Head of Workplace')" in result.verdict
    assert all(m.score < THRESHOLD for m in result.matches)


def test_the_related_function_persona_still_ranks_with_a_reason_against(
    freight: Matcher,
) -> None:
    result = freight.rank(
        DealQuery(text="Dispatch and load tracking", title="Head of Workplace", employees=3000)
    )
    carrier = next(m for m in result.matches if m.key == "carrier-ops")
    assert any("only related to this persona's operations" in r for r in carrier.reasons_against)


@pytest.fixture(scope="module")
def learning() -> Matcher:
    return Matcher(
        [
            _persona(
                "ld-lead",
                ["Head of Learning and Development", "L&D Manager", "Chief Learning Officer"],
                industries=["Software", "Retail"],
                employees={"min": 500, "max": 20000},
                keywords=["onboarding courses", "learning paths", "compliance training"],
            ),
            _persona(
                "safety-lead",
                ["EHS Manager", "Safety and Training Manager", "Head of Health and Safety"],
                industries=["Manufacturing"],
                employees={"min": 500, "max": 20000},
                keywords=["toolbox talks", "incident reporting", "safety inductions"],
            ),
        ]
    )


def test_talent_acquisition_is_not_learning_and_development(learning: Matcher) -> None:
    result = learning.rank(
        DealQuery(
            text="Wants onboarding courses and learning paths for new hires.",
            title="Talent Acquisition Director",
            industry="Retail",
            employees=3000,
        )
    )
    assert result.best is None
    assert "talent acquisition and recruiting" in result.verdict


def test_an_hr_generalist_still_fits_a_learning_persona(learning: Matcher) -> None:
    result = learning.rank(
        DealQuery(
            text="Wants onboarding courses and learning paths for new hires.",
            title="HR Director",
            industry="Retail",
            employees=3000,
        )
    )
    assert result.best == "ld-lead"


def test_a_function_named_second_in_a_persona_title_is_only_related() -> None:
    # "Safety and Training Manager" is a safety job that also trains.
    only_safety = Matcher(
        [
            _persona(
                "safety-lead",
                ["EHS Manager", "Safety and Training Manager", "Head of Health and Safety"],
                industries=["Manufacturing"],
                employees={"min": 500, "max": 20000},
                keywords=["toolbox talks", "incident reporting", "safety inductions"],
            )
        ]
    )
    result = only_safety.rank(
        DealQuery(
            text="Wants safety inductions and toolbox talks as online courses.",
            title="Learning and Development Manager",
            industry="Manufacturing",
            employees=3000,
        )
    )
    assert result.best is None
    assert "the closest persona, Safety Lead, is in" in result.verdict
    assert "a related function but not the same" in result.verdict


@pytest.fixture(scope="module")
def insurance() -> Matcher:
    common: dict[str, Any] = {
        "industries": ["Insurance"],
        "employees": {"min": 500, "max": 40000},
    }
    return Matcher(
        [
            _persona(
                "claims-lead",
                ["Claims Operations Manager", "Head of Claims", "Claims Director"],
                seniority=["Director", "VP"],
                keywords=["claims backlog", "first notice of loss", "cycle time"],
                **common,
            ),
            _persona(
                "fraud-lead",
                ["Fraud Operations Lead", "Head of Special Investigations", "Fraud Manager"],
                seniority=["Manager", "Director"],
                keywords=["fraud rings", "referrals", "investigations"],
                **common,
            ),
        ]
    )


def test_another_sub_function_of_the_same_generic_function_is_no_fit(
    insurance: Matcher,
) -> None:
    result = insurance.rank(
        DealQuery(
            text="Wants to cut the backlog and cycle time.",
            title="Underwriting Operations Manager",
            industry="Insurance",
            employees=3000,
        )
    )
    assert result.best is None


def test_the_buyer_holding_a_persona_title_beats_a_better_seniority_fit(
    insurance: Matcher,
) -> None:
    # Neither "claims" nor "fraud" is in the vocabulary, and the fraud persona holds the
    # buyer's seniority: the titles' own words decide.
    result = insurance.rank(
        DealQuery(
            text="Asked for a demo.",
            title="Claims Manager",
            industry="Insurance",
            employees=3000,
        )
    )
    assert result.best == "claims-lead"
    fraud = next(m for m in result.matches if m.key == "fraud-lead")
    assert fraud.score < THRESHOLD


def test_a_title_the_vocabulary_does_not_know_matches_the_persona_holding_it() -> None:
    desk = _persona(
        "deal-desk",
        ["Deal Desk Manager", "Head of Deal Desk", "Director of Revenue Operations"],
        industries=["SaaS"],
        keywords=["order forms", "discount approvals"],
    )
    legal = _persona("counsel", ["General Counsel", "Head of Legal"], industries=["SaaS"])
    result = Matcher([desk, legal]).rank(
        DealQuery(text="Order forms and discount approvals", title="Deal Desk Manager")
    )
    assert result.best == "deal-desk"
    assert "buyer 'Deal Desk Manager' matches job title 'Deal Desk Manager'" in result.verdict


def test_a_title_that_shares_a_generic_word_is_not_a_title_match() -> None:
    sales_ops = _persona("sales-ops", ["Sales Operations Manager"], industries=["SaaS"])
    result = Matcher([sales_ops]).rank(
        DealQuery(text="approvals", title="Marketing Operations Manager", industry="SaaS")
    )
    assert result.best is None
    assert not any("matches job title" in r for r in result.matches[0].reasons)


@pytest.mark.parametrize(
    "text",
    [
        "A freight forwarder wants white-label tracking pages for its own customers.",
        "Head of Partner Enablement is building a partner academy to certify their resellers.",
        "Channel team signs 300 reseller agreements a year with different discount schedules.",
    ],
)
def test_partner_words_without_the_relation_are_no_non_buyer_cue(text: str) -> None:
    assert read_facts(text).non_buyer == ()


@pytest.mark.parametrize(
    "text",
    [
        "They want to white-label our platform for their clients.",
        "As a partner we would like to offer your product to our customers.",
        "He works for a reseller in Ohio and asked about partner margins.",
        "We resell three monitoring products today.",
        "Value-added reseller in Texas asked for a price list.",
        "They are a value-added reseller of network gear.",
    ],
)
def test_partner_relations_are_non_buyer_cues(text: str) -> None:
    assert "partner" in {m.id for m in read_facts(text).non_buyer}


MSP_DEAL = (
    "Owner of a 20-person managed service provider: we resell backup software to 50 clients "
    "and want one multi-tenant console with a proper reseller margin."
)


def test_a_persona_that_resells_owns_the_reseller_cue() -> None:
    msp = _persona(
        "msp-owner",
        ["MSP Owner", "Managed Services Director", "Service Delivery Manager"],
        industries=["IT services"],
        employees={"min": 5, "max": 300},
        keywords=["multi-tenant console", "reseller margin", "client reporting", "MSP"],
        goals=["Resell a product we can brand for every client"],
    )
    cio = _persona("it-director", ["IT Director", "CIO"], employees={"min": 500, "max": 20000})
    assert Matcher([msp, cio]).rank(DealQuery(text=MSP_DEAL)).best == "msp-owner"
    alone = Matcher([cio]).rank(DealQuery(text=MSP_DEAL))
    assert alone.best is None
    assert "partner or reseller" in alone.verdict


def test_a_persona_that_manages_suppliers_owns_the_supplier_cue() -> None:
    buyer = _persona(
        "procurement-head",
        ["Head of Procurement", "Procurement Director"],
        industries=["Manufacturing"],
        employees={"min": 1000, "max": 50000},
        keywords=["supplier contracts", "renewal alerts", "price indexation"],
    )
    text = (
        "Head of Procurement at a 5,000-person manufacturer: our supplier of packaging film "
        "invoked a price indexation clause; wants renewal alerts on supplier contracts."
    )
    assert read_facts(text).non_buyer
    assert Matcher([buyer]).rank(DealQuery(text=text)).best == "procurement-head"


def test_a_thin_note_is_not_punished_for_saying_little_about_needs() -> None:
    persona = _persona(
        "legal-ops",
        ["Legal Operations Manager", "Head of Legal Operations"],
        industries=["Banking"],
        employees={"min": 2000, "max": 100000},
        keywords=["contract repository", "intake portal", "clause library"],
    )
    result = Matcher([persona]).rank(
        DealQuery(
            text="Asked for a demo.",
            title="Legal Operations Manager",
            industry="Banking",
            employees=8000,
        )
    )
    assert result.best == "legal-ops"
    assert result.matches[0].score >= 75


class _ShownFifty(Matcher):
    """A matcher whose raw scores all land just under the threshold, shown as 50."""

    def _scores(self, q: _Query) -> tuple[list[float], list[float]]:
        scores, needs = super()._scores(q)
        return [THRESHOLD - 0.4 for _ in scores], needs


def test_the_threshold_is_judged_on_the_score_that_is_shown() -> None:
    persona = _persona("ops", ["Director of Operations"], industries=["Retail"])
    result = _ShownFifty([persona]).rank(
        DealQuery(text="Director of Operations at a retailer", employees=2000)
    )
    assert result.matches[0].score == THRESHOLD
    assert result.best == "ops"
    assert f"below {THRESHOLD}" not in result.verdict


def test_a_company_of_one_is_one_employee() -> None:
    persona = _persona("ops", ["Director of Operations"], employees={"min": 50, "max": 500})
    result = Matcher([persona]).rank(DealQuery(text="Founder", employees=1))
    assert "companies of 1 employee " in result.verdict


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("wants a secure email gateway with spam filtering", "email_security"),
        ("needs policy management with annual policy attestations", "policy_management"),
        ("badge access and visitor management for three sites", "access_control"),
    ],
)
def test_more_product_categories(text: str, category: str) -> None:
    assert category in {m.id for m in read_facts(text).products}


@pytest.mark.parametrize(
    ("title", "functions", "rank"),
    [
        ("Legal Technology Manager", ("legal",), 3),
        ("Marketing Operations Manager", ("marketing",), 3),
        ("Talent Acquisition Director", ("recruiting",), 4),
        ("Head of Learning and Development", ("learning",), 4),
        ("Deal Desk Manager", (), 3),
        ("IT Service Desk Manager", ("it_support",), 3),
        ("Customer Training Manager", ("customer",), 3),
        ("Head of Partner Enablement", ("partnerships",), 4),
    ],
)
def test_title_sub_functions_and_generic_words(
    title: str, functions: tuple[str, ...], rank: int
) -> None:
    parsed = read_title(title)
    assert parsed is not None
    assert parsed.functions == functions
    assert parsed.rank == rank


def test_a_technical_founder_keeps_the_technology_function() -> None:
    parsed = read_title("Technical co-founder")
    assert parsed is not None
    assert set(parsed.functions) == {"executive", "engineering"}


def test_an_industry_field_wins_over_industry_words_in_the_text() -> None:
    persona = _persona("ops", ["Director of Operations"], industries=["Retail"])
    result = Matcher([persona]).rank(
        DealQuery(text="Sells to banks; forms are still on paper.", industry="Retail")
    )
    assert [m.id for m in result.facts.industries] == ["retail"]


def test_administration_is_a_generic_word_its_qualifier_names_the_job() -> None:
    vocab = load_vocabulary()

    def sig(text: str, persona: bool) -> TitleSig:
        parsed = read_title(text, vocab)
        assert parsed is not None
        return title_sig(text, parsed.expanded, vocab, persona=persona)

    buyer = sig("Claims Administration Manager", persona=False)
    assert buyer.generic == {"office"} and buyer.words == {"claim"}
    other = title_fit(
        buyer, sig("Contract Administration Manager", True), vocab.function_similarity
    )
    same = title_fit(buyer, sig("Head of Claims Administration", True), vocab.function_similarity)
    assert other is not None and other < 0.6
    assert same == 1.0


@pytest.mark.parametrize(
    ("label", "industry"),
    [
        ("General contractors", "construction"),
        ("Specialty contractors", "construction"),
        ("Pharmacies", "clinics"),
        ("Hospitals", "healthcare_providers"),
    ],
)
def test_industries_are_read_in_the_plural_too(label: str, industry: str) -> None:
    assert industry in {m.id for m in read_label(label, "industries")}


def test_a_trade_subcontractor_is_construction_not_building_materials() -> None:
    facts = read_facts("General manager of a concrete subcontractor with 80 employees")
    assert "construction" in {m.id for m in facts.industries}


def test_only_what_a_persona_needs_covers_a_product_category() -> None:
    # An interest in estimating does not make estimating software something the persona needs.
    persona = _persona(
        "trade-owner",
        ["Owner", "President"],
        industries=["Construction"],
        employees={"min": 10, "max": 250},
        keywords=["crew timesheets", "daily reports", "job costing"],
        psychographic={"interests": ["Estimating software", "Growing the business"]},
    )
    result = Matcher([persona]).rank(
        DealQuery(
            text="Wants estimating software for quantity takeoff from drawings.",
            title="Owner",
            industry="Electrical contractor",
            employees=60,
        )
    )
    assert result.best is None
    assert "construction estimating and takeoff" in result.verdict


def test_property_management_software_is_its_own_category() -> None:
    facts = read_facts("needs property management software for rent collection")
    assert "property_management" in {m.id for m in facts.products}


def test_employee_owned_is_a_private_stage() -> None:
    assert read_facts("an employee-owned contractor").stage is not None


def test_a_persona_title_the_vocabulary_cannot_read_is_found_in_the_note() -> None:
    msp = _persona(
        "msp-service",
        ["Service Delivery Manager", "Managed Services Director"],
        industries=["IT services"],
        employees={"min": 10, "max": 400},
    )
    it = _persona("it-manager", ["IT Manager", "Head of IT"], employees={"min": 30, "max": 600})
    result = Matcher([msp, it]).rank(
        DealQuery(
            text="Service Delivery Manager at a 150-person courier company wants phishing "
            "tests for its dispatchers and office staff."
        )
    )
    assert result.facts.buyer is not None
    assert result.facts.buyer.text == "Service Delivery Manager"
    assert result.best is None  # a courier company is not an IT services firm


@pytest.mark.parametrize(
    ("text", "stage"),
    [
        ("a 3,000-employee public school district", None),
        ("runs on a private cloud for enterprise customers", None),
        ("a publicly listed retailer", "public"),
    ],
)
def test_one_word_stage_labels_are_everyday_words_in_a_note(text: str, stage: str | None) -> None:
    found = read_facts(text).stage
    assert (found.id if found else None) == stage


def test_office_staff_is_no_title() -> None:
    # At most the office function is implied; "staff" is no seniority on its own.
    buyer = read_facts("tests for its dispatchers and office staff").buyer
    assert buyer is None or (buyer.confidence < 0.9 and buyer.rank is None)


def test_a_poultry_processor_is_food_and_beverage() -> None:
    assert "food_beverage" in {m.id for m in read_facts("a poultry processor").industries}


def test_a_generic_title_partly_fits_a_persona_title_with_the_same_generic_word() -> None:
    vocab = load_vocabulary()
    buyer_title = read_title("Regional Operations Manager", vocab)
    persona_title = read_title("Operations Training Lead", vocab)
    assert buyer_title is not None and persona_title is not None
    buyer = title_sig(buyer_title.text, buyer_title.expanded, vocab, persona=False)
    persona = title_sig(persona_title.text, persona_title.expanded, vocab, persona=True)
    assert persona.primary == {"learning"} and persona.generic == {"operations"}
    assert title_fit(buyer, persona, vocab.function_similarity) == pytest.approx(0.6)
