"""CRM exports: HubSpot, Salesforce and plain CSV, bad rows with their lines, all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from persona_store.db import create_db_engine
from persona_store.deals_import import (
    DealFileError,
    parse_amount,
    parse_date,
    read_deals,
    read_deals_text,
)
from persona_store.models import Deal

HUBSPOT = (
    "\ufeffRecord ID,Deal Name,Deal Stage,Amount,Close Date,Pipeline,Deal owner\n"
    "1042,Acme renewal,Closed Won,12000,2026-03-01 10:15,Sales Pipeline,Jo\n"
    '1043,"Globex, new logo",Closed Lost,"$8,500.50",2026-03-02,Sales Pipeline,Jo\n'
    "1044,Initech,Appointment Scheduled,,,Sales Pipeline,Jo\n"
    "1045,Hooli,closedwon,3000,03/15/2026,Sales Pipeline,Jo\n"
)
SALESFORCE = (
    "Opportunity ID;Opportunity Name;Stage;Amount;Close Date;Account Name\n"
    "006A000001;Umbrella;Closed Won;12.000,50 €;01.03.2026;Umbrella Corp\n"
    "006A000002;Wayne;Closed Lost;EUR 1.500;25/03/2026;Wayne Ent\n"
    "006A000003;Stark;Negotiation/Review;99,9;;Stark Ind\n"
)
PLAIN = (
    "deal_id,outcome,amount,closed_at\n"
    "D-1,won,1000,2026-02-01T09:00:00Z\n"
    "D-2,lost,,2026-02-02\n"
    "\n"
    "D-3,open,250.75,\n"
)
BAD = (
    "deal_id,outcome,amount,closed_at\n"
    "D-1,won,1000,2026-02-01\n"
    "D-2,maybe,1000,2026-02-01\n"
    ",won,1000,2026-02-01\n"
    "D-4,won,lots,2026-13-45\n"
    "D-1,lost,5,2026-02-01\n"
    "D-6,won,5,2026-02-01,extra\n"
)


def test_hubspot_export() -> None:
    layout, rows = read_deals_text(HUBSPOT)
    assert layout == "HubSpot"
    assert [(r.external_id, r.outcome, r.amount, r.name) for r in rows] == [
        ("1042", "won", 12000.0, "Acme renewal"),
        ("1043", "lost", 8500.5, "Globex, new logo"),
        ("1044", "open", None, "Initech"),
        ("1045", "won", 3000.0, "Hooli"),
    ]
    assert rows[0].closed_at == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    assert rows[3].closed_at == datetime(2026, 3, 15, tzinfo=UTC)


def test_salesforce_export_with_semicolons_and_european_numbers() -> None:
    layout, rows = read_deals_text(SALESFORCE)
    assert layout == "Salesforce"
    assert [(r.external_id, r.outcome, r.amount, r.closed_at) for r in rows] == [
        ("006A000001", "won", 12000.5, datetime(2026, 3, 1, tzinfo=UTC)),
        ("006A000002", "lost", 1500.0, datetime(2026, 3, 25, tzinfo=UTC)),
        ("006A000003", "open", 99.9, None),
    ]


def test_plain_export() -> None:
    layout, rows = read_deals_text(PLAIN)
    assert layout == "plain"
    assert [(r.external_id, r.outcome, r.amount) for r in rows] == [
        ("D-1", "won", 1000.0),
        ("D-2", "lost", None),
        ("D-3", "open", 250.75),
    ]
    assert rows[0].closed_at == datetime(2026, 2, 1, 9, tzinfo=UTC)


def test_every_bad_row_is_reported_with_its_line() -> None:
    with pytest.raises(DealFileError) as caught:
        read_deals_text(BAD)
    problems = [(p.line, p.message) for p in caught.value.problems]
    assert problems == [
        (3, "outcome must be won, lost or open, not 'maybe'"),
        (4, "the deal id column is empty"),
        (5, "amount 'lots' is not a number"),
        (5, "close date '2026-13-45' is not a date (use YYYY-MM-DD)"),
        (6, "deal D-1 is already on line 2"),
        (7, "5 fields but the header has 4 columns"),
    ]


def test_unknown_columns_name_the_expected_layouts() -> None:
    with pytest.raises(DealFileError) as caught:
        read_deals_text("id,result\n1,won\n")
    (problem,) = caught.value.problems
    assert problem.line == 1 and "unknown columns (id, result)" in problem.message
    assert "HubSpot (Record ID" in problem.message and "deal_id, outcome" in problem.message


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12000", 12000.0),
        ("$12,000", 12000.0),
        ("$12,000.50", 12000.5),
        ("USD 1,234,567.89", 1234567.89),
        ("12 000,50 €", 12000.5),
        ("1'250.00 CHF", 1250.0),
        ("12.5", 12.5),
        ("", None),
    ],
)
def test_amounts(text: str, value: float | None) -> None:
    assert parse_amount(text) == value


@pytest.mark.parametrize("text", ["lots", "-5", "12 apples", "1,2,3"])
def test_bad_amounts(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)


def test_dates() -> None:
    assert parse_date("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_date("2026/03/01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_date("03/01/2026") == datetime(2026, 3, 1, tzinfo=UTC)  # US month first
    assert parse_date("13/01/2026") == datetime(2026, 1, 13, tzinfo=UTC)
    assert parse_date("01.03.26") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_date("2026-03-01T10:00:00+02:00") == datetime(2026, 3, 1, 8, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_date("yesterday")


def test_windows_1252_files_are_read(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    path.write_bytes("deal_id,outcome,amount,closed_at\nD-1,won,€ 500,\n".encode("cp1252"))
    assert read_deals(path)[1][0].amount == 500.0


def deals_in(db: str) -> dict[str, tuple[str, float | None]]:
    engine = create_db_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Deal.external_id, Deal.outcome, Deal.amount)).all()
        return {r[0]: (r[1], r[2]) for r in rows}
    finally:
        engine.dispose()


def test_cli_imports_all_or_nothing(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD, encoding="utf-8")
    code = main(["--db", sqlite_url, "deals", "import", str(bad)], environ={})
    _, err = capsys.readouterr()
    assert code == 2
    assert f"{bad}:3: outcome must be won, lost or open, not 'maybe'" in err
    assert f"{bad}:7: 5 fields" in err and "6 problems; nothing was imported" in err
    assert main(["--db", sqlite_url, "migrate"], environ={}) == 0
    assert deals_in(sqlite_url) == {}

    good = tmp_path / "hubspot.csv"
    good.write_text(HUBSPOT, encoding="utf-8")
    code = main(["--db", sqlite_url, "deals", "import", str(good)], environ={})
    out, _ = capsys.readouterr()
    assert code == 0 and "HubSpot export, 4 deals (3 closed): 4 created" in out
    assert deals_in(sqlite_url)["1043"] == ("lost", 8500.5)
    # Importing again changes nothing; a newer export updates what moved.
    assert main(["--db", sqlite_url, "deals", "import", str(good)], environ={}) == 0
    assert "4 unchanged" in capsys.readouterr()[0]
    good.write_text(HUBSPOT.replace("Appointment Scheduled,,", "Closed Won,700,"), "utf-8")
    assert main(["--db", sqlite_url, "deals", "import", str(good)], environ={}) == 0
    assert "1 updated, 3 unchanged" in capsys.readouterr()[0]
    assert deals_in(sqlite_url)["1044"] == ("won", 700.0)
