"""A send the platform took but never answered: the row is ``uncertain`` at once, the admins
are alerted in the same step, and the worker never sends it again by itself (on SQLite and,
when configured, PostgreSQL). The timeout is the worker's own ``send_timeout``."""

from __future__ import annotations

from collections import Counter

from tests.fakes.platform import FakePlatform, HttpNotifier
from tests.test_scheduler_delivery import ADMIN, World


async def test_a_send_with_no_answer_is_uncertain_alerted_and_never_resent(
    db_url: str, platform: FakePlatform, notifier: HttpNotifier
) -> None:
    world = World(db_url, notifier, PERSONA_BOT_ADMINS=ADMIN, PERSONA_BOT_OUTBOX_SEND_TIMEOUT="0.5")
    try:
        world.personas(2)
        await world.tick()
        platform.hold_next()  # takes the first nudge and never answers
        worker = world.worker()
        await worker.run_until_idle()
        [held] = platform.deliveries[:1]
        rows = {"/".join(r.key): r for r in world.rows()}
        uncertain = rows[held.key]
        assert (uncertain.state, uncertain.attempts) == ("uncertain", 1)
        assert "no answer within 0.5 s" in (uncertain.last_error or "")
        assert worker.stats.uncertain == 1 and worker.stats.retried == 0
        [alert] = [d for d in platform.deliveries if d.to == ADMIN]
        assert "may not have arrived" in alert.text and f"--resend {uncertain.id}" in alert.text
        assert {r.state for r in rows.values() if r.id != uncertain.id} == {"sent"}

        # Days later, still not re-sent: it may well have arrived.
        world.clock.advance(days=3)
        await worker.run_until_idle()
        assert world.rows() == list(rows.values())
    finally:
        world.runtime.close()
    assert Counter(platform.keys()) == {key: 1 for key in rows}
