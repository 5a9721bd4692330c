"""The persona store: organizations, personas with full revision history, feedback and deals.

All methods are synchronous and short; the web process calls them from a worker thread.
Every change to a persona writes a ``persona_revision`` row (who, when, which fields, the
full result) and bumps the organization's ``catalog_version`` so that caches everywhere
notice. Nothing is deleted: ``--replace`` imports and ``archive`` only hide personas.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from persona_store.db import session_factory
from persona_store.models import (
    Deal,
    DealPersona,
    Feedback,
    Organization,
    Persona,
    PersonaRevision,
    PlatformTenant,
    utcnow,
)
from persona_store.records import (
    FIELD_ORDER,
    SECTION_TYPES,
    PersonaSpec,
    StoredPersona,
)

DEFAULT_ORG_SLUG = "default"


class StoreError(Exception):
    """A request the store cannot carry out, with a message meant for people."""


class PersonaNotFound(StoreError):
    pass


class StaleRevision(StoreError):
    """The persona changed since the editor read it (optimistic locking)."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(
            f"persona '{key}' changed since you opened it (revision {expected}, now {actual})"
        )
        self.key, self.expected, self.actual = key, expected, actual


@dataclass(frozen=True)
class Revision:
    """One entry of a persona's history."""

    number: int
    author: str
    action: str
    created_at: datetime
    changes: dict[str, list[Any]]
    note: str | None = None


@dataclass(frozen=True)
class ImportResult:
    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    archived: tuple[str, ...] = ()
    restored: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.archived or self.restored)


def spec_from_row(row: Persona) -> PersonaSpec:
    return PersonaSpec.from_dict(
        {
            "key": row.key,
            "name": row.name,
            "role": row.role,
            "summary": row.summary,
            "background": row.background,
            "photo_url": row.photo_url,
            "owner": row.owner,
            "review_every_days": row.review_every_days,
            "demographic": row.demographic,
            "firmographic": row.firmographic,
            "behavioral": row.behavioral,
            "psychographic": row.psychographic,
            "goals": row.goals,
            "pain_points": row.pain_points,
            "objections": row.objections,
            "keywords": row.keywords,
        }
    )


def record_from_row(row: Persona) -> StoredPersona:
    return StoredPersona(
        id=row.id,
        org_id=row.org_id,
        spec=spec_from_row(row),
        revision=row.revision,
        last_reviewed_at=row.last_reviewed_at,
        archived=row.archived,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _apply_spec(row: Persona, spec: PersonaSpec) -> None:
    row.key = spec.key
    row.name = spec.name
    row.role = spec.role
    row.summary = spec.summary
    row.background = spec.background
    row.photo_url = spec.photo_url
    row.owner = spec.owner
    row.review_every_days = spec.review_every_days
    for name in SECTION_TYPES:
        setattr(row, name, getattr(spec, name).to_dict())
    row.goals = list(spec.goals)
    row.pain_points = list(spec.pain_points)
    row.objections = list(spec.objections)
    row.keywords = list(spec.keywords)


def diff_specs(old: PersonaSpec | None, new: PersonaSpec) -> dict[str, list[Any]]:
    """Field-by-field changes as ``{"firmographic.employees": [old, new], ...}``."""
    before = old.to_dict() if old else {}
    after = new.to_dict()
    changes: dict[str, list[Any]] = {}
    for name in FIELD_ORDER:
        if name in SECTION_TYPES:
            old_section = before.get(name, {})
            new_section = after.get(name, {})
            for sub in sorted(set(old_section) | set(new_section)):
                if old_section.get(sub) != new_section.get(sub):
                    changes[f"{name}.{sub}"] = [old_section.get(sub), new_section.get(sub)]
        elif before.get(name) != after.get(name):
            changes[name] = [before.get(name), after.get(name)]
    return changes


def _slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:48] or "org"


class PersonaStore:
    """Synchronous access to everything persona-bot keeps about personas."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)

    def session(self) -> Session:
        return self._sessions()

    # organizations -------------------------------------------------------------------

    def default_org(self, name: str = "My company") -> int:
        """The organization of a single-company install, created on first use."""
        return self._org_by_slug(DEFAULT_ORG_SLUG, name)

    def _org_by_slug(self, slug: str, name: str) -> int:
        with self._sessions() as s:
            org_id = s.scalar(select(Organization.id).where(Organization.slug == slug))
            if org_id is not None:
                return org_id
        try:
            with self._sessions.begin() as s:
                org = Organization(slug=slug, name=name)
                s.add(org)
                s.flush()
                return org.id
        except IntegrityError:  # another process created it first
            with self._sessions() as s:
                return s.scalars(select(Organization.id).where(Organization.slug == slug)).one()

    def org_for_tenant(
        self, platform: str, external_id: str, name: str | None = None, *, home: bool = False
    ) -> int:
        """The organization of a Slack workspace or Teams tenant, linking it on first sight.

        ``home`` tenants (the workspace of a single-workspace install, the configured Teams
        tenant) share the default organization; any other gets an organization of its own.
        """
        with self._sessions() as s:
            org_id = s.scalar(
                select(PlatformTenant.org_id).where(
                    PlatformTenant.platform == platform, PlatformTenant.external_id == external_id
                )
            )
            if org_id is not None:
                return org_id
        if home:
            org_id = self.default_org()
        else:
            org_id = self._org_by_slug(
                f"{platform}-{_slugify(external_id)}", name or f"{platform} {external_id}"
            )
        try:
            with self._sessions.begin() as s:
                s.add(
                    PlatformTenant(
                        platform=platform, external_id=external_id, org_id=org_id, name=name
                    )
                )
        except IntegrityError:
            with self._sessions() as s:
                return s.scalars(
                    select(PlatformTenant.org_id).where(
                        PlatformTenant.platform == platform,
                        PlatformTenant.external_id == external_id,
                    )
                ).one()
        return org_id

    def org_by_slug(self, slug: str) -> int | None:
        with self._sessions() as s:
            return s.scalar(select(Organization.id).where(Organization.slug == slug))

    def list_orgs(self) -> list[dict[str, Any]]:
        """Every organization with its workspaces/tenants and how many personas it has."""
        with self._sessions() as s:
            orgs = s.execute(select(Organization).order_by(Organization.id)).scalars().all()
            tenants = s.execute(select(PlatformTenant)).scalars().all()
            counts = dict(
                s.execute(
                    select(Persona.org_id, func.count())
                    .where(Persona.archived.is_(False))
                    .group_by(Persona.org_id)
                ).all()
            )
            return [
                {
                    "slug": org.slug,
                    "name": org.name,
                    "personas": int(counts.get(org.id, 0)),
                    "workspaces": sorted(
                        f"{t.platform}:{t.external_id}" for t in tenants if t.org_id == org.id
                    ),
                }
                for org in orgs
            ]

    def org_name(self, org_id: int) -> str:
        with self._sessions() as s:
            return s.scalars(select(Organization.name).where(Organization.id == org_id)).one()

    def catalog_version(self, org_id: int) -> int:
        with self._sessions() as s:
            return s.scalars(
                select(Organization.catalog_version).where(Organization.id == org_id)
            ).one()

    @staticmethod
    def _bump_catalog(s: Session, org_id: int) -> None:
        s.execute(
            update(Organization)
            .where(Organization.id == org_id)
            .values(catalog_version=Organization.catalog_version + 1)
        )

    # personas ------------------------------------------------------------------------

    def list_personas(self, org_id: int, *, include_archived: bool = False) -> list[StoredPersona]:
        with self._sessions() as s:
            query = select(Persona).where(Persona.org_id == org_id)
            if not include_archived:
                query = query.where(Persona.archived.is_(False))
            return [record_from_row(r) for r in s.scalars(query.order_by(Persona.name))]

    def count_personas(self, org_id: int) -> int:
        with self._sessions() as s:
            return (
                s.scalar(select(func.count()).select_from(Persona).where(Persona.org_id == org_id))
                or 0
            )

    def get_persona(self, org_id: int, key: str) -> StoredPersona | None:
        with self._sessions() as s:
            row = self._row(s, org_id, key)
            return record_from_row(row) if row else None

    @staticmethod
    def _row(s: Session, org_id: int, key: str, *, lock: bool = False) -> Persona | None:
        """The persona's row; ``lock`` (for writes) makes a concurrent writer of the same
        persona wait and then read the new revision, so it sees StaleRevision instead of
        colliding on the revision number (PostgreSQL; SQLite writes one at a time anyway)."""
        query = select(Persona).where(Persona.org_id == org_id, Persona.key == key)
        return s.scalar(query.with_for_update() if lock else query)

    def _require(self, s: Session, org_id: int, key: str, *, lock: bool = False) -> Persona:
        row = self._row(s, org_id, key, lock=lock)
        if row is None:
            raise PersonaNotFound(f"no persona with key '{key}'")
        return row

    def save_persona(
        self,
        org_id: int,
        spec: PersonaSpec,
        author: str,
        *,
        expected_revision: int | None = None,
        note: str | None = None,
        now: datetime | None = None,
    ) -> StoredPersona:
        """Create or update one persona, writing a revision when anything changed.

        ``expected_revision`` is the revision the editor started from; if the persona has
        moved on since, nothing is written and ``StaleRevision`` is raised.
        """
        with self._sessions.begin() as s:
            row = self._save(s, org_id, spec, author, expected_revision, note, now or utcnow())
            return record_from_row(row)

    def _save(
        self,
        s: Session,
        org_id: int,
        spec: PersonaSpec,
        author: str,
        expected_revision: int | None,
        note: str | None,
        now: datetime,
    ) -> Persona:
        row = self._row(s, org_id, spec.key, lock=True)
        if row is None:
            if expected_revision not in (None, 0):
                raise PersonaNotFound(f"no persona with key '{spec.key}'")
            row = Persona(org_id=org_id, revision=0, archived=False, created_at=now)
            _apply_spec(row, spec)
            row.last_reviewed_at = now
            row.updated_at = now
            s.add(row)
            s.flush()
            self._add_revision(s, row, author, "created", diff_specs(None, spec), note, now)
            self._bump_catalog(s, org_id)
            return row
        if expected_revision is not None and row.revision != expected_revision:
            raise StaleRevision(spec.key, expected_revision, row.revision)
        changes = diff_specs(spec_from_row(row), spec)
        restored = row.archived
        if not changes and not restored:
            return row
        _apply_spec(row, spec)
        row.archived = False
        row.updated_at = now
        # Updating a profile is reviewing it: the owner looked at it and changed it.
        row.last_reviewed_at = now
        action = "restored" if restored and not changes else "updated"
        if restored:
            changes["archived"] = [True, False]
        self._add_revision(s, row, author, action, changes, note, now)
        self._bump_catalog(s, org_id)
        return row

    @staticmethod
    def _add_revision(
        s: Session,
        row: Persona,
        author: str,
        action: str,
        changes: dict[str, list[Any]],
        note: str | None,
        now: datetime,
    ) -> None:
        row.revision += 1
        s.add(
            PersonaRevision(
                persona_id=row.id,
                number=row.revision,
                author=author,
                action=action,
                note=note,
                changes=changes,
                snapshot=spec_from_row(row).to_dict(),
                created_at=now,
            )
        )

    def import_personas(
        self,
        org_id: int,
        specs: Sequence[PersonaSpec],
        author: str,
        *,
        replace: bool = False,
        now: datetime | None = None,
    ) -> ImportResult:
        """Load validated personas in one transaction: all of them or, on error, none.

        With ``replace``, personas missing from the file are archived (never deleted).
        """
        now = now or utcnow()
        created: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        archived: list[str] = []
        restored: list[str] = []
        with self._sessions.begin() as s:
            existing = {
                r.key: (r.revision, r.archived)
                for r in s.scalars(select(Persona).where(Persona.org_id == org_id))
            }
            for spec in specs:
                row = self._save(s, org_id, spec, author, None, "import", now)
                before = existing.get(spec.key)
                if before is None:
                    created.append(spec.key)
                elif row.revision == before[0]:
                    unchanged.append(spec.key)
                elif before[1]:
                    restored.append(spec.key)
                else:
                    updated.append(spec.key)
            if replace:
                keep = {spec.key for spec in specs}
                for key, (_, was_archived) in sorted(existing.items()):
                    if key not in keep and not was_archived:
                        self._archive(s, org_id, key, author, "not in the replacing import", now)
                        archived.append(key)
        return ImportResult(
            tuple(created), tuple(updated), tuple(unchanged), tuple(archived), tuple(restored)
        )

    def archive_persona(
        self, org_id: int, key: str, author: str, *, now: datetime | None = None
    ) -> StoredPersona:
        """Hide a persona from lookup and matching; its history stays."""
        with self._sessions.begin() as s:
            return record_from_row(self._archive(s, org_id, key, author, None, now or utcnow()))

    def _archive(
        self, s: Session, org_id: int, key: str, author: str, note: str | None, now: datetime
    ) -> Persona:
        row = self._require(s, org_id, key, lock=True)
        if row.archived:
            return row
        row.archived = True
        row.updated_at = now
        self._add_revision(s, row, author, "archived", {"archived": [False, True]}, note, now)
        self._bump_catalog(s, org_id)
        return row

    def mark_reviewed(
        self,
        org_id: int,
        key: str,
        author: str,
        *,
        note: str | None = None,
        now: datetime | None = None,
    ) -> StoredPersona:
        """Record that the persona was reviewed and still holds (a revision without changes)."""
        now = now or utcnow()
        with self._sessions.begin() as s:
            row = self._require(s, org_id, key, lock=True)
            previous = row.last_reviewed_at
            row.last_reviewed_at = now
            self._add_revision(
                s,
                row,
                author,
                "reviewed",
                {"last_reviewed_at": [previous.isoformat() if previous else None, now.isoformat()]},
                note,
                now,
            )
            self._bump_catalog(s, org_id)
            return record_from_row(row)

    def history(self, org_id: int, key: str, *, limit: int = 10) -> list[Revision]:
        """The newest revisions of a persona, newest first."""
        with self._sessions() as s:
            row = self._require(s, org_id, key)
            revisions = s.scalars(
                select(PersonaRevision)
                .where(PersonaRevision.persona_id == row.id)
                .order_by(PersonaRevision.number.desc())
                .limit(limit)
            )
            return [
                Revision(r.number, r.author, r.action, r.created_at, dict(r.changes), r.note)
                for r in revisions
            ]

    def seed_if_empty(self, org_id: int, specs: Iterable[PersonaSpec], author: str) -> bool:
        """Load the sample personas into an organization that has never had any."""
        if self.count_personas(org_id):
            return False
        self.import_personas(org_id, list(specs), author)
        return True

    # feedback and deals ----------------------------------------------------------------

    def add_feedback(
        self,
        org_id: int,
        key: str,
        *,
        platform: str,
        user_id: str,
        rating: int = 0,
        comment: str | None = None,
    ) -> None:
        with self._sessions.begin() as s:
            row = self._require(s, org_id, key)
            s.add(
                Feedback(
                    org_id=org_id,
                    persona_id=row.id,
                    platform=platform,
                    user_id=user_id,
                    rating=max(-1, min(1, rating)),
                    comment=comment,
                )
            )

    def link_deal(
        self, org_id: int, deal_external_id: str, key: str, *, source: str, user_id: str | None
    ) -> None:
        """Remember that a persona was used on a deal (idempotent)."""
        with self._sessions.begin() as s:
            persona = self._require(s, org_id, key)
            deal = self._deal(s, org_id, deal_external_id)
            link = s.scalar(
                select(DealPersona).where(
                    DealPersona.deal_id == deal.id, DealPersona.persona_id == persona.id
                )
            )
            if link is None:
                s.add(
                    DealPersona(
                        deal_id=deal.id, persona_id=persona.id, source=source, user_id=user_id
                    )
                )
            elif source == "confirmed":
                link.source = source

    @staticmethod
    def _deal(s: Session, org_id: int, external_id: str) -> Deal:
        deal = s.scalar(select(Deal).where(Deal.org_id == org_id, Deal.external_id == external_id))
        if deal is None:
            deal = Deal(org_id=org_id, external_id=external_id, outcome="open")
            s.add(deal)
            s.flush()
        return deal

    def overdue(self, org_id: int, now: datetime | None = None) -> list[StoredPersona]:
        """Active personas whose review is due."""
        now = now or utcnow()
        return [
            p
            for p in self.list_personas(org_id)
            if p.last_reviewed_at is None
            or p.last_reviewed_at + timedelta(days=p.spec.review_every_days) <= now
        ]
