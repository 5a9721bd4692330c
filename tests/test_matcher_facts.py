"""Unit tests of the matcher's text readers: numbers, titles, industries, regions, cues."""

from __future__ import annotations

import pytest

from persona_store.matcher import load_vocabulary, read_facts, read_title


@pytest.mark.parametrize(
    ("text", "employees"),
    [
        ("Series B fintech, 2,500 staff, CFO worried about audit", 2500),
        ("~300 employees across two offices", 300),
        ("a 50-person team building payroll software", 50),
        ("12k employees worldwide", 12000),
        ("games publisher, 4.5k FTE, ~$2.1bn revenue", 4500),
        ("headcount north of 2,000 and growing", 2000),
        ("roughly two thousand employees", 2000),
        ("roughly twelve thousand employees", 12000),
        ("unos 5.000 empleados en España", 5000),
        ("environ 3 200 salariés", 3200),
        ("rund 450 Mitarbeitende in Hamburg", 450),
        ("SRE mgr at big ecom retailer (8k ppl)", 8000),
        ("~1.1k empl, 50+ k8s clusters", 1100),
        ("cto/cofndr, series A healthtech, 30ppl", 30),
        ("a team of ~20, about $1.5M ARR", 20),
        ("a solo founder: a team of one", 1),
        ("20,000 hourly workers across 600 locations", 20000),
        ("with a headcount of about three hundred", 300),
    ],
)
def test_reads_head_count(text: str, employees: int) -> None:
    facts = read_facts(text)
    assert facts.employees is not None
    assert facts.employees.value == employees


def test_head_count_range_keeps_both_ends() -> None:
    facts = read_facts("a logistics firm with 200-500 employees")
    assert facts.employees is not None
    assert (facts.employees.low, facts.employees.high) == (200, 500)
    assert 200 < facts.employees.value < 500


def test_company_size_beats_team_size() -> None:
    facts = read_facts(
        "Her platform team of eight supports every squad at a ~800-person SaaS company."
    )
    assert facts.employees is not None
    assert facts.employees.value == 800


@pytest.mark.parametrize(
    "text",
    [
        "They need this in the 2025 budget.",
        "Renewal is in Q3.",
        "P1 incidents take 3 hours to resolve.",
        "Checkout was down 40 minutes.",
        "The team took 600 pages last month.",
        "They must keep logs under a 7-year retention rule.",
        "Covers 14 schools and a nine-hospital network.",
    ],
)
def test_numbers_that_are_not_head_counts(text: str) -> None:
    assert read_facts(text).employees is None


@pytest.mark.parametrize(
    ("text", "revenue"),
    [
        ("late-stage SaaS, $40M ARR, ~350 employees", 40_000_000),
        ("revenue about 1.2B", 1_200_000_000),
        ("ARR of $800k", 800_000),
        ("doing mid-eight-figure ARR", 50_000_000),
        ("pre-revenue app: ARR $0, just closed a $4M seed", 0),
        ("about R$15M a year in revenue", 3_000_000),
        ("about three billion dollars in annual net patient revenue", 3_000_000_000),
        ("revenue somewhere around $700M", 700_000_000),
        ("€10m turnover", 11_000_000),
        ("$50k MRR", 600_000),
    ],
)
def test_reads_revenue(text: str, revenue: int) -> None:
    facts = read_facts(text)
    assert facts.revenue_usd is not None
    assert facts.revenue_usd.value == revenue


def test_money_that_is_not_revenue() -> None:
    facts = read_facts("The quote came back at $60k/yr and they just raised a $4M seed.")
    assert facts.revenue_usd is None


@pytest.mark.parametrize(
    ("title", "function", "rank"),
    [
        ("CISO", "security", 6),
        ("Deputy CISO", "security", 5),
        ("VP Eng", "engineering", 5),
        ("Head of Platform", "platform", 4),
        ("Hd of Platfrom Eng", "platform", 4),
        ("Chief Financial Officer", "finance", 6),
        ("SRE mgr", "sre", 3),
        ("Leiterin Kreditorenbuchhaltung", "finance", 4),
        ("Responsable sécurité", "security", 3),
        ("Jefa de Fiabilidad y Guardias", "sre", 4),
        ("Bereichsleiterin Cloud-Plattform", "platform", 4),
        ("Cofundador e diretor de tecnologia", "engineering", 6),
        ("Responsable de la paie", "payroll", 3),
        ("Instandhaltungsleiter", "maintenance", 4),
        ("Directora de Operaciones", "operations", 4),
        ("HR Director", "hr", 4),
        ("Facilities Manager", "facilities", 3),
        ("Money Laundering Reporting Officer", "compliance", 1),
        ("QA Manager", "quality", 3),
        ("Runs infra (employee #2)", "platform", 3),
    ],
)
def test_title_function_and_seniority(title: str, function: str, rank: int) -> None:
    parsed = read_title(title)
    assert parsed is not None
    assert function in parsed.functions
    assert parsed.rank == rank


def test_quality_engineer_is_quality_not_software() -> None:
    parsed = read_title("Quality Engineer")
    assert parsed is not None
    assert parsed.functions == ("quality",)


def test_platform_owner_is_not_a_business_owner() -> None:
    parsed = read_title("Kubernetes platform owner")
    assert parsed is not None
    assert parsed.functions == ("platform",)
    assert parsed.rank == 3


@pytest.mark.parametrize(
    ("text", "function"),
    [
        (
            "Intro call with the person who owns our Kubernetes platform at a marketplace",
            "platform",
        ),
        ("Spoke to the person who runs the pager rotation for a hotel group", "sre"),
        ("Call with the person who signs off every payroll run at a consultancy", "payroll"),
        ("the engineer who keeps the PLCs and SCADA running at an operator", "automation"),
    ],
)
def test_paraphrased_titles(text: str, function: str) -> None:
    buyer = read_facts(text).buyer
    assert buyer is not None
    assert function in buyer.functions


def test_buyer_is_the_first_title_not_a_later_one() -> None:
    facts = read_facts("VP Infrastructure at a late-stage SaaS. The new CFO wants spend down.")
    assert facts.buyer is not None
    assert facts.buyer.functions == ("platform",)
    assert [t.text for t in facts.titles] == ["VP Infrastructure", "CFO"]


@pytest.mark.parametrize(
    ("text", "industry"),
    [
        ("a Series A fin-tech", "fintech"),
        ("a mid-size European bank", "banking"),
        ("a 12-hospital health system", "healthcare_providers"),
        ("big ecom retailer", "ecommerce"),
        ("a UK retail bank", "banking"),
        ("Softwarehaus in Hamburg", "software"),
        ("in einem Stahlwerk", "metals"),
        ("a mobile operator", "telecom"),
        ("a regional health insurer", "health_insurance"),
    ],
)
def test_industries_and_synonyms(text: str, industry: str) -> None:
    assert read_facts(text).industries[0].id == industry


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("a German regional bank", "europe"),
        ("an adtech company in Berlin", "europe"),
        ("staff across the US", "north_america"),
        ("a São Paulo fintech", "latin_america"),
        ("a Dublin insurer", "uk_ireland"),
        ("a Swedish retailer", "nordics"),
    ],
)
def test_regions(text: str, region: str) -> None:
    """A country is read as its own region, which lies inside the continent it belongs to."""
    vocab = load_vocabulary()
    found = {m.id for m in read_facts(text).regions}
    assert any(r in vocab.region_includes[region] for r in found), found


def test_a_country_is_not_in_a_neighbouring_sub_region() -> None:
    vocab = load_vocabulary()
    (german,) = read_facts("a German regional bank").regions
    assert german.id == "dach"
    assert "dach" in vocab.region_includes["europe"]
    assert "dach" in vocab.region_includes["emea"]  # through Europe
    assert "dach" not in vocab.region_includes["uk_ireland"]


def test_lower_case_us_is_a_pronoun() -> None:
    assert read_facts("they asked us for a demo").regions == ()


@pytest.mark.parametrize(
    ("text", "stage"),
    [
        ("a seed-stage AI company", "seed"),
        ("Series D developer-tools company", "series_d"),
        ("an adtech company that IPO'd last year", "recently_public"),
        ("a PE-backed healthtech", "private_equity"),
        ("publicly listed retailer", "public"),
    ],
)
def test_stages(text: str, stage: str) -> None:
    facts = read_facts(text)
    assert facts.stage is not None
    assert facts.stage.id == stage


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Comp-sci student needs a free license for a class project.", "student"),
        ("He is applying for our Staff SRE opening.", "job_applicant"),
        ("a competitive-intelligence analyst at a rival APM vendor", "competitor"),
        ("wants reseller margins and a partner certification", "partner"),
        ("wants to become a supplier and sell us components", "supplier"),
        ("Homeowner wants cameras for personal use", "consumer"),
    ],
)
def test_non_buyer_cues(text: str, kind: str) -> None:
    assert kind in {m.id for m in read_facts(text).non_buyer}


@pytest.mark.parametrize(
    "text",
    [
        "A bank partner's due diligence found card numbers in their logs.",
        "They just acquired a competitor and run two HR systems.",
        "The engineer who runs infra is employee #2.",
        "30,000 students use the platform.",
    ],
)
def test_buyers_are_not_mistaken_for_non_buyers(text: str) -> None:
    assert read_facts(text).non_buyer == ()


def test_product_categories_are_read() -> None:
    facts = read_facts("wants security cameras and alarm monitoring for the shop")
    assert "video_surveillance" in {m.id for m in facts.products}


def test_facts_keep_their_source_text() -> None:
    facts = read_facts("Deputy CISO at a payments company, headcount north of 2,000.")
    assert facts.employees is not None and "north of 2,000" in facts.employees.source
    assert facts.buyer is not None and facts.buyer.text == "Deputy CISO"
