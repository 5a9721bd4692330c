"""The persona-bot command line, as operators and scripts use it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from persona_store.db import create_db_engine
from persona_store.store import PersonaStore

FIVE_ERRORS = """\
personas:
  - key: finance-fiona
    name: Finance Fiona
    role: VP Finance
    summary: Owns budget approval.
    firmografic: {industries: [SaaS]}
  - key: controller-carlos
    name: Controller Carlos
    summary: Closes the books.
  - key: procurement-paula
    name: Procurement Paula
    role: Head of Procurement
    summary: Buys things.
    goals: buy cheaper
  - key: it-ivan
    name: IT Ivan
    role: IT Director
    summary: Gates integrations.
    firmographic:
      employees: {min: 5000, max: 200}
  - key: finance-fiona
    name: Duplicate Fiona
    role: VP Finance
    summary: Again.
    photo_url: http://example.com/fiona.png
"""


def run(argv: list[str], db: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--db", db, *argv], environ={}, configure_logging=False)
    out, err = capsys.readouterr()
    return code, out, err


def personas_in(db: str) -> list[tuple[str, int]]:
    engine = create_db_engine(db)
    try:
        store = PersonaStore(engine)
        return [(p.key, p.revision) for p in store.list_personas(store.default_org())]
    finally:
        engine.dispose()


def test_invalid_file_reports_every_problem_with_its_line_and_changes_nothing(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "personas:\n  - {key: solo-sam, name: Solo Sam, role: Founder, summary: Does it all.}\n"
    )
    assert run(["import", str(good)], sqlite_url, capsys)[0] == 0
    before = personas_in(sqlite_url)

    bad = tmp_path / "bad.yaml"
    bad.write_text(FIVE_ERRORS)
    code, _out, err = run(["import", str(bad)], sqlite_url, capsys)
    assert code == 2
    problems = [line for line in err.splitlines() if line.startswith(f"{bad}:")]
    lines = [int(p.split(":")[1]) for p in problems if p.split(":")[1].isdigit()]
    assert lines == [6, 7, 14, 20, 21, 25], err
    assert "nothing was imported" in err
    assert personas_in(sqlite_url) == before


def test_import_export_round_trip(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = Path(__file__).parent / "data" / "personas_dev.yaml"
    code, out, _ = run(["import", str(sample)], sqlite_url, capsys)
    assert code == 0 and "4 created" in out
    for fmt in ("yaml", "json"):
        exported = tmp_path / f"export.{fmt}"
        assert run(["export", "--format", fmt, "-o", str(exported)], sqlite_url, capsys)[0] == 0
        code, out, _ = run(["import", str(exported)], sqlite_url, capsys)
        assert code == 0 and "4 unchanged" in out
    assert all(rev == 1 for _, rev in personas_in(sqlite_url))


def test_lookup_json_contract(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["lookup", "fiona", "--json"], sqlite_url, capsys)
    assert code == 0
    data = json.loads(out)
    assert data["match"] == "finance-fiona"
    assert data["persona"]["name"] == "Finance Fiona" and data["suggestions"] == []
    code, out, _ = run(["lookup", "zzzz", "--json"], sqlite_url, capsys)
    assert code == 1
    assert json.loads(out) == {"match": None, "persona": None, "suggestions": []}


def test_lookup_text_and_stats(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["lookup", "finanse", "fiona"], sqlite_url, capsys)
    assert code == 0 and "Finance Fiona" in out and "Pain points" in out
    code, out, _ = run(["stats", "--days", "7", "--json"], sqlite_url, capsys)
    assert code == 0
    stats = json.loads(out)
    assert stats["by_command"]["lookup"] == 1
    assert stats["days"] == 7
    assert stats["personas"][0]["key"] == "finance-fiona"
    assert stats["personas"][0]["lookups"] == 1


def test_migrate_reports_and_check(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["migrate", "--check"], sqlite_url, capsys)[0] == 1
    code, out, _ = run(["migrate"], sqlite_url, capsys)
    assert code == 0 and "migrated empty" in out
    code, out, _ = run(["migrate"], sqlite_url, capsys)
    assert "already up to date" in out
    assert run(["migrate", "--check"], sqlite_url, capsys)[0] == 0


def test_bad_settings_exit_2_with_the_reason(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["--db", sqlite_url, "stats"],
        environ={"PERSONA_BOT_TIMEZONE": "Mars/Olympus"},
        configure_logging=False,
    )
    assert code == 2
    assert "not a time zone" in capsys.readouterr().err


def test_unreachable_database_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--db", "postgresql://nobody:secret-pw@127.0.0.1:1/none", "stats"],
        environ={},
        configure_logging=False,
    )
    err = capsys.readouterr().err
    assert code == 1 and "cannot use the database" in err and "secret-pw" not in err


def test_org_option_imports_into_a_workspaces_own_organization(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_db_engine(sqlite_url)
    try:
        from persona_store import migrate

        migrate.upgrade(engine)
        store = PersonaStore(engine)
        store.default_org()
        other = store.org_for_tenant("slack", "T_OTHER", "Other Inc")
    finally:
        engine.dispose()
    code, out, _ = run(["orgs", "--json"], sqlite_url, capsys)
    slugs = {o["slug"]: o for o in json.loads(out)}
    assert code == 0 and slugs["slack-t-other"]["workspaces"] == ["slack:T_OTHER"]

    good = tmp_path / "good.yaml"
    good.write_text(
        "personas:\n  - {key: solo-sam, name: Solo Sam, role: Founder, summary: Does it all.}\n"
    )
    assert run(["--org", "slack-t-other", "import", str(good)], sqlite_url, capsys)[0] == 0
    engine = create_db_engine(sqlite_url)
    try:
        store = PersonaStore(engine)
        assert [p.key for p in store.list_personas(other)] == ["solo-sam"]
        assert [p.key for p in store.list_personas(store.default_org())] == []
    finally:
        engine.dispose()
    code, _, err = run(["--org", "nope", "export"], sqlite_url, capsys)
    assert code == 2 and "no organization 'nope'" in err and "slack-t-other" in err
