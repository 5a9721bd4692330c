"""Review nudges and manager digests: APScheduler decides what is due, an outbox records it,
and a delivery worker sends it exactly once through the platforms' Notifiers."""
