"""The classic failures of persona programmes, measured.

Too many primary personas (nobody remembers more than five), profiles that are only
demographics (age and job title say nothing about why people buy), profiles nobody reviewed
within their cadence, profiles nobody looked up in 90 days, and review nudges or digests that
could not be delivered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from persona_store.records import SECTION_TYPES, StoredPersona

MAX_PRIMARY = 5
UNUSED_DAYS = 90


@dataclass(frozen=True)
class PersonaHealth:
    key: str
    name: str
    data_types: tuple[str, ...]  # which of the four are filled
    has_goals: bool
    has_pain_points: bool
    review_due_at: datetime | None  # None: never reviewed
    overdue_days: int  # 0 when not overdue
    last_used_at: datetime | None
    unused: bool

    @property
    def completeness(self) -> int:
        """Percent of the four data types present."""
        return round(100 * len(self.data_types) / len(SECTION_TYPES))

    @property
    def demographics_only(self) -> bool:
        return self.data_types == ("demographic",)


@dataclass(frozen=True)
class DeliveryProblem:
    """A nudge, reminder, escalation, alert or digest that did not (certainly) arrive."""

    row_id: int
    kind: str  # review, reminder, escalation, alert, digest
    state: str  # failed, uncertain, alerted (owner unreachable), pending (nobody delivering)
    label: str  # "review nudge for Finance Fiona"
    recipient: str
    error: str | None
    since: datetime


@dataclass(frozen=True)
class HealthReport:
    personas: tuple[PersonaHealth, ...]
    too_many: bool
    deliveries: tuple[DeliveryProblem, ...] = ()

    @property
    def count(self) -> int:
        return len(self.personas)

    @property
    def overdue(self) -> tuple[PersonaHealth, ...]:
        return tuple(p for p in self.personas if p.overdue_days > 0)

    @property
    def unused(self) -> tuple[PersonaHealth, ...]:
        return tuple(p for p in self.personas if p.unused)

    @property
    def demographics_only(self) -> tuple[PersonaHealth, ...]:
        return tuple(p for p in self.personas if p.demographics_only)

    @property
    def incomplete(self) -> tuple[PersonaHealth, ...]:
        return tuple(p for p in self.personas if len(p.data_types) < len(SECTION_TYPES))

    @property
    def problems(self) -> int:
        return (
            int(self.too_many)
            + len(self.overdue)
            + len(self.unused)
            + len(self.incomplete)
            + len(self.deliveries)
        )


def assess(
    personas: Sequence[StoredPersona],
    last_used: Mapping[int, datetime],
    now: datetime,
    deliveries: Sequence[DeliveryProblem] = (),
) -> HealthReport:
    """Measure each active persona; ``last_used`` maps persona id to its newest usage;
    ``deliveries`` are the outbox's problems (``persona_store.outbox.delivery_problems``)."""
    rows = []
    for p in personas:
        if p.archived:
            continue
        due = (
            p.last_reviewed_at + timedelta(days=p.spec.review_every_days)
            if p.last_reviewed_at
            else None
        )
        if due is None:
            overdue = max(1, (now - p.created_at).days)
        else:
            overdue = max(1, (now - due).days) if due <= now else 0
        used = last_used.get(p.id)
        # A persona created recently has not had the chance to be used yet.
        old_enough = now - p.created_at >= timedelta(days=UNUSED_DAYS)
        unused = (used is None or now - used > timedelta(days=UNUSED_DAYS)) and old_enough
        rows.append(
            PersonaHealth(
                key=p.key,
                name=p.name,
                data_types=tuple(p.spec.data_types_present()),
                has_goals=bool(p.spec.goals),
                has_pain_points=bool(p.spec.pain_points),
                review_due_at=due,
                overdue_days=overdue,
                last_used_at=used,
                unused=unused,
            )
        )
    return HealthReport(
        personas=tuple(rows), too_many=len(rows) > MAX_PRIMARY, deliveries=tuple(deliveries)
    )
