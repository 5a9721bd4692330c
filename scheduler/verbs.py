"""The verbs behind the nudge's buttons: ``snooze``, and a ``review`` (or a saved edit) that also
ends the nudge cycle.

They are ordinary router verbs, so a button pressed in Slack or Teams and the same words
typed anywhere go through the same handler, as the person who pressed or typed them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.errors import CommandError, PermissionDenied
from bot.messages import needs_argument, not_allowed
from bot.model import Reply
from bot.permissions import can_change
from bot.resolve import resolve_persona
from bot.router import Handler, Router, Turn
from persona_store import outbox
from scheduler.change_notes import ChangeNotes
from scheduler.config import SchedulerConfig
from scheduler.due import cycle_due, cycle_key


def _local(turn: Turn, moment: datetime) -> str:
    zone = turn.runtime.settings.timezone
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} ({zone})"


async def snooze_handler(turn: Turn) -> Reply:
    """``/persona snooze NAME``: ask about a due review again in 7 days."""
    if not turn.command.args:
        raise CommandError(needs_argument("snooze", "fiona"))
    persona = await resolve_persona(turn, turn.command.args)
    if not can_change(turn.user, turn.role, persona):
        raise PermissionDenied(
            not_allowed(f"snooze the review of {persona.name}", "its owner and admins")
        )
    turn.usage.persona_id, turn.usage.matched = persona.id, True
    runtime = turn.runtime
    now = runtime.clock()
    due = cycle_due(persona)
    if now < due:
        raise CommandError(
            f"{persona.name} is not due for review until {due:%Y-%m-%d}, so there is nothing "
            "to snooze."
        )
    rules = SchedulerConfig.from_settings(runtime.settings).rules
    cycle, snoozed = await runtime.db(
        outbox.snooze, runtime.engine, persona.id, cycle_key(due), now + rules.snooze_for, now
    )
    assert cycle.snoozed_until is not None
    if not snoozed:
        return Reply.text(
            f"The review of {persona.name} is already snoozed until "
            f"{_local(turn, cycle.snoozed_until)}."
        )
    return Reply.text(
        f"Snoozed: I will ask about {persona.name} again on {_local(turn, cycle.snoozed_until)}."
    )


def install(router: Router) -> None:
    """Add ``snooze``; make ``review`` and a saved edit (an edit counts as the review) also
    end the nudge cycle: cancel its queued reminders and forget its snoozes."""
    for verb, ended in (("review", _reviewed), ("save", _saved)):
        original = router.routes.get(verb)
        if original is not None:
            router.add(verb, _ending_cycle(original.handler, ended), advertise=original.advertise)
    router.add("snooze", snooze_handler, advertise=False)
    # Change notes after an edit go through the outbox, wherever the edit happened.
    router.runtime.change_notifier = ChangeNotes(router.runtime)


def _reviewed(reply: Reply) -> bool:
    return reply.kind != "error"


def _saved(reply: Reply) -> bool:
    return reply.kind == "card"


def _ending_cycle(handler: Handler, ended: Callable[[Reply], bool]) -> Handler:
    async def handle_and_end_cycle(turn: Turn) -> Reply:
        reply = await handler(turn)
        if turn.usage.persona_id is not None and ended(reply):
            runtime = turn.runtime
            await runtime.db(
                outbox.clear_cycle, runtime.engine, turn.usage.persona_id, runtime.clock()
            )
        return reply

    return handle_and_end_cycle
