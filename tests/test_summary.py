"""The usage summary on a generated history whose answers are known, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine

from persona_store import migrate
from persona_store.db import create_db_engine
from persona_store.deals import DealRow, save_deals
from persona_store.models import Feedback
from persona_store.outcomes import wilson_interval
from persona_store.records import PersonaSpec
from persona_store.store import PersonaStore
from persona_store.summary import group_gaps, summarize, summarize_days, to_ms
from persona_store.usage import UsageRecord, purge_usage, usage_events_page, write_usage

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)  # a Sunday
START = NOW - timedelta(days=14)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_db_engine(db_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def spec(key: str) -> PersonaSpec:
    return PersonaSpec.from_dict(
        {"key": key, "name": key.title(), "role": "Buyer", "summary": "Buys."}
    )


def ev(
    org: int,
    when: datetime,
    user: str,
    command: str,
    persona: int | None = None,
    *,
    query: str | None = None,
    platform: str = "slack",
    channel: str | None = "C1",
    matched: bool | None = None,
) -> UsageRecord:
    return UsageRecord(
        org_id=org,
        ts=to_ms(when),
        platform=platform,
        user_id=user,
        command=command,
        channel=channel,
        persona_id=persona,
        query=query,
        matched=persona is not None if matched is None else matched,
    )


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


def build_history(engine: Engine) -> dict[str, int]:
    """Five personas (one archived), five people, another organization; see the asserts."""
    store = PersonaStore(engine)
    org = store.default_org()
    store.import_personas(org, [spec("alpha")], "t", now=days_ago(100))  # review overdue
    store.import_personas(
        org, [spec("bravo"), spec("charlie"), spec("echo")], "t", now=days_ago(10)
    )
    store.import_personas(org, [spec("delta")], "t", now=days_ago(10))
    store.archive_persona(org, "delta", "t", now=days_ago(9))
    ids = {p.key: p.id for p in store.list_personas(org, include_archived=True)}
    a, b, c = ids["alpha"], ids["bravo"], ids["charlie"]
    other = store.org_for_tenant("slack", "T_OTHER")
    store.import_personas(other, [spec("alpha")], "t", now=days_ago(10))
    other_alpha = store.list_personas(other)[0].id

    events = [
        # Alice: three lookups of alpha last week, a fit for alpha the week before.
        ev(org, days_ago(1), "U1", "lookup", a),
        ev(org, days_ago(2), "U1", "lookup", a),
        ev(org, days_ago(3), "U1", "lookup", a),
        ev(org, days_ago(8), "U1", "fit", a, query="D-1: fintech CFO"),
        # Bob, on Teams: alpha once, bravo twice.
        ev(org, days_ago(10), "U2", "lookup", a, platform="teams", channel="C2"),
        ev(org, days_ago(9), "U2", "lookup", b, platform="teams", channel="C2"),
        ev(org, days_ago(9), "U2", "lookup", b, platform="teams", channel="C2"),
        # Carol uses the bot but no persona.
        ev(org, days_ago(5), "U3", "list"),
        ev(org, days_ago(5), "U3", "help"),
        # Dan searches for what does not exist.
        ev(org, days_ago(4), "U4", "lookup", query="pirate", channel="C3"),
        ev(org, days_ago(4), "U4", "lookup", query="Pirate", channel="C3"),
        ev(org, days_ago(4), "U4", "lookup", query="pirat", channel="C3"),
        ev(org, days_ago(4), "U4", "lookup", query="hr director", channel="C3"),
        ev(org, days_ago(4), "U4", "fit", query="D-9: HR director, startup", channel="C3"),
        # Eve looks charlie up at the very start of the period (included), without a channel.
        ev(org, START, "U5", "lookup", c, channel=None),
        # At the very end of the period: excluded.
        ev(org, NOW, "U6", "lookup", a),
        # The previous period: alpha twice, bravo four times.
        *[ev(org, days_ago(20), "U1", "lookup", a) for _ in range(2)],
        *[ev(org, days_ago(27), "U1", "lookup", b) for _ in range(4)],
        ev(org, days_ago(40), "U1", "lookup", a),  # older still
        # Another organization's events never show.
        *[ev(other, days_ago(2), "U1", "lookup", other_alpha) for _ in range(5)],
        ev(other, days_ago(2), "U9", "lookup", query="pirate"),
    ]
    write_usage(engine, events)

    store.add_feedback(org, "alpha", platform="slack", user_id="U1", rating=1)
    store.add_feedback(org, "alpha", platform="slack", user_id="U2", rating=1)
    store.add_feedback(org, "alpha", platform="slack", user_id="U3", rating=-1)
    store.add_feedback(org, "alpha", platform="slack", user_id="U1", comment="older comment")
    store.add_feedback(org, "alpha", platform="teams", user_id="U2", comment="too US-centric")
    store.add_feedback(org, "bravo", platform="slack", user_id="U2", rating=-1)
    store.add_feedback(org, "bravo", platform="slack", user_id="U2", comment="old news")
    store.add_feedback(other, "alpha", platform="slack", user_id="U1", comment="other org")
    with store.session() as s, s.begin():  # feedback times are set explicitly
        rows = list(s.query(Feedback).order_by(Feedback.id))
        for row, when in zip(rows, [3, 3, 3, 6, 2, 4, 30, 2], strict=True):
            row.created_at = days_ago(when)

    store.link_deal(org, "D-1", "alpha", source="fit", user_id="U1")
    store.link_deal(org, "D-2", "bravo", source="lookup", user_id="U2")
    save_deals(
        engine,
        org,
        [
            DealRow("D-1", "won", 1000.0, days_ago(2)),
            DealRow("D-2", "lost", 400.0, days_ago(2)),
            DealRow("D-3", "won", 500.0, days_ago(3)),
            DealRow("D-4", "lost", None, days_ago(3)),
            DealRow("D-5", "won", 900.0, days_ago(60)),  # closed before the period
            DealRow("D-6", "open", 100.0),
        ],
    )
    return {"org": org, "other": other, **ids}


def test_summary_gives_the_known_answers(engine: Engine) -> None:
    ids = build_history(engine)
    summary = summarize(engine, ids["org"], START, NOW, NOW)

    assert summary.days == 14
    per = {p.key: p for p in summary.personas}
    assert [p.key for p in summary.personas] == ["alpha", "bravo", "charlie"]
    alpha, bravo, charlie = per["alpha"], per["bravo"], per["charlie"]
    assert (alpha.lookups, alpha.fits, alpha.users, alpha.previous_lookups) == (4, 1, 2, 2)
    assert alpha.trend == 100.0
    assert (bravo.lookups, bravo.fits, bravo.users, bravo.previous_lookups) == (2, 0, 1, 4)
    assert bravo.trend == -50.0
    assert (charlie.lookups, charlie.users, charlie.trend) == (1, 1, None)
    assert [p.key for p in summary.unused] == ["echo"]  # delta is archived

    assert summary.by_command == {"lookup": 11, "fit": 2, "help": 1, "list": 1}
    assert summary.events == 15 and summary.previous_events == 6
    assert (summary.users, summary.persona_users) == (5, 3)
    assert summary.adoption == pytest.approx(0.6)

    assert [(s.platform, s.events, s.users) for s in summary.platforms] == [
        ("slack", 12, 4),
        ("teams", 3, 1),
    ]
    assert [(s.platform, s.channel, s.events) for s in summary.channels] == [
        ("slack", "C1", 6),
        ("slack", "C3", 5),
        ("teams", "C2", 3),
    ]

    assert (summary.unmatched_searches, summary.unmatched_fits) == (4, 1)
    assert [(g.kind, g.text, g.count) for g in summary.gaps] == [
        ("search", "pirate", 3),
        ("fit", "hr director startup", 1),
        ("search", "hr director", 1),
    ]
    assert set(summary.gaps[0].variants) == {"pirate", "pirat"}

    feedback = {f.key: f for f in summary.feedback}
    assert (feedback["alpha"].up, feedback["alpha"].down, feedback["alpha"].score) == (2, 1, 1)
    assert [c.text for c in feedback["alpha"].latest] == ["too US-centric", "older comment"]
    assert (feedback["bravo"].down, feedback["bravo"].comments) == (1, 0)  # old news is old

    assert [(r.key, r.overdue_days) for r in summary.overdue] == [("alpha", 10)]

    assert [(w.start, w.lookups, w.users, w.persona_users) for w in summary.weeks] == [
        (date(2026, 2, 9), {"charlie": 1}, 1, 1),
        (date(2026, 2, 16), {"alpha": 1, "bravo": 2}, 2, 2),
        (date(2026, 2, 23), {"alpha": 3}, 3, 1),
    ]

    overall = summary.outcomes.overall
    assert (overall.used.won, overall.used.closed) == (1, 2)
    assert (overall.not_used.won, overall.not_used.closed) == (1, 2)
    assert overall.used.average_won_amount == 1000.0
    assert overall.used.interval == pytest.approx(wilson_interval(1, 2))
    assert overall.warning is not None and "Too few closed deals" in overall.warning
    assert [(c.key, c.used.won, c.used.closed) for c in summary.outcomes.personas] == [
        ("alpha", 1, 1),
        ("bravo", 0, 1),
    ]
    assert summary.outcomes.open_deals == 1

    as_json = json.loads(json.dumps(summary.to_json()))
    assert as_json["adoption"] == pytest.approx(0.6)
    assert as_json["knowledge_gaps"]["groups"][0]["text"] == "pirate"
    assert as_json["reviews_overdue"][0]["key"] == "alpha"


def test_the_other_organization_sees_only_its_own(engine: Engine) -> None:
    ids = build_history(engine)
    other = summarize(engine, ids["other"], START, NOW, NOW)
    assert [(p.key, p.lookups) for p in other.personas] == [("alpha", 5)]
    assert other.users == 2 and other.unmatched_searches == 1
    assert [c.text for f in other.feedback for c in f.latest] == ["other org"]
    assert other.outcomes.overall.used.closed == 0 == other.outcomes.overall.not_used.closed


def test_summarize_days_includes_this_millisecond(engine: Engine) -> None:
    org = PersonaStore(engine).default_org()
    write_usage(engine, [ev(org, NOW, "U1", "list")])
    assert summarize_days(engine, org, 7, NOW).events == 1


def test_purge_deletes_only_old_events_in_batches(engine: Engine) -> None:
    org = PersonaStore(engine).default_org()
    old = [ev(org, days_ago(800 + i), "U1", "list") for i in range(7)]
    write_usage(engine, [*old, ev(org, days_ago(10), "U1", "list")])
    assert purge_usage(engine, to_ms(days_ago(730)), batch=3) == 7
    rows = usage_events_page(engine, org, 0, to_ms(NOW) + 1, None, 100)
    assert len(rows) == 1 and purge_usage(engine, to_ms(days_ago(730))) == 0


def test_events_page_walks_every_event_once_in_order(engine: Engine) -> None:
    org = PersonaStore(engine).default_org()
    # Several events in the same millisecond: paging must neither skip nor repeat them.
    write_usage(engine, [ev(org, days_ago(1 + i // 3), f"U{i}", "list") for i in range(10)])
    seen: list[str] = []
    after = None
    while True:
        page = usage_events_page(engine, org, 0, to_ms(NOW), after, 4)
        seen += [row[2] for row in page]
        if len(page) < 4:
            break
        after = (page[-1][0], page[-1][-1])
    assert sorted(seen) == sorted(f"U{i}" for i in range(10)) and len(seen) == 10


def test_gap_grouping_is_bounded_and_groups_similar_wording() -> None:
    rows = [("search", f"unique text number {i}", 1) for i in range(2000)]
    rows.append(("search", "Head of HR", 50))
    rows.append(("search", "head of hr!", 5))
    gaps = group_gaps(rows, limit=3, max_texts=100)
    assert ("search", "head of hr", 55) in [(g.kind, g.text, g.count) for g in gaps]
    assert len(gaps) <= 3
    assert sum(g.count for g in gaps) <= 55 + 98  # only the 100 most frequent texts count
