"""The verbs behind the nudge's buttons: ``snooze``, ``edit``, and a ``review`` that also
ends the nudge cycle.

They are ordinary router verbs, so a button pressed in Slack or Teams and the same words
typed anywhere go through the same handler, as the person who pressed or typed them.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.errors import CommandError, PermissionDenied
from bot.handlers import resolve_persona
from bot.messages import needs_argument, not_allowed
from bot.model import Reply
from bot.permissions import can_change
from bot.router import Router, Turn
from persona_store import outbox
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


async def edit_handler(turn: Turn) -> Reply:
    """``/persona edit NAME``: how to update a persona (until there is an editor in chat)."""
    if not turn.command.args:
        raise CommandError(needs_argument("edit", "fiona"))
    persona = await resolve_persona(turn, turn.command.args)
    turn.usage.persona_id, turn.usage.matched = persona.id, True
    if not can_change(turn.user, turn.role, persona):
        owner = f" ({persona.spec.owner})" if persona.spec.owner else ""
        return Reply.text(
            f"Only the owner of {persona.name}{owner} and admins can change it. To tell the "
            f"owner what should change: `/persona feedback {persona.key} ...`."
        )
    admins = sorted(turn.runtime.settings.admins)
    ask = f" ({', '.join(admins[:3])})" if admins else ""
    return Reply.text(
        f"To update {persona.name}: export the personas with `persona-bot export -o "
        f"personas.yaml`, change the entry with key `{persona.key}`, and load it with "
        "`persona-bot import personas.yaml` (it checks the whole file and changes nothing if "
        "anything is wrong). Saving a change counts as a review. If you cannot run "
        f"persona-bot yourself, send the changes to an admin{ask}. If it is still accurate, "
        f"`/persona review {persona.key}` is all it takes."
    )


def install(router: Router) -> None:
    """Add ``snooze`` and (unless an editor provides it) ``edit``; make ``review`` also end
    the nudge cycle: cancel its queued reminders and forget its snoozes."""
    original = router.routes.get("review")
    if original is not None:
        review = original.handler

        async def review_and_end_cycle(turn: Turn) -> Reply:
            reply = await review(turn)
            if turn.usage.persona_id is not None and reply.kind != "error":
                runtime = turn.runtime
                await runtime.db(
                    outbox.clear_cycle, runtime.engine, turn.usage.persona_id, runtime.clock()
                )
            return reply

        router.add("review", review_and_end_cycle, advertise=original.advertise)
    router.add("snooze", snooze_handler, advertise=False)
    if "edit" not in router.routes:
        router.add("edit", edit_handler, advertise=False)
