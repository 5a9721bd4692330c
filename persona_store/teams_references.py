"""Where the Teams bot can reach people: stored conversation references.

The Teams adapter saves one row per (tenant, conversation, user) it sees, with the user's
AAD object id and email when known, so that proactive messages (review nudges, digests) can
find a personal chat or a channel later. The reference itself is the Bot Framework's JSON,
kept as a dictionary: this module knows nothing of botbuilder. Every search is limited to one
organization.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from persona_store.db import session_factory
from persona_store.models import TeamsReference


@dataclass(frozen=True)
class ReferenceRecord:
    """One stored reference: whom (user ids, email) and where (conversation, service URL)."""

    org_id: int
    tenant_id: str
    conversation_id: str
    conversation_type: str
    user_id: str
    service_url: str
    reference: dict[str, Any] = field(default_factory=dict, compare=False)
    channel_id: str | None = None
    aad_object_id: str | None = None
    email: str | None = None
    user_name: str | None = None
    updated_at: datetime | None = field(default=None, compare=False)


def _record(row: TeamsReference) -> ReferenceRecord:
    return ReferenceRecord(
        org_id=row.org_id,
        tenant_id=row.tenant_id,
        conversation_id=row.conversation_id,
        conversation_type=row.conversation_type,
        user_id=row.user_id,
        service_url=row.service_url,
        reference=dict(row.reference or {}),
        channel_id=row.channel_id,
        aad_object_id=row.aad_object_id,
        email=row.email,
        user_name=row.user_name,
        updated_at=row.updated_at,
    )


def _apply(row: TeamsReference, record: ReferenceRecord, now: datetime) -> None:
    row.org_id = record.org_id
    row.conversation_type = record.conversation_type[:16]
    row.channel_id = record.channel_id
    # Keep what an earlier sighting learned (an email from a member lookup) when this one
    # does not know it.
    row.aad_object_id = record.aad_object_id or row.aad_object_id
    row.email = (record.email or row.email or "").lower() or None
    row.user_name = (record.user_name or row.user_name or "")[:200] or None
    row.service_url = record.service_url
    row.reference = dict(record.reference)
    row.updated_at = now


class TeamsReferenceStore:
    """Synchronous access to the stored references (run it through ``runtime.db``)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def save(self, record: ReferenceRecord, now: datetime) -> None:
        """Insert or update the reference of (tenant, conversation, user).

        A new service URL for a conversation is applied to every stored user of that
        conversation: the Bot Connector moved it, and the old URL may stop answering.
        """
        for attempt in (1, 2):
            try:
                with self._sessions.begin() as s:
                    row = s.scalars(
                        select(TeamsReference).where(
                            TeamsReference.tenant_id == record.tenant_id,
                            TeamsReference.conversation_id == record.conversation_id,
                            TeamsReference.user_id == record.user_id,
                        )
                    ).one_or_none()
                    if row is None:
                        row = TeamsReference(
                            tenant_id=record.tenant_id,
                            conversation_id=record.conversation_id,
                            user_id=record.user_id,
                            created_at=now,
                        )
                        s.add(row)
                    _apply(row, record, now)
                    moved = s.scalars(
                        select(TeamsReference).where(
                            TeamsReference.tenant_id == record.tenant_id,
                            TeamsReference.conversation_id == record.conversation_id,
                            TeamsReference.service_url != record.service_url,
                        )
                    ).all()
                    for other in moved:
                        if other is row:
                            continue
                        other.service_url = record.service_url
                        other.reference = {
                            **(other.reference or {}),
                            "serviceUrl": record.service_url,
                        }
                        other.updated_at = now
                return
            except IntegrityError:  # another replica inserted the same row first
                if attempt == 2:
                    raise

    def find_user(
        self, org_id: int, *, user_id: str | None = None, email: str | None = None
    ) -> list[ReferenceRecord]:
        """Every reference of a user (by AAD object id, Teams user id or email), newest first."""
        conditions = []
        if user_id:
            conditions += [
                TeamsReference.aad_object_id == user_id,
                TeamsReference.user_id == user_id,
            ]
        if email:
            conditions.append(TeamsReference.email == email.strip().lower())
        if not conditions:
            return []
        with self._sessions() as s:
            rows = s.scalars(
                select(TeamsReference)
                .where(TeamsReference.org_id == org_id, or_(*conditions))
                .order_by(TeamsReference.updated_at.desc(), TeamsReference.id.desc())
                .limit(50)
            ).all()
            return [_record(r) for r in rows]

    def find_channel(self, org_id: int, channel: str) -> ReferenceRecord | None:
        """The newest reference of a channel or group chat, by its channel or conversation id."""
        with self._sessions() as s:
            row = s.scalars(
                select(TeamsReference)
                .where(
                    TeamsReference.org_id == org_id,
                    TeamsReference.conversation_type != "personal",
                    or_(
                        TeamsReference.channel_id == channel,
                        TeamsReference.conversation_id == channel,
                    ),
                )
                .order_by(TeamsReference.updated_at.desc(), TeamsReference.id.desc())
                .limit(1)
            ).first()
            return _record(row) if row is not None else None

    def known_user(self, tenant_id: str, user_id: str) -> ReferenceRecord | None:
        """The newest reference of a Teams user id in a tenant, preferring one with an email."""
        with self._sessions() as s:
            row = s.scalars(
                select(TeamsReference)
                .where(TeamsReference.tenant_id == tenant_id, TeamsReference.user_id == user_id)
                .order_by(
                    TeamsReference.email.is_(None),
                    TeamsReference.updated_at.desc(),
                    TeamsReference.id.desc(),
                )
                .limit(1)
            ).first()
            return _record(row) if row is not None else None

    def forget_conversation(self, tenant_id: str, conversation_id: str) -> int:
        """Drop every reference of a conversation (the bot was uninstalled from it)."""
        with self._sessions.begin() as s:
            result = s.execute(
                delete(TeamsReference).where(
                    TeamsReference.tenant_id == tenant_id,
                    TeamsReference.conversation_id == conversation_id,
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def count(self, org_id: int | None = None) -> int:
        """How many references are stored (in one organization, or in all)."""
        with self._sessions() as s:
            query = select(func.count()).select_from(TeamsReference)
            if org_id is not None:
                query = query.where(TeamsReference.org_id == org_id)
            return int(s.scalar(query) or 0)
