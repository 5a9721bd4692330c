"""Change notes: after an edit, the people who looked the persona up in the last 30 days are
told what changed, once per person per change.

Each note is an outbox row keyed (change, persona:ID:PLATFORM:USER, rREVISION), so a note can
never be queued twice for the same person and revision, and the delivery worker sends it with
the same retries, rate-limit backoff and exactly-once bookkeeping as the review nudges. Only
people on the platforms the bot can reach are told; the editor is not told about their own
change. A note that cannot be delivered is recorded as failed; it does not alert the admins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from bot.handlers import describe_change
from bot.model import Button, Buttons, Context, Header, Reply, Text
from bot.runtime import Runtime
from persona_store import outbox
from persona_store.outbox import DueItem
from persona_store.records import StoredPersona
from persona_store.usage import recent_viewers

KIND = "change"
RECENT = timedelta(days=30)
MAX_LINES = 8


class ChangeNotes:
    """``runtime.change_notifier``: queue notes for recent viewers, wake the local worker."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.wake: Callable[[], None] | None = None  # set when a worker runs in this process

    async def __call__(self, org_id: int, persona: StoredPersona, editor_id: str) -> int:
        rt = self.runtime
        now = rt.clock()
        since_ms = int((now - RECENT).timestamp() * 1000)
        # The viewers of a moment ago may still be in the usage queue.
        await rt.db(rt.usage.flush, 1.0)
        viewers = await rt.db(recent_viewers, rt.engine, org_id, persona.id, since_ms)
        history = await rt.db(rt.store.history, org_id, persona.key, limit=1)
        if not history or history[0].number != persona.revision:
            return 0
        revision = history[0]
        lines = [describe_change(f, c) for f, c in revision.changes.items()]
        items = [
            DueItem(
                KIND,
                f"persona:{persona.id}:{platform}:{user}",
                f"r{persona.revision}",
                org_id,
                {
                    "to": {"platform": platform, "user_id": user},
                    "persona_id": persona.id,
                    "persona_key": persona.key,
                    "persona_name": persona.name,
                    "revision": persona.revision,
                    "editor": revision.author,
                    "changes": lines[:MAX_LINES],
                    "more": max(0, len(lines) - MAX_LINES),
                    "label": f"change note for {persona.name}",
                },
                persona.id,
            )
            for platform, user in viewers
            if user != editor_id and platform in rt.notifiers
        ]
        queued = await rt.db(outbox.enqueue, rt.engine, items, now)
        if queued and self.wake is not None:
            asyncio.get_running_loop().call_soon(self.wake)
        return len(queued)


def change_note_reply(payload: Mapping[str, Any]) -> Reply:
    name, key = str(payload["persona_name"]), str(payload["persona_key"])
    items = tuple(str(line) for line in payload.get("changes", ()))
    more = int(payload.get("more", 0))
    if more:
        items += (f"and {more} more change(s)",)
    return Reply(
        summary=f"{name} was updated by {payload['editor']}",
        blocks=(
            Header(f"{name} was updated"),
            Text(
                f"{payload['editor']} changed {name}, which you looked up recently.",
                items=items,
            ),
            Buttons((Button(f"Show {name}", "lookup", key), Button("History", "history", key))),
            Context(f"Revision {payload['revision']}."),
        ),
        kind="ack",
        ephemeral=False,
        persona_key=key,
    )
