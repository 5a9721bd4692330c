"""Exactly-once handling of inbound platform events: claim an event id before acting on it.

Slack retries an event delivery when it did not see a 200 within three seconds (and says so
in ``X-Slack-Retry-Num``); the retry carries the same event id. ``claim`` inserts the id
under a unique key, so of any number of deliveries, in any number of replicas, exactly one
wins. Claims are only needed while Slack may still retry (minutes), so old ones are pruned.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from persona_store.models import DeliveredEvent, utcnow

KEEP = timedelta(days=1)  # Slack gives up retrying after about an hour.


def claim(engine: Engine, platform: str, event_id: str, *, now: datetime | None = None) -> bool:
    """Record ``event_id`` as delivered; False when it was claimed before (a redelivery)."""
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(DeliveredEvent).values(
                    platform=platform, event_id=event_id[:128], received_at=now or utcnow()
                )
            )
    except IntegrityError:
        return False
    return True


def prune(engine: Engine, *, now: datetime | None = None, keep: timedelta = KEEP) -> int:
    """Forget claims older than ``keep``; returns how many were deleted."""
    cutoff = (now or utcnow()) - keep
    with engine.begin() as conn:
        result = conn.execute(delete(DeliveredEvent).where(DeliveredEvent.received_at < cutoff))
    return result.rowcount or 0
