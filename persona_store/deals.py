"""Deal outcomes: what chat (``/persona deal D-1042 won``) and CRM imports write, and what a
deal looks like when asked about.

Deals are created on first mention (a fit or lookup carrying the deal id, an outcome, an
import row) and keyed by their external id within an organization; an outcome only ever
updates the one deal it names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from persona_store.db import session_factory
from persona_store.models import Deal, DealPersona, Persona, utcnow

OUTCOMES = ("won", "lost", "open")


@dataclass(frozen=True)
class DealRow:
    """One deal as a CRM export or a chat command describes it."""

    external_id: str
    outcome: str  # won, lost or open
    amount: float | None = None
    closed_at: datetime | None = None
    name: str | None = None


@dataclass(frozen=True)
class DealInfo:
    external_id: str
    name: str | None
    outcome: str
    amount: float | None
    closed_at: datetime | None
    personas: tuple[tuple[str, str, str], ...]  # (key, name, source)


@dataclass(frozen=True)
class SaveResult:
    created: int
    updated: int
    unchanged: int


def _apply(deal: Deal, row: DealRow, now: datetime) -> bool:
    """Copy a row onto a deal; True when anything changed. Empty fields keep what is known."""
    closed_at = row.closed_at
    if row.outcome in ("won", "lost") and closed_at is None:
        closed_at = deal.closed_at or now
    if row.outcome == "open":
        closed_at = None
    new = {
        "outcome": row.outcome,
        "amount": row.amount if row.amount is not None else deal.amount,
        "closed_at": closed_at,
        "name": row.name or deal.name,
    }
    changed = any(getattr(deal, k) != v for k, v in new.items())
    if changed:
        for k, v in new.items():
            setattr(deal, k, v)
        deal.updated_at = now
    return changed


def save_deals(
    engine: Engine, org_id: int, rows: Sequence[DealRow], *, now: datetime | None = None
) -> SaveResult:
    """Create or update deals in one transaction: all rows or, on error, none."""
    now = now or utcnow()
    for row in rows:
        if row.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {row.outcome!r}")
    created = updated = unchanged = 0
    sessions = session_factory(engine)
    with sessions.begin() as s:
        ids = [r.external_id for r in rows]
        existing: dict[str, Deal] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for known in s.scalars(
                select(Deal).where(Deal.org_id == org_id, Deal.external_id.in_(chunk))
            ):
                existing[known.external_id] = known
        for row in rows:
            deal = existing.get(row.external_id)
            if deal is None:
                deal = Deal(
                    org_id=org_id,
                    external_id=row.external_id,
                    outcome="open",
                    created_at=now,
                    updated_at=now,
                )
                _apply(deal, row, now)
                s.add(deal)
                existing[row.external_id] = deal
                created += 1
            elif _apply(deal, row, now):
                updated += 1
            else:
                unchanged += 1
    return SaveResult(created, updated, unchanged)


def record_outcome(
    engine: Engine,
    org_id: int,
    external_id: str,
    outcome: str,
    *,
    amount: float | None = None,
    now: datetime | None = None,
) -> DealInfo:
    """Set one deal's outcome (``/persona deal D-1042 won 12000``) and return the deal."""
    save_deals(engine, org_id, [DealRow(external_id, outcome, amount)], now=now)
    info = deal_info(engine, org_id, external_id)
    assert info is not None
    return info


def deal_info(engine: Engine, org_id: int, external_id: str) -> DealInfo | None:
    """A deal and the personas used on it, or None when the deal is unknown."""
    sessions = session_factory(engine)
    with sessions() as s:
        deal = s.scalar(select(Deal).where(Deal.org_id == org_id, Deal.external_id == external_id))
        if deal is None:
            return None
        personas = s.execute(
            select(Persona.key, Persona.name, DealPersona.source)
            .join(Persona, Persona.id == DealPersona.persona_id)
            .where(DealPersona.deal_id == deal.id)
            .order_by(DealPersona.created_at, Persona.name)
        ).all()
        return DealInfo(
            deal.external_id,
            deal.name,
            deal.outcome,
            deal.amount,
            deal.closed_at,
            tuple((str(k), str(n), str(src)) for k, n, src in personas),
        )
