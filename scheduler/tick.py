"""One scheduler tick: read what the rules need, decide what is due, record it in the outbox.

Blocking database work, run from the scheduler through ``runtime.db`` and by the
``persona-bot nudges`` command. Every replica may tick at the same time: the outbox's unique
keys make the second insert of the same item a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from persona_store import outbox
from persona_store.models import Organization, Persona
from persona_store.outbox import DueItem
from persona_store.store import PersonaStore
from scheduler.config import Rules
from scheduler.due import OrgFacts, PersonaFacts, cycle_key, due_items


@dataclass(frozen=True)
class TickResult:
    due: tuple[DueItem, ...]  # everything due now, recorded before or not
    queued: tuple[DueItem, ...]  # what this tick recorded


@dataclass(frozen=True)
class Scheduled:
    """The few fields of an active persona the rules read (cheaper than full records)."""

    id: int
    org_id: int
    key: str
    name: str
    owner: str | None
    due_at: datetime


def active_personas(engine: Engine) -> tuple[list[OrgFacts], list[Scheduled]]:
    """Organizations that have active personas, and those personas' current cycles."""
    with engine.connect() as conn:
        orgs = {
            org_id: created_at
            for org_id, created_at in conn.execute(select(Organization.id, Organization.created_at))
        }
        rows = conn.execute(
            select(
                Persona.id,
                Persona.org_id,
                Persona.key,
                Persona.name,
                Persona.owner,
                Persona.review_every_days,
                Persona.last_reviewed_at,
                Persona.created_at,
            )
            .where(Persona.archived.is_(False))
            .order_by(Persona.org_id, Persona.id)
        ).all()
    personas = [
        Scheduled(pid, org, key, name, owner, (reviewed or created) + timedelta(days=every))
        for pid, org, key, name, owner, every, reviewed, created in rows
    ]
    with_personas = sorted({p.org_id for p in personas})
    return [OrgFacts(org, orgs[org]) for org in with_personas], personas


def persona_facts(
    engine: Engine, personas: Sequence[Scheduled], now: datetime
) -> list[PersonaFacts]:
    """The current cycle of each persona due at ``now``, with its snoozes and when its
    nudge was delivered (personas not yet due need no more than they have)."""
    personas = [p for p in personas if p.due_at <= now]
    if not personas:
        return []
    cycles = outbox.review_cycles(engine, (p.id for p in personas))
    nudge_keys = {("review", f"persona:{p.id}", cycle_key(p.due_at)) for p in personas}
    nudges = outbox.existing(engine, nudge_keys)
    facts = []
    for p in personas:
        period = cycle_key(p.due_at)
        cycle = cycles.get(p.id)
        current = cycle is not None and cycle.due_on == period
        nudge = nudges.get(("review", f"persona:{p.id}", period))
        sent_at = nudge.sent_at if nudge is not None and nudge.state == "sent" else None
        facts.append(
            PersonaFacts(
                persona_id=p.id,
                org_id=p.org_id,
                key=p.key,
                name=p.name,
                owner=p.owner,
                due_at=p.due_at,
                snoozed_until=cycle.snoozed_until if cycle is not None and current else None,
                snoozes=cycle.snoozes if cycle is not None and current else 0,
                nudge_sent_at=sent_at,
            )
        )
    return facts


def collect(store: PersonaStore, rules: Rules, now: datetime) -> list[DueItem]:
    """Everything due at ``now`` (whether or not it is recorded already)."""
    orgs, personas = active_personas(store.engine)
    return due_items(persona_facts(store.engine, personas, now), orgs, rules, now)


def run_tick(store: PersonaStore, rules: Rules, now: datetime) -> TickResult:
    """Decide what is due and record what is new."""
    due = collect(store, rules, now)
    known = outbox.existing(store.engine, (item.key for item in due))
    fresh = [item for item in due if item.key not in known]
    # Another replica may record some of these between the two statements: enqueue
    # ignores those, and says which rows this call inserted.
    queued = outbox.enqueue(store.engine, fresh, now)
    return TickResult(tuple(due), tuple(queued))
