"""The persona store on SQLite and PostgreSQL: migrations, revisions, imports, isolation."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from persona_store import migrate
from persona_store.db import create_db_engine
from persona_store.models import PersonaRevision
from persona_store.records import Firmographic, IntRange, PersonaSpec
from persona_store.store import PersonaNotFound, PersonaStore, StaleRevision
from tests.conftest import at


def spec(key: str = "finance-fiona", **changes: object) -> PersonaSpec:
    base = PersonaSpec(
        key=key,
        name=key.replace("-", " ").title(),
        role="VP Finance",
        summary="Owns budget approval.",
        firmographic=Firmographic(industries=("SaaS",), employees=IntRange(200, 2000)),
        goals=("Audit-ready numbers",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def store(db_url: str):  # type: ignore[no-untyped-def]
    engine = create_db_engine(db_url)
    migrate.upgrade(engine)
    yield PersonaStore(engine)
    engine.dispose()


def test_migrations_create_the_schema_and_report_it_current(db_url: str) -> None:
    engine = create_db_engine(db_url)
    assert migrate.current_revision(engine) is None
    assert not migrate.is_up_to_date(engine)
    migrate.upgrade(engine)
    assert migrate.is_up_to_date(engine)
    migrate.upgrade(engine)  # a second run is a no-op
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_every_change_writes_a_revision_with_the_changed_fields(store: PersonaStore) -> None:
    org = store.default_org()
    created = store.save_persona(org, spec(), "alice", now=at(2026, 1, 1))
    assert created.revision == 1
    updated = store.save_persona(
        org,
        spec(
            firmographic=Firmographic(industries=("SaaS", "Fintech"), employees=IntRange(250, 4000))
        ),
        "bob",
        now=at(2026, 2, 1),
    )
    assert updated.revision == 2
    assert updated.last_reviewed_at == at(2026, 2, 1)
    history = store.history(org, "finance-fiona")
    assert [r.number for r in history] == [2, 1]
    assert history[0].author == "bob"
    assert history[0].action == "updated"
    assert history[0].changes == {
        "firmographic.employees": [{"min": 200, "max": 2000}, {"min": 250, "max": 4000}],
        "firmographic.industries": [["SaaS"], ["SaaS", "Fintech"]],
    }
    assert history[1].action == "created"


def test_saving_identical_content_writes_nothing(store: PersonaStore) -> None:
    org = store.default_org()
    store.save_persona(org, spec(), "alice")
    again = store.save_persona(org, spec(), "alice")
    assert again.revision == 1
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(PersonaRevision)) == 1


def test_stale_editor_cannot_overwrite_a_newer_revision(store: PersonaStore) -> None:
    org = store.default_org()
    store.save_persona(org, spec(), "alice")
    store.save_persona(org, spec(summary="First edit"), "bob", expected_revision=1)
    with pytest.raises(StaleRevision) as err:
        store.save_persona(org, spec(summary="Second edit"), "carol", expected_revision=1)
    assert err.value.actual == 2
    assert store.get_persona(org, "finance-fiona").spec.summary == "First edit"  # type: ignore[union-attr]


def test_import_is_all_or_nothing(store: PersonaStore) -> None:
    org = store.default_org()
    store.save_persona(org, spec(), "alice")
    # The third item fails half-way through the import, after two rows were written.
    bad = [spec("new-one"), spec("finance-fiona", summary="changed"), None]
    with pytest.raises(AttributeError):
        store.import_personas(org, bad, "importer")  # type: ignore[list-item]
    assert [p.key for p in store.list_personas(org)] == ["finance-fiona"]
    assert store.get_persona(org, "finance-fiona").spec.summary == "Owns budget approval."  # type: ignore[union-attr]


def test_import_reports_created_updated_unchanged_and_replace_archives(
    store: PersonaStore,
) -> None:
    org = store.default_org()
    store.import_personas(org, [spec("a-one"), spec("b-two"), spec("c-three")], "importer")
    result = store.import_personas(
        org, [spec("a-one"), spec("b-two", summary="new"), spec("d-four")], "importer", replace=True
    )
    assert result.created == ("d-four",)
    assert result.updated == ("b-two",)
    assert result.unchanged == ("a-one",)
    assert result.archived == ("c-three",)
    assert [p.key for p in store.list_personas(org)] == ["a-one", "b-two", "d-four"]
    archived = store.get_persona(org, "c-three")
    assert archived is not None and archived.archived
    assert store.history(org, "c-three")[0].action == "archived"
    # importing it again brings it back, with a trace
    result = store.import_personas(org, [spec("c-three")], "importer")
    assert result.restored == ("c-three",)
    assert not store.get_persona(org, "c-three").archived  # type: ignore[union-attr]


def test_catalog_version_moves_on_every_change(store: PersonaStore) -> None:
    org = store.default_org()
    v0 = store.catalog_version(org)
    store.save_persona(org, spec(), "alice")
    v1 = store.catalog_version(org)
    store.mark_reviewed(org, "finance-fiona", "alice")
    v2 = store.catalog_version(org)
    store.save_persona(org, spec(), "alice")  # unchanged: no bump
    assert v0 < v1 < v2 == store.catalog_version(org)


def test_review_resets_the_due_date_and_is_recorded(store: PersonaStore) -> None:
    org = store.default_org()
    store.save_persona(org, spec(), "alice", now=at(2026, 1, 1))
    assert [p.key for p in store.overdue(org, now=at(2026, 4, 2))] == ["finance-fiona"]
    store.mark_reviewed(org, "finance-fiona", "owner", now=at(2026, 4, 2))
    assert store.overdue(org, now=at(2026, 4, 2) + timedelta(days=89)) == []
    assert store.history(org, "finance-fiona")[0].action == "reviewed"
    with pytest.raises(PersonaNotFound):
        store.mark_reviewed(org, "nobody", "owner")


def test_workspaces_map_to_isolated_organizations(store: PersonaStore) -> None:
    home = store.org_for_tenant("slack", "T_HOME", "Home", home=True)
    assert home == store.default_org()
    other = store.org_for_tenant("slack", "T_OTHER", "Other Inc")
    assert other != home
    assert store.org_for_tenant("slack", "T_OTHER") == other  # stable
    assert store.org_for_tenant("teams", "T_OTHER") not in (home, other)  # per platform
    store.save_persona(home, spec(), "alice")
    store.save_persona(other, spec(summary="Other company's Fiona"), "bob")
    assert store.get_persona(other, "finance-fiona").spec.summary == "Other company's Fiona"  # type: ignore[union-attr]
    assert store.get_persona(home, "finance-fiona").spec.summary == "Owns budget approval."  # type: ignore[union-attr]


def test_feedback_and_deal_links(store: PersonaStore) -> None:
    org = store.default_org()
    store.save_persona(org, spec(), "alice")
    store.add_feedback(org, "finance-fiona", platform="slack", user_id="U1", rating=5)
    store.link_deal(org, "D-1", "finance-fiona", source="fit", user_id="U1")
    store.link_deal(org, "D-1", "finance-fiona", source="confirmed", user_id="U1")  # idempotent
    from persona_store.models import DealPersona, Feedback

    with store.session() as s:
        assert s.scalars(select(Feedback.rating)).all() == [1]  # clamped
        links = s.scalars(select(DealPersona)).all()
        assert [(link.source) for link in links] == ["confirmed"]
