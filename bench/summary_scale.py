"""How long the usage summary takes over a year of heavy use (not a test; run by hand).

Generates 1,000,000 usage events spread over 365 days (12 personas, 400 people, 3 platforms,
40 channels, about 6% of lookups and 30% of fits finding nothing) in a fresh SQLite file made
by the real migrations, then times ``summarize`` for the last 7, 30, 90 and 365 days (median
of a few runs each, data generation excluded) and prints the query plans, so that a plan that
stops using the covering index shows up here first.

    .venv/bin/python bench/summary_scale.py [--events N] [--runs R] [--db FILE] [--keep]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from persona_store import migrate
from persona_store.db import create_db_engine
from persona_store.records import PersonaSpec
from persona_store.store import PersonaStore
from persona_store.summary import summarize, to_ms

PERSONAS = 12
USERS = 400
CHANNELS = 40
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
COMMANDS = [("lookup", 70), ("fit", 15), ("list", 6), ("confirm", 3), ("feedback", 2),
            ("stats", 2), ("help", 2)]  # fmt: skip
MISSES = ["pirate", "pirat", "ceo of a bank", "hr director", "hr manager", "cto startup",
          "marketing ops", "head of marketing", "student", "nurse"]  # fmt: skip


def generate(path: Path, events: int, seed: int = 7) -> int:
    """Create the schema, personas and ``events`` usage rows; return the organization id."""
    engine = create_db_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    store = PersonaStore(engine)
    org = store.default_org()
    specs = [
        PersonaSpec.from_dict(
            {"key": f"persona-{i}", "name": f"Persona {i}", "role": "Buyer", "summary": "S."}
        )
        for i in range(PERSONAS)
    ]
    store.import_personas(org, specs, "bench")
    persona_ids = [p.id for p in store.list_personas(org)]
    engine.dispose()

    rng = random.Random(seed)
    commands = [c for c, w in COMMANDS for _ in range(w)]
    end_ms = to_ms(NOW)
    start_ms = end_ms - 365 * 86_400_000
    weights = [1 / (i + 1) for i in range(PERSONAS)]  # a few popular personas, a long tail
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")

    def rows(n: int):  # type: ignore[no-untyped-def]
        for _ in range(n):
            command = rng.choice(commands)
            persona = None
            matched = False
            query = None
            if command in ("lookup", "fit", "confirm", "feedback"):
                miss = rng.random() < (0.06 if command == "lookup" else 0.3)
                if command in ("lookup", "fit") and miss:
                    query = rng.choice(MISSES)
                else:
                    persona = rng.choices(persona_ids, weights)[0]
                    matched = True
                    query = f"persona {persona}"
            platform = rng.choice(("slack", "slack", "teams", "console"))
            yield (
                org,
                rng.randrange(start_ms, end_ms),
                platform,
                f"U{rng.randrange(USERS)}",
                f"C{rng.randrange(CHANNELS)}" if platform != "console" else "terminal",
                command,
                persona,
                query,
                matched,
                rng.random() * 100,
                rng.random() * 20,
            )

    batch = 100_000
    with conn:
        for done in range(0, events, batch):
            conn.executemany(
                "INSERT INTO usage_event (org_id, ts, platform, user_id, channel, command,"
                " persona_id, query, matched, score, latency_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows(min(batch, events - done)),
            )
    conn.close()
    return org


def plans(path: Path) -> list[str]:
    """The plan of each usage query of a 30-day summary, as SQLite explains it."""
    engine = create_db_engine(f"sqlite:///{path}")
    captured: list[str] = []
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "usage_event" in statement and not statement.lstrip().upper().startswith("EXPLAIN"):
            captured.append((statement, parameters))  # type: ignore[arg-type]

    summarize(engine, 1, NOW - timedelta(days=30), NOW, NOW)
    out = []
    raw = sqlite3.connect(path)
    for statement, parameters in captured:  # type: ignore[misc]
        detail = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)]
        first = " ".join(statement.split())[:90]
        out.append(f"{first}...\n    " + "\n    ".join(detail))
    raw.close()
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", type=Path, help="reuse or create this SQLite file")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    path = args.db or Path(tmp.name) / "summary-bench.db"
    if not path.exists():
        started = time.perf_counter()
        generate(path, args.events)
        took = time.perf_counter() - started
        size = path.stat().st_size / 1e6
        print(f"generated {args.events:,} events over 365 days in {took:.1f} s ({size:.0f} MB)")
    engine = create_db_engine(f"sqlite:///{path}")
    org = PersonaStore(engine).default_org()
    summarize(engine, org, NOW - timedelta(days=30), NOW, NOW)  # warm the page cache once
    print(f"SQLite {sqlite3.sqlite_version}; median of {args.runs} runs, data generation excluded")
    for days in (7, 30, 90, 365):
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            summary = summarize(engine, org, NOW - timedelta(days=days), NOW, NOW)
            times.append(time.perf_counter() - started)
        print(
            f"  summary of the last {days:>3} days: {statistics.median(times):.3f} s"
            f" (min {min(times):.3f}, max {max(times):.3f}; {summary.events:,} events,"
            f" {len(summary.gaps)} gap groups)"
        )
    engine.dispose()
    print("query plans (30-day summary):")
    for plan in plans(path):
        print("  " + plan)
    if not args.keep:
        tmp.cleanup()
    else:
        print(f"kept {path}")


if __name__ == "__main__":
    main()
