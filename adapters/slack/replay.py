"""Refusing a signed Slack request that arrives a second time (a replay).

A Slack signature covers the timestamp and the body, and is accepted for five minutes either
side of the timestamp. Whoever captures a signed request (a proxy log, a leaked capture) could
send it again within that window and it would verify. Slack itself never sends the same slash
command or click twice (each carries a fresh ``trigger_id``), so the second arrival of a
signature is refused. Event deliveries are not checked here: Slack retries them, and their
``event_id`` is claimed in the database instead (see ``deliveries.claim``).

The memory is per process: with several replicas behind a load balancer a replay that reaches
another replica is not caught. The store is bounded; when full it forgets the oldest first.
"""

from __future__ import annotations

import time
from collections.abc import Callable

WINDOW = 5 * 60  # slack_sdk's SignatureVerifier accepts timestamps this far from now
LIMIT = 100_000


class ReplayGuard:
    """The signatures of the requests seen while they could still verify."""

    def __init__(
        self, *, window: int = WINDOW, limit: int = LIMIT, clock: Callable[[], float] = time.time
    ) -> None:
        self.window = window
        self.limit = limit
        self._clock = clock
        self._seen: dict[str, float] = {}  # signature -> when it stops verifying
        self._next_prune = 0.0

    def __len__(self) -> int:
        return len(self._seen)

    def first_time(self, timestamp: str, signature: str) -> bool:
        """Remember a verified request; False if the same signed request came before."""
        now = self._clock()
        if now >= self._next_prune or len(self._seen) >= self.limit:
            self._prune(now)
        expires = self._seen.get(signature)
        if expires is not None and expires >= now:
            return False
        while len(self._seen) >= self.limit:
            del self._seen[next(iter(self._seen))]
        self._seen[signature] = int(timestamp) + self.window
        return True

    def _prune(self, now: float) -> None:
        self._seen = {sig: until for sig, until in self._seen.items() if until >= now}
        self._next_prune = now + 30
