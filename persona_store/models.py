"""SQLAlchemy 2 models: organizations, personas and their revisions, usage, feedback, deals.

The schema is created only by the Alembic migrations in ``persona_store/migrations``; these
classes describe it for queries. Timestamps that summaries scan (usage events) are integer
epoch milliseconds so that range scans stay on a covering index; everything else is a
timezone-aware datetime stored as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime that always comes back timezone-aware in UTC (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Organization(Base):
    """One company. Slack workspaces and Teams tenants map onto organizations."""

    __tablename__ = "organization"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Bumped on every persona change so that caches in every replica can tell they are stale.
    catalog_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlatformTenant(Base):
    """A Slack team id or a Teams tenant id, and the organization it belongs to."""

    __tablename__ = "platform_tenant"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Persona(Base):
    __tablename__ = "persona"
    __table_args__ = (UniqueConstraint("org_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text)
    background: Mapped[str | None] = mapped_column(Text)
    photo_url: Mapped[str | None] = mapped_column(String(2000))
    owner: Mapped[str | None] = mapped_column(String(320))
    review_every_days: Mapped[int] = mapped_column(Integer, default=90)
    demographic: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    firmographic: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    behavioral: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    psychographic: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    goals: Mapped[list[str]] = mapped_column(JSON, default=list)
    pain_points: Mapped[list[str]] = mapped_column(JSON, default=list)
    objections: Mapped[list[str]] = mapped_column(JSON, default=list)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The number of the newest revision: the optimistic-locking token for editors.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    last_reviewed_at: Mapped[datetime | None] = mapped_column()
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    revisions: Mapped[list[PersonaRevision]] = relationship(
        back_populates="persona", order_by="PersonaRevision.number"
    )


class PersonaRevision(Base):
    """One change to a persona: who, when, which fields (old and new) and the full result."""

    __tablename__ = "persona_revision"
    __table_args__ = (UniqueConstraint("persona_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    persona_id: Mapped[int] = mapped_column(ForeignKey("persona.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(32))  # created, updated, reviewed, archived, ...
    note: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # field -> [old, new]
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    persona: Mapped[Persona] = relationship(back_populates="revisions")


class UsageEvent(Base):
    """One command a person ran: the raw material of every usage summary."""

    __tablename__ = "usage_event"
    __table_args__ = (
        # Covers every summary scan (range on ts within an organization, grouped by persona,
        # command, user, platform or channel) so that they never touch the table itself.
        # bench/summary_scale.py, 1,000,000 events: a 30-day summary takes 0.31 s with it and
        # 1.09 s with the (org_id, ts, persona_id) index that migration 0004 replaced.
        Index(
            "ix_usage_event_summary",
            "org_id",
            "ts",
            "persona_id",
            "command",
            "matched",
            "user_id",
            "platform",
            "channel",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    ts: Mapped[int] = mapped_column(BigInteger)  # epoch milliseconds, UTC
    platform: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str | None] = mapped_column(String(128))
    command: Mapped[str] = mapped_column(String(32))
    persona_id: Mapped[int | None] = mapped_column(
        ForeignKey("persona.id", ondelete="SET NULL"), nullable=True
    )
    query: Mapped[str | None] = mapped_column(String(1000))
    matched: Mapped[bool] = mapped_column(Boolean, default=False)
    score: Mapped[float | None] = mapped_column(Float)
    deal_id: Mapped[str | None] = mapped_column(String(128))
    latency_ms: Mapped[float | None] = mapped_column(Float)


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    persona_id: Mapped[int] = mapped_column(
        ForeignKey("persona.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(128))
    rating: Mapped[int] = mapped_column(Integer, default=0)  # +1, -1, or 0 for a comment only
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Deal(Base):
    """A CRM deal, known by its external id, with its outcome once it closes."""

    __tablename__ = "deal"
    __table_args__ = (UniqueConstraint("org_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(500))
    outcome: Mapped[str] = mapped_column(String(8), default="open")  # open, won, lost
    amount: Mapped[float | None] = mapped_column(Float)
    closed_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DealPersona(Base):
    """A persona used on a deal (a lookup or a fit carrying the deal id, or "This one fits")."""

    __tablename__ = "deal_persona"
    __table_args__ = (UniqueConstraint("deal_id", "persona_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deal.id", ondelete="CASCADE"))
    persona_id: Mapped[int] = mapped_column(ForeignKey("persona.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))  # lookup, fit, confirmed
    user_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TeamsReference(Base):
    """Where the Teams bot can reach someone: one row per (tenant, conversation, user) it saw.

    ``reference`` is the Bot Framework ConversationReference as JSON (the adapter owns its
    shape); the other columns are what proactive sends search by.
    """

    __tablename__ = "teams_reference"
    __table_args__ = (
        UniqueConstraint("tenant_id", "conversation_id", "user_id"),
        Index("ix_teams_reference_org_aad", "org_id", "aad_object_id"),
        Index("ix_teams_reference_org_email", "org_id", "email"),
        Index("ix_teams_reference_org_channel", "org_id", "channel_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[str] = mapped_column(String(512))
    conversation_type: Mapped[str] = mapped_column(String(16))  # personal, groupChat, channel
    channel_id: Mapped[str | None] = mapped_column(String(512))
    user_id: Mapped[str] = mapped_column(String(256))
    aad_object_id: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))  # lower case
    user_name: Mapped[str | None] = mapped_column(String(200))
    service_url: Mapped[str] = mapped_column(String(500))
    reference: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AppSecret(Base):
    """A secret the server generated once (the dashboard link key when none is configured),
    kept in the database so that every replica and every restart agrees on it."""

    __tablename__ = "app_secret"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveredEvent(Base):
    """An inbound platform event already acted on. Slack redelivers events it believes were
    missed (and Bolt does not deduplicate them): each event id is claimed here, under a
    unique key, before the bot acts, so a redelivery never acts twice."""

    __tablename__ = "delivered_event"
    __table_args__ = (UniqueConstraint("platform", "event_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


# The outbox and review-cycle tables live with their operations; importing them here puts
# them in Base.metadata wherever the models are loaded (Alembic included).
from persona_store import outbox as _outbox  # noqa: E402, F401
