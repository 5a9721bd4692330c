"""The App Home tab: what persona-bot shows when someone opens it in Slack.

Built as a neutral ``Reply`` (so the same escaping and Block Kit limits apply) and published
with ``views.publish``: the persona list with a quick look-up button per persona, the viewer's
own personas that are due for review (with "Mark reviewed"), and for managers and admins a
short usage summary. Opening the tab is not a command, so it records no usage event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.model import Block, Button, Buttons, Context, Fields, Header, Reply, Text, UserRef
from bot.permissions import Role, can_read_summaries, is_owner
from bot.runtime import Runtime
from persona_store.records import StoredPersona
from persona_store.usage import usage_counts

from . import texts
from .translate import VIEW_BLOCKS, blocks_from_reply

MAX_LISTED = 50
USAGE_DAYS = 30


def is_due(persona: StoredPersona, now: datetime) -> bool:
    reviewed = persona.last_reviewed_at
    return reviewed is None or reviewed + timedelta(days=persona.spec.review_every_days) <= now


def home_reply(
    personas: tuple[StoredPersona, ...],
    user: UserRef,
    role: Role,
    now: datetime,
    usage: dict[str, Any] | None,
) -> Reply:
    """The App Home content for one viewer."""
    blocks: list[Block] = [Header("persona-bot"), Text(texts.HOME_INTRO)]
    listed = personas[:MAX_LISTED]
    if personas:
        blocks.append(
            Text(title="Personas", items=tuple(f"{p.name}: {p.spec.role}" for p in listed))
        )
        blocks.append(Buttons(tuple(Button(p.name, "lookup", p.key) for p in listed)))
        if len(personas) > len(listed):
            blocks.append(
                Context(texts.HOME_MORE_PERSONAS.format(count=len(personas) - len(listed)))
            )
    else:
        blocks.append(Text("There are no personas yet."))
    owned = [p for p in personas if is_owner(user, p)]
    if owned:
        due = [p for p in owned if is_due(p, now)]
        if due:
            blocks.append(
                Text(
                    title=texts.HOME_REVIEWS_TITLE,
                    items=tuple(
                        f"{p.name}: "
                        + (
                            f"last reviewed {p.last_reviewed_at:%Y-%m-%d}"
                            if p.last_reviewed_at
                            else "never reviewed"
                        )
                        for p in due
                    ),
                )
            )
            blocks.append(
                Buttons(
                    tuple(
                        button
                        for p in due
                        for button in (
                            Button(f"Mark {p.name} reviewed", "review", p.key, "primary"),
                            Button(f"✏️ Edit {p.name}", "edit", p.key),
                        )
                    )
                )
            )
        else:
            blocks.append(Text(texts.HOME_NO_REVIEWS, title=texts.HOME_REVIEWS_TITLE))
    if usage is not None and can_read_summaries(role):
        by_command = usage["by_command"]
        total = sum(by_command.values())
        top = tuple((row["name"], f"{row['events']:,}") for row in usage["by_persona"][:5])
        blocks.append(
            Fields(
                (("Commands", f"{total:,}"), ("People", f"{usage['users']:,}"), *top),
                title=texts.HOME_USAGE_TITLE.format(days=USAGE_DAYS),
            )
        )
        blocks.append(
            Context(f"{usage['unmatched']} searches found nothing. Details: `/persona stats`.")
        )
    return Reply(summary="persona-bot", blocks=tuple(blocks), kind="list")


async def home_view(runtime: Runtime, org_id: int, user: UserRef, role: Role) -> dict[str, Any]:
    """The ``views.publish`` view of the App Home tab for ``user``."""
    catalog = await runtime.catalogs.get(org_id)
    now = runtime.clock()
    usage = None
    if can_read_summaries(role):
        await runtime.db(runtime.usage.flush, 1.0)  # include the commands of a moment ago
        since = int((now - timedelta(days=USAGE_DAYS)).timestamp() * 1000)
        usage = await runtime.db(usage_counts, runtime.engine, org_id, since)
    reply = home_reply(catalog.personas, user, role, now, usage)
    return {"type": "home", "blocks": blocks_from_reply(reply, limit=VIEW_BLOCKS)}
