"""Stored Teams conversation references on SQLite and PostgreSQL: upserts that keep what was
learned, service URL moves, searches limited to one organization, uninstalls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from persona_store import migrate
from persona_store.db import create_db_engine
from persona_store.store import PersonaStore
from persona_store.teams_references import ReferenceRecord, TeamsReferenceStore
from tests.conftest import at

OLD_URL = "https://smba.trafficmanager.net/emea/"
NEW_URL = "https://smba.trafficmanager.net/amer/"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def orgs(engine: Engine) -> tuple[int, int]:
    store = PersonaStore(engine)
    return store.default_org(), store.org_for_tenant("teams", "tenant-b")


def record(org_id: int, **fields: object) -> ReferenceRecord:
    values: dict[str, object] = {
        "org_id": org_id,
        "tenant_id": "tenant-a",
        "conversation_id": "a:personal-ann",
        "conversation_type": "personal",
        "user_id": "29:ann",
        "service_url": OLD_URL,
        "reference": {"serviceUrl": OLD_URL, "conversation": {"id": "a:personal-ann"}},
        "aad_object_id": "aad-ann",
        "user_name": "Ann",
    }
    values.update(fields)
    return ReferenceRecord(**values)  # type: ignore[arg-type]


def test_save_is_an_upsert_that_keeps_a_learned_email(
    engine: Engine, orgs: tuple[int, int]
) -> None:
    store = TeamsReferenceStore(engine)
    org_a, _ = orgs
    store.save(record(org_a, email="Ann@Example.com"), at(2026, 11, 1))
    store.save(record(org_a, email=None, user_name="Ann E."), at(2026, 11, 2))
    assert store.count() == 1
    [found] = store.find_user(org_a, email="ann@example.com")
    assert (found.email, found.user_name, found.updated_at) == (
        "ann@example.com",
        "Ann E.",
        at(2026, 11, 2),
    )
    assert store.known_user("tenant-a", "29:ann") == found


def test_a_new_service_url_moves_the_whole_conversation(
    engine: Engine, orgs: tuple[int, int]
) -> None:
    store = TeamsReferenceStore(engine)
    org_a, _ = orgs
    channel = {"conversation_id": "19:c@thread.tacv2", "conversation_type": "channel"}
    store.save(record(org_a, **channel), at(2026, 11, 1))
    store.save(record(org_a, user_id="29:bo", aad_object_id="aad-bo", **channel), at(2026, 11, 1))
    store.save(
        record(org_a, service_url=NEW_URL, reference={"serviceUrl": NEW_URL}, **channel),
        at(2026, 11, 3),
    )
    [bo] = store.find_user(org_a, user_id="aad-bo")
    assert bo.service_url == NEW_URL and bo.reference["serviceUrl"] == NEW_URL


def test_searches_stay_in_their_organization(engine: Engine, orgs: tuple[int, int]) -> None:
    store = TeamsReferenceStore(engine)
    org_a, org_b = orgs
    store.save(record(org_a), at(2026, 11, 1))
    store.save(
        record(
            org_a,
            conversation_id="19:c@thread.tacv2",
            conversation_type="channel",
            channel_id="19:c@thread.tacv2",
        ),
        at(2026, 11, 2),
    )
    assert [r.conversation_type for r in store.find_user(org_a, user_id="aad-ann")] == [
        "channel",
        "personal",
    ]
    assert [r.conversation_id for r in store.find_user(org_a, user_id="29:ann")][-1] == (
        "a:personal-ann"
    )
    assert store.find_user(org_b, user_id="aad-ann") == []
    assert store.find_user(org_a) == []
    channel = store.find_channel(org_a, "19:c@thread.tacv2")
    assert channel is not None and channel.conversation_type == "channel"
    assert store.find_channel(org_b, "19:c@thread.tacv2") is None
    assert store.find_channel(org_a, "a:personal-ann") is None  # a chat is not a channel


def test_uninstall_forgets_the_conversation(engine: Engine, orgs: tuple[int, int]) -> None:
    store = TeamsReferenceStore(engine)
    org_a, _ = orgs
    store.save(record(org_a), at(2026, 11, 1))
    store.save(record(org_a, conversation_id="a:other"), at(2026, 11, 1))
    assert store.forget_conversation("tenant-a", "a:personal-ann") == 1
    assert [r.conversation_id for r in store.find_user(org_a, user_id="aad-ann")] == ["a:other"]
    assert store.count(org_a) == 1


def test_migration_0003_goes_down_and_up(engine: Engine) -> None:
    migrate.downgrade(engine, "0001")
    assert migrate.current_revision(engine) == "0001"
    migrate.upgrade(engine)
    assert migrate.is_up_to_date(engine)
