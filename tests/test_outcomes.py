"""Outcome correlation on a synthetic deal set whose win rates and intervals are known."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from persona_store import migrate
from persona_store.db import create_db_engine
from persona_store.deals import DealRow, save_deals
from persona_store.outcomes import MIN_CLOSED, outcome_report, wilson_interval
from persona_store.records import PersonaSpec
from persona_store.store import PersonaStore

NOW = datetime(2026, 6, 1, tzinfo=UTC)
Z = 1.959963984540054


def score_interval_by_search(won: int, n: int) -> tuple[float, float]:
    """The Wilson interval found independently: the proportions p the score test does not
    reject, |won/n - p| <= z * sqrt(p (1 - p) / n), located by bisection on each side."""
    observed = won / n

    def accepted(p: float) -> bool:
        return abs(observed - p) <= Z * math.sqrt(p * (1 - p) / n) + 1e-15

    def edge(inside: float, outside: float) -> float:
        for _ in range(200):
            middle = (inside + outside) / 2
            inside, outside = (middle, outside) if accepted(middle) else (inside, middle)
        return (inside + outside) / 2

    return edge(observed, 0.0), edge(observed, 1.0)


@pytest.mark.parametrize(("won", "n"), [(28, 40), (24, 60), (3, 6), (1, 2), (5, 5), (0, 10)])
def test_wilson_interval_matches_the_score_test(won: int, n: int) -> None:
    low, high = wilson_interval(won, n)
    expected_low, expected_high = score_interval_by_search(won, n)
    assert low == pytest.approx(expected_low, abs=1e-9)
    assert high == pytest.approx(expected_high, abs=1e-9)


def test_wilson_interval_known_values() -> None:
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_db_engine(db_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def test_synthetic_deals_give_the_expected_rates_intervals_and_warnings(engine: Engine) -> None:
    store = PersonaStore(engine)
    org = store.default_org()
    specs = [
        PersonaSpec.from_dict({"key": k, "name": n, "role": "Buyer", "summary": "S."})
        for k, n in (("alpha", "Alpha"), ("bravo", "Bravo"))
    ]
    store.import_personas(org, specs, "t")
    rows: list[DealRow] = []
    closed = NOW - timedelta(days=10)
    # 40 deals with Alpha (28 won, 1,000 each), 6 with Bravo (3 won, 3,000 each),
    # 60 with no persona (24 won, 2,000 each), 5 open and 4 closed before the period.
    for i in range(40):
        store.link_deal(org, f"A-{i}", "alpha", source="fit", user_id="U1")
        rows.append(DealRow(f"A-{i}", "won" if i < 28 else "lost", 1000.0, closed))
    for i in range(6):
        store.link_deal(org, f"B-{i}", "bravo", source="lookup", user_id="U1")
        rows.append(DealRow(f"B-{i}", "won" if i < 3 else "lost", 3000.0, closed))
    rows += [DealRow(f"N-{i}", "won" if i < 24 else "lost", 2000.0, closed) for i in range(60)]
    rows += [DealRow(f"O-{i}", "open") for i in range(5)]
    rows += [DealRow(f"OLD-{i}", "won", 1.0, NOW - timedelta(days=400)) for i in range(4)]
    save_deals(engine, org, rows)

    report = outcome_report(engine, org, NOW - timedelta(days=90), NOW)
    overall = report.overall
    assert (overall.used.won, overall.used.closed) == (31, 46)
    assert (overall.not_used.won, overall.not_used.closed) == (24, 60)
    assert overall.used.win_rate == pytest.approx(31 / 46)
    assert overall.not_used.win_rate == pytest.approx(0.4)
    assert overall.used.interval == pytest.approx(score_interval_by_search(31, 46), abs=1e-9)
    assert overall.not_used.interval == pytest.approx(score_interval_by_search(24, 60), abs=1e-9)
    assert overall.used.average_won_amount == pytest.approx((28 * 1000 + 3 * 3000) / 31)
    assert overall.not_used.average_won_amount == 2000.0
    assert overall.warning is None  # 67% [53-79] against 40% [29-53]: the intervals part
    assert report.open_deals == 5

    alpha, bravo = report.personas
    assert (alpha.key, alpha.used.won, alpha.used.closed) == ("alpha", 28, 40)
    assert alpha.used.win_rate == pytest.approx(0.7)
    assert alpha.used.interval == pytest.approx(score_interval_by_search(28, 40), abs=1e-9)
    assert alpha.not_used is not None and alpha.not_used.closed == 60
    assert alpha.warning is None
    assert (bravo.key, bravo.used.won, bravo.used.closed) == ("bravo", 3, 6)
    assert bravo.warning is not None and f"at least {MIN_CLOSED}" in bravo.warning
    assert "6 with and 60 without" in bravo.warning
    assert "Correlation, not causation" in report.caveat


def test_overlapping_intervals_are_called_chance(engine: Engine) -> None:
    store = PersonaStore(engine)
    org = store.default_org()
    store.import_personas(
        org,
        [PersonaSpec.from_dict({"key": "alpha", "name": "A", "role": "R", "summary": "S"})],
        "t",
    )
    rows = []
    for i in range(12):
        store.link_deal(org, f"A-{i}", "alpha", source="fit", user_id="U1")
        rows.append(DealRow(f"A-{i}", "won" if i < 6 else "lost", None, NOW - timedelta(days=1)))
    rows += [DealRow(f"N-{i}", "won" if i < 5 else "lost", None, NOW) for i in range(12)]
    save_deals(engine, org, rows, now=NOW)
    report = outcome_report(engine, org, NOW - timedelta(days=30), NOW + timedelta(seconds=1))
    assert (report.overall.used.closed, report.overall.not_used.closed) == (12, 12)
    assert report.overall.warning == "The 95% intervals overlap: the difference may be chance."
    assert report.overall.used.average_won_amount is None
