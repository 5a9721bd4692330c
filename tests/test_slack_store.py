"""Migration 0002 on SQLite and PostgreSQL: slack_sdk's stores work on the tables it creates
(and on no others), and event ids are claimed exactly once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Engine, inspect

from persona_store import deliveries, migrate
from persona_store.db import create_db_engine
from persona_store.models import utcnow


@pytest.fixture
def engine(db_url: str):  # type: ignore[no-untyped-def]
    engine = create_db_engine(db_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def test_the_migrated_tables_are_the_ones_slack_sdk_expects(engine: Engine) -> None:
    expected = {
        **{t.name: t for t in SQLAlchemyInstallationStore("c", engine).metadata.sorted_tables},
        **{t.name: t for t in SQLAlchemyOAuthStateStore(60, engine).metadata.sorted_tables},
    }
    inspector = inspect(engine)
    for name, table in expected.items():
        actual = {c["name"]: c for c in inspector.get_columns(name)}
        assert list(actual) == [c.name for c in table.columns], name
        for column in table.columns:
            got = actual[column.name]
            assert got["nullable"] == column.nullable or column.primary_key, (name, column.name)
            assert type(got["type"]).__name__.upper() in {
                type(column.type).__name__.upper(),
                {"Integer": "INTEGER", "String": "VARCHAR", "DateTime": "TIMESTAMP",
                 "Boolean": "BOOLEAN"}.get(type(column.type).__name__, "?"),
                "DATETIME",
            }, (name, column.name, got["type"])  # fmt: skip
            length = getattr(column.type, "length", None)
            if length:
                assert got["type"].length == length, (name, column.name)


def test_slack_sdk_stores_round_trip_on_the_migrated_schema(engine: Engine) -> None:
    store = SQLAlchemyInstallationStore("1111.2222", engine)
    store.save(
        Installation(
            app_id="A1",
            team_id="T1",
            team_name="Acme",
            bot_token="xoxb-1",
            bot_id="B1",
            bot_user_id="UBOT",
            bot_scopes="commands,chat:write",
            user_id="U1",
        )
    )
    bot = store.find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None and bot.bot_token == "xoxb-1"
    store.delete_bot(enterprise_id=None, team_id="T1")
    store.delete_installation(enterprise_id=None, team_id="T1")
    assert store.find_bot(enterprise_id=None, team_id="T1") is None
    states = SQLAlchemyOAuthStateStore(60, engine)
    state = states.issue()
    assert states.consume(state) and not states.consume(state)


def test_each_event_id_is_claimed_once_even_concurrently(engine: Engine) -> None:
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(lambda _: deliveries.claim(engine, "slack", "Ev1"), range(16)))
    assert wins.count(True) == 1
    assert deliveries.claim(engine, "teams", "Ev1")  # ids are per platform
    assert deliveries.prune(engine, now=utcnow() + timedelta(hours=1)) == 0
    assert deliveries.prune(engine, now=utcnow() + timedelta(days=2)) == 2
    assert deliveries.claim(engine, "slack", "Ev1")


def test_downgrade_removes_the_slack_tables(engine: Engine) -> None:
    migrate.downgrade(engine, "0001")
    names = set(inspect(engine).get_table_names())
    assert not names & {
        "slack_installations",
        "slack_bots",
        "slack_oauth_states",
        "delivered_event",
    }
    migrate.upgrade(engine)
    assert "delivered_event" in inspect(engine).get_table_names()
