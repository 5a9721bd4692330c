"""What the scheduler says: review nudges, reminders, escalations, alerts and the weekly
digest, as neutral Replies that every platform renders.

The nudge's buttons go through the same router as typed commands: "Still accurate" runs
``review KEY``, "Edit" runs ``edit KEY``, "Snooze 7 days" runs ``snooze KEY``, each as the
person who pressed it. Messages are built when they are sent (``reply_for``), from the data
of that moment; a message that is no longer due (the persona was reviewed meanwhile) is not
built at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot import summaries
from bot.dashboard import dashboard_url_sync
from bot.model import Block, Button, Buttons, Context, Fields, Header, Reply, Text
from persona_store import outbox
from persona_store.outbox import OutboxRow
from persona_store.records import StoredPersona
from persona_store.summary import summarize_days
from scheduler.activity import ReviewActivity, review_activity
from scheduler.change_notes import KIND as CHANGE_KIND
from scheduler.change_notes import change_note_reply
from scheduler.due import cycle_due, cycle_key

if TYPE_CHECKING:
    from bot.runtime import Runtime


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


def review_buttons(key: str, *, snooze: bool = True) -> Buttons:
    buttons = [
        Button("Still accurate", "review", key, "primary"),
        Button("Edit", "edit", key),
    ]
    if snooze:
        buttons.append(Button("Snooze 7 days", "snooze", key))
    return Buttons(tuple(buttons))


def activity_blocks(activity: ReviewActivity) -> list[Block]:
    pairs = [("Lookups", f"{activity.lookups:,}")]
    misses = f"{activity.near_misses:,}"
    if activity.near_miss_examples:
        misses += " (" + ", ".join(f"'{q}'" for q in activity.near_miss_examples) + ")"
    pairs.append(("Searches that nearly found it", misses))
    pairs.append(
        (
            "Feedback",
            f"{activity.thumbs_up} 👍, {activity.thumbs_down} 👎, "
            f"{activity.comment_count} comment{'s' if activity.comment_count != 1 else ''}",
        )
    )
    if activity.deals_won or activity.deals_lost:
        pairs.append(
            ("Deals it was used on", f"{activity.deals_won} won, {activity.deals_lost} lost")
        )
    blocks: list[Block] = [Fields(tuple(pairs), title=f"Since {_day(activity.since)}")]
    if activity.comments:
        blocks.append(Text(title="Latest comments", items=activity.comments))
    return blocks


def nudge_reply(
    persona: StoredPersona, activity: ReviewActivity, now: datetime, *, reminder: bool = False
) -> Reply:
    """The owner's review nudge (or its reminder) with what changed since the last review."""
    name, every = persona.name, persona.spec.review_every_days
    due = cycle_due(persona)
    reviewed = persona.last_reviewed_at or persona.created_at
    if reminder:
        late = max(0, (now - due).days)
        header = f"Reminder: {name} is waiting for its review"
        intro = (
            f"{name} was due for review on {_day(due)}"
            + (f" ({late} day{'s' if late != 1 else ''} ago)" if late else "")
            + ". Is it still accurate?"
        )
    else:
        header = f"Time to review {name}"
        intro = (
            f"{name} was last reviewed on {_day(reviewed)}; it is reviewed every {every} days. "
            "Is it still accurate?"
        )
    blocks: list[Block] = [Header(header), Text(intro), *activity_blocks(activity)]
    blocks.append(review_buttons(persona.key))
    blocks.append(
        Context(
            f"You get this because you own {name}. Still accurate marks it reviewed; "
            "Edit opens the editor; Snooze asks again in 7 days."
        )
    )
    return Reply(summary=header, blocks=tuple(blocks), ephemeral=False, persona_key=persona.key)


def escalation_reply(
    persona: StoredPersona, activity: ReviewActivity, now: datetime, nudged: datetime | None
) -> Reply:
    """To the admins: a review 14 days overdue."""
    name = persona.name
    late = max(0, (now - cycle_due(persona)).days)
    header = f"{name} is {late} days overdue for review"
    owner = persona.spec.owner
    if owner is None:
        intro = f"{name} has no owner, so nobody was asked to review it."
    elif nudged is None:
        intro = f"Its owner {owner} has not been reached (see the alert about it)."
    elif now - nudged < timedelta(days=7):
        intro = (
            f"Its owner {owner} was only asked on {_day(nudged)}: persona-bot was not "
            f"running when the review fell due on {_day(cycle_due(persona))}."
        )
    else:
        intro = (
            f"Its owner {owner} was asked on {_day(nudged)} and has neither reviewed "
            "nor snoozed it since."
        )
    blocks: list[Block] = [
        Header(header),
        Text(intro),
        *activity_blocks(activity),
        Buttons(
            (
                Button("Mark reviewed", "review", persona.key, "primary"),
                Button("Edit", "edit", persona.key),
            )
        ),
        Context(
            "You get this as a persona-bot admin. Reviewing it, or naming another owner in the "
            "persona file and importing it, ends the reminders."
        ),
    ]
    return Reply(summary=header, blocks=tuple(blocks), ephemeral=False, persona_key=persona.key)


def alert_reply(payload: Mapping[str, Any]) -> Reply:
    """To the admins: a message that could not reach its recipient, or may not have."""
    reason = payload.get("reason")
    about = str(payload.get("about_label", "message"))
    to = str(payload.get("about_to", "its recipient"))
    detail = str(payload.get("detail") or "")
    key = payload.get("persona_key")
    name = payload.get("persona_name")
    if reason == "no-recipient":
        header = (
            f"{name} is due for review and has no owner" if name else "A message had no recipient"
        )
        text = (
            f"Nobody was asked to review {name}. Set `owner:` (an email or a Slack or Teams user "
            "id) in the persona file and import it, or review it yourself."
            if name
            else f"The {about} had nobody to go to."
        )
    elif reason == "uncertain":
        header = f"The {about} may not have arrived"
        text = (
            f"Sending the {about} to {to} was cut short ({detail}). It was not sent again, "
            "so that nobody gets it twice. If they did not get it, run "
            f"`persona-bot nudges --resend {payload.get('about_id')}`."
        )
    else:
        header = f"The {about} could not be delivered"
        text = (
            f"It could not be delivered to {to}: {detail}. Make sure the persona's owner is an "
            "email or user id known in Slack or Teams (in Teams they must have talked to the bot "
            "once), then import the persona file again"
            + (f", or review {name} yourself." if name else ".")
        )
    blocks: list[Block] = [Header(header), Text(text)]
    if key and reason != "uncertain":
        blocks.append(Buttons((Button("Mark reviewed", "review", str(key), "primary"),)))
    blocks.append(Context("You get this as a persona-bot admin."))
    return Reply(summary=header, blocks=tuple(blocks), ephemeral=False)


def _trend(now_count: int, before: int) -> str:
    if now_count > before:
        return f"{now_count:,} ↑ (from {before:,})"
    if now_count < before:
        return f"{now_count:,} ↓ (from {before:,})"
    return f"{now_count:,} (same)"


def digest_reply(runtime: Runtime, org_id: int, now: datetime) -> Reply:
    """The weekly digest: the usage summary of the last 7 days, compact, with a signed link
    to the dashboard."""
    summary = summarize_days(runtime.engine, org_id, 7, now)
    return summaries.digest_reply(summary, dashboard_url_sync(runtime, org_id, now))


def reply_for(runtime: Runtime, row: OutboxRow, now: datetime) -> tuple[Reply | None, str]:
    """The message of an outbox row, built now; ``(None, reason)`` when it is no longer due."""
    payload = row.payload
    if row.kind == "digest":
        reply = digest_reply(runtime, row.org_id, now)
    elif row.kind == "alert":
        reply = alert_reply(payload)
    elif row.kind == CHANGE_KIND:
        persona = runtime.store.get_persona(row.org_id, str(payload.get("persona_key")))
        if persona is None or persona.id != payload.get("persona_id") or persona.archived:
            return None, "the persona was archived"
        reply = change_note_reply(payload)
    elif row.kind in outbox.CYCLE_KINDS:
        persona = runtime.store.get_persona(row.org_id, str(payload.get("persona_key")))
        if persona is None or persona.id != payload.get("persona_id") or persona.archived:
            return None, "the persona was archived"
        if cycle_key(cycle_due(persona)) != payload.get("due_on"):
            return None, "the persona was reviewed or updated since"
        if row.kind == "reminder":
            cycle = outbox.review_cycles(runtime.engine, [persona.id]).get(persona.id)
            snoozes = (
                cycle.snoozes if cycle is not None and cycle.due_on == payload["due_on"] else 0
            )
            if snoozes != payload.get("snoozes", 0):
                return None, "the owner snoozed it again"
        since = persona.last_reviewed_at or persona.created_at
        others = runtime.store.list_personas(row.org_id)
        activity = review_activity(runtime.engine, persona, others, since)
        if row.kind == "escalation":
            nudge = outbox.existing(
                runtime.engine, [("review", f"persona:{persona.id}", str(payload["due_on"]))]
            )
            sent = next(iter(nudge.values())).sent_at if nudge else None
            reply = escalation_reply(persona, activity, now, sent)
        else:
            reply = nudge_reply(persona, activity, now, reminder=row.kind == "reminder")
    else:
        return None, f"unknown kind {row.kind!r}"
    data = {**reply.data, "outbox_id": row.id, "outbox_key": "/".join(row.key)}
    return (
        Reply(
            summary=reply.summary,
            blocks=reply.blocks,
            kind=reply.kind,
            ephemeral=False,
            persona_key=reply.persona_key,
            data=data,
        ),
        "",
    )
