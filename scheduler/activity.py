"""What happened to a persona since its last review, for the review nudge: lookups, searches
that nearly found it, feedback, and deals it was used on that were won or lost.

Blocking reads, run in the database thread pool when a nudge is about to be sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from persona_store.lookup import PersonaIndex
from persona_store.models import Deal, DealPersona, Feedback, UsageEvent
from persona_store.records import StoredPersona

MAX_SCANNED_MISSES = 500  # newest failed searches examined for near misses
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class ReviewActivity:
    since: datetime
    lookups: int = 0
    near_misses: int = 0  # failed searches that suggested this persona
    near_miss_examples: tuple[str, ...] = ()
    thumbs_up: int = 0
    thumbs_down: int = 0
    comment_count: int = 0
    comments: tuple[str, ...] = ()  # newest first
    deals_won: int = 0
    deals_lost: int = 0


def review_activity(
    engine: Engine, persona: StoredPersona, org_personas: Sequence[StoredPersona], since: datetime
) -> ReviewActivity:
    """Usage of ``persona`` since ``since``; ``org_personas`` decide what "nearly" means."""
    since_ms = int(since.timestamp() * 1000)
    with engine.connect() as conn:
        lookups = conn.scalar(
            select(func.count())
            .select_from(UsageEvent)
            .where(
                UsageEvent.org_id == persona.org_id,
                UsageEvent.ts >= since_ms,
                UsageEvent.persona_id == persona.id,
                UsageEvent.command == "lookup",
            )
        )
        misses = conn.scalars(
            select(UsageEvent.query)
            .where(
                UsageEvent.org_id == persona.org_id,
                UsageEvent.ts >= since_ms,
                UsageEvent.command == "lookup",
                UsageEvent.matched.is_(False),
                UsageEvent.query.is_not(None),
            )
            .order_by(UsageEvent.ts.desc())
            .limit(MAX_SCANNED_MISSES)
        ).all()
        feedback = conn.execute(
            select(Feedback.rating, Feedback.comment)
            .where(Feedback.persona_id == persona.id, Feedback.created_at >= since)
            .order_by(Feedback.created_at.desc(), Feedback.id.desc())
        ).all()
        outcomes = dict(
            conn.execute(
                select(Deal.outcome, func.count())
                .join(DealPersona, DealPersona.deal_id == Deal.id)
                .where(
                    DealPersona.persona_id == persona.id,
                    Deal.outcome.in_(("won", "lost")),
                    func.coalesce(Deal.closed_at, Deal.updated_at) >= since,
                )
                .group_by(Deal.outcome)
            ).all()
        )
    index = PersonaIndex(org_personas)
    near = 0
    examples: list[str] = []
    verdicts: dict[str, bool] = {}
    for query in misses:
        if query is None:
            continue
        if query not in verdicts:
            result = index.lookup(query)
            verdicts[query] = any(s.id == persona.id for s in result.suggestions)
        if verdicts[query]:
            near += 1
            if query not in examples and len(examples) < MAX_EXAMPLES:
                examples.append(query)
    comments = [c for _, c in feedback if c]
    return ReviewActivity(
        since=since,
        lookups=int(lookups or 0),
        near_misses=near,
        near_miss_examples=tuple(examples),
        thumbs_up=sum(1 for r, _ in feedback if r > 0),
        thumbs_down=sum(1 for r, _ in feedback if r < 0),
        comment_count=len(comments),
        comments=tuple(comments[:MAX_EXAMPLES]),
        deals_won=int(outcomes.get("won", 0)),
        deals_lost=int(outcomes.get("lost", 0)),
    )
