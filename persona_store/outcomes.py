"""Outcome correlation: do deals on which a persona was used go better than deals without?

A deal counts as "with" a persona when someone looked the persona up or asked for a fit
carrying the deal id (or confirmed the fit); "without" when no persona was linked to it at all.
For each side this reports closed deals, wins, the win rate with its Wilson score 95%
interval, and the average amount of the won deals. The Wilson interval is used rather than
the textbook normal approximation because it stays inside 0-100% and behaves with the small
samples and extreme rates a sales team actually has. This is correlation, not causation:
better reps may simply use the personas more, and the report says so wherever it is shown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from persona_store.models import Deal, DealPersona, Persona

Z_95 = 1.959963984540054  # the standard normal quantile for a two-sided 95% interval
MIN_CLOSED = 10  # below this many closed deals on either side, say nothing about the difference
CAVEAT = (
    "Correlation, not causation: deals that used a persona may differ in other ways "
    "(the rep, the segment, the deal size)."
)


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for a proportion ``successes / n`` (both ends in 0..1).

    With no observations the interval is the whole range: nothing is known.
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    """Closed deals on one side of a comparison."""

    won: int = 0
    lost: int = 0
    won_amount_total: float = 0.0
    won_with_amount: int = 0

    @property
    def closed(self) -> int:
        return self.won + self.lost

    @property
    def win_rate(self) -> float | None:
        return self.won / self.closed if self.closed else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.won, self.closed)

    @property
    def average_won_amount(self) -> float | None:
        return self.won_amount_total / self.won_with_amount if self.won_with_amount else None

    def to_json(self) -> dict[str, Any]:
        low, high = self.interval
        return {
            "closed": self.closed,
            "won": self.won,
            "lost": self.lost,
            "win_rate": self.win_rate,
            "ci95": [low, high],
            "average_won_amount": self.average_won_amount,
        }


def rate_of(deals: Iterable[tuple[str, float | None]]) -> Rate:
    """A Rate from ``(outcome, amount)`` pairs of closed deals."""
    won = lost = with_amount = 0
    total = 0.0
    for outcome, amount in deals:
        if outcome == "won":
            won += 1
            if amount is not None:
                total += amount
                with_amount += 1
        elif outcome == "lost":
            lost += 1
    return Rate(won, lost, total, with_amount)


@dataclass(frozen=True)
class Comparison:
    """Deals with a persona (or with any persona) against deals with none."""

    label: str
    key: str | None  # None for the overall comparison
    used: Rate
    not_used: Rate

    @property
    def difference(self) -> float | None:
        if self.used.win_rate is None or self.not_used.win_rate is None:
            return None
        return self.used.win_rate - self.not_used.win_rate

    @property
    def warning(self) -> str | None:
        """A plain sentence when the numbers cannot support a conclusion, else None."""
        if self.used.closed < MIN_CLOSED or self.not_used.closed < MIN_CLOSED:
            return (
                f"Too few closed deals to say anything: {self.used.closed} with and "
                f"{self.not_used.closed} without (at least {MIN_CLOSED} on each side needed)."
            )
        (low_u, high_u), (low_n, high_n) = self.used.interval, self.not_used.interval
        if low_u <= high_n and low_n <= high_u:
            return "The 95% intervals overlap: the difference may be chance."
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "key": self.key,
            "used": self.used.to_json(),
            "not_used": self.not_used.to_json(),
            "difference": self.difference,
            "warning": self.warning,
        }


@dataclass(frozen=True)
class OutcomeReport:
    overall: Comparison
    personas: tuple[Comparison, ...]
    open_deals: int
    method: str = "Wilson score interval, 95%"
    caveat: str = CAVEAT

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_json(),
            "personas": [c.to_json() for c in self.personas],
            "open_deals": self.open_deals,
            "method": self.method,
            "caveat": self.caveat,
        }


def compare_deals(
    deals: Mapping[int, tuple[str, float | None]],
    links: Mapping[int, set[int]],
    personas: Mapping[int, tuple[str, str]],
) -> tuple[Comparison, tuple[Comparison, ...]]:
    """Compare closed ``deals`` (id -> outcome, amount) by the personas ``links`` gives them
    (deal id -> persona ids); ``personas`` maps persona id -> (key, name)."""
    without = rate_of(v for d, v in deals.items() if not links.get(d))
    with_any = rate_of(v for d, v in deals.items() if links.get(d))
    overall = Comparison("Any persona", None, with_any, without)
    per_persona = []
    for persona_id, (key, name) in personas.items():
        used = rate_of(v for d, v in deals.items() if persona_id in links.get(d, ()))
        if used.closed:
            per_persona.append(Comparison(name, key, used, without))
    per_persona.sort(key=lambda c: (-c.used.closed, c.label))
    return overall, tuple(per_persona)


def outcome_report(engine: Engine, org_id: int, start: datetime, end: datetime) -> OutcomeReport:
    """Deals of an organization that closed in ``[start, end)``, with and without personas."""
    closed_at = func.coalesce(Deal.closed_at, Deal.updated_at)
    with engine.connect() as conn:
        conn.execution_options(read_only=True)
        rows = conn.execute(
            select(Deal.id, Deal.outcome, Deal.amount).where(
                Deal.org_id == org_id,
                Deal.outcome.in_(("won", "lost")),
                closed_at >= start,
                closed_at < end,
            )
        ).all()
        open_deals = conn.execute(
            select(func.count())
            .select_from(Deal)
            .where(Deal.org_id == org_id, Deal.outcome == "open")
        ).scalar_one()
        link_rows = conn.execute(
            select(DealPersona.deal_id, DealPersona.persona_id)
            .join(Deal, Deal.id == DealPersona.deal_id)
            .where(Deal.org_id == org_id, Deal.outcome.in_(("won", "lost")))
        ).all()
        persona_rows = conn.execute(
            select(Persona.id, Persona.key, Persona.name).where(Persona.org_id == org_id)
        ).all()
    deals = {int(i): (str(o), None if a is None else float(a)) for i, o, a in rows}
    links: dict[int, set[int]] = {}
    for deal_id, persona_id in link_rows:
        if deal_id in deals:
            links.setdefault(int(deal_id), set()).add(int(persona_id))
    personas = {int(i): (str(k), str(n)) for i, k, n in persona_rows}
    overall, per_persona = compare_deals(deals, links, personas)
    return OutcomeReport(overall, per_persona, int(open_deals))
