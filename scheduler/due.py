"""What is due at a given moment: pure rules, no database, no clock of their own.

A persona's review cycle is identified by its due date ``D = last_reviewed_at +
review_every_days``. Within a cycle:

* at ``D`` its owner gets the review nudge, key (review, persona:ID, D);
* 7 days after the nudge was delivered without any action, a reminder, key (reminder,
  persona:ID, D#0); a snooze instead delays the next reminder to the end of the snooze
  (D#1 after the first snooze, D#2 after the second, ...), and while a snooze runs the owner
  hears nothing;
* at ``D + 14 days`` (14 days overdue) an escalation to each admin, or to the escalation
  channel when one is configured, key (escalation, "persona:ID to WHO", D). Snoozes do not
  delay it: the owner may postpone their own prompts, not the admins' view of an overdue
  review.

A review (or any update of the persona) moves ``D`` and so starts a new cycle.

The weekly digest goes to every manager and admin at the configured weekday and hour in the
configured time zone, key (digest, "org:ID to WHO", ISO week). Only the current week's
digest is ever due, so a bot that was down for three weeks sends one digest, not three; and
never one for a week whose digest time came before the organization existed.

Managers, admins and the escalation channel belong to the home organization: the owners of
other organizations' personas get their nudges, but those organizations' escalations find
nobody (and fail visibly) rather than cross over to another company's people.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from persona_store.outbox import DueItem
from persona_store.records import StoredPersona
from scheduler.config import Rules

Address = dict[str, str]


@dataclass(frozen=True)
class PersonaFacts:
    """What the rules need to know about one active persona."""

    persona_id: int
    org_id: int
    key: str
    name: str
    owner: str | None
    due_at: datetime
    snoozed_until: datetime | None = None  # in this cycle
    snoozes: int = 0  # in this cycle
    nudge_sent_at: datetime | None = None  # when this cycle's nudge was delivered


@dataclass(frozen=True)
class OrgFacts:
    org_id: int
    created_at: datetime


def cycle_due(persona: StoredPersona) -> datetime:
    """When the persona's current review cycle falls due."""
    reviewed = persona.last_reviewed_at or persona.created_at
    return reviewed + timedelta(days=persona.spec.review_every_days)


def cycle_key(due_at: datetime) -> str:
    """The period of a review cycle: its due date (UTC), e.g. 2027-03-15."""
    return due_at.astimezone(UTC).date().isoformat()


def address(who: str) -> Address:
    """A person named in settings or a persona file: an email or a platform user id."""
    who = who.strip()
    return {"email": who} if "@" in who else {"user_id": who}


def channel_address(channel: str) -> Address:
    """``slack:C0123`` or ``teams:19:abc...@thread.tacv2`` picks the platform; a bare id is
    tried on every platform."""
    platform, sep, rest = channel.partition(":")
    if sep and platform.lower() in ("slack", "teams") and rest:
        return {"channel": rest, "platform": platform.lower()}
    return {"channel": channel}


def describe(to: Address | None) -> str:
    if not to:
        return "nobody"
    if "channel" in to:
        return f"#{to['channel']}" + (f" ({to['platform']})" if "platform" in to else "")
    return to.get("email") or to.get("user_id") or "nobody"


def admin_addresses(rules: Rules, org_id: int | None = None) -> list[Address]:
    """Where escalations and alerts about ``org_id`` go: the escalation channel, else every
    admin; nobody for an organization other than the home one."""
    if rules.home_org is not None and org_id is not None and org_id != rules.home_org:
        return []
    if rules.escalation_channel:
        return [channel_address(rules.escalation_channel)]
    return [address(a) for a in sorted(rules.admins)]


def digest_addresses(rules: Rules) -> list[Address]:
    return [address(a) for a in sorted(set(rules.managers) | set(rules.admins))]


def review_items(p: PersonaFacts, rules: Rules, now: datetime) -> list[DueItem]:
    """The nudge, reminder and escalations of one persona's cycle that are due at ``now``."""
    if now < p.due_at:
        return []
    period = cycle_key(p.due_at)
    subject = f"persona:{p.persona_id}"
    owner = address(p.owner) if p.owner else None
    base = {
        "persona_id": p.persona_id,
        "persona_key": p.key,
        "persona_name": p.name,
        "owner": p.owner,
        "due_on": period,
        "due_at": p.due_at.isoformat(),
    }
    items: list[DueItem] = []
    snoozed = p.snoozed_until is not None and now < p.snoozed_until
    # Once the owner has snoozed, they know: the reminders carry the cycle from there.
    if p.snoozes == 0:
        items.append(
            DueItem(
                "review",
                subject,
                period,
                p.org_id,
                {**base, "to": owner, "label": f"review nudge for {p.name}"},
                p.persona_id,
            )
        )
    if p.snoozes == 0:
        remind_at = p.nudge_sent_at + rules.reminder_after if p.nudge_sent_at else None
    else:
        remind_at = p.snoozed_until
    if remind_at is not None and now >= remind_at and not snoozed:
        items.append(
            DueItem(
                "reminder",
                subject,
                f"{period}#{p.snoozes}",
                p.org_id,
                {
                    **base,
                    "to": owner,
                    "snoozes": p.snoozes,
                    "label": f"review reminder for {p.name}",
                },
                p.persona_id,
            )
        )
    if now >= p.due_at + rules.escalate_after:
        admins: list[Address | None] = [*admin_addresses(rules, p.org_id)] or [None]
        for to in admins:  # None: nobody to tell, recorded as a failure
            items.append(
                DueItem(
                    "escalation",
                    f"{subject} to {describe(to)}",
                    period,
                    p.org_id,
                    {**base, "to": to, "label": f"overdue review escalation for {p.name}"},
                    p.persona_id,
                )
            )
    return items


def digest_slot(now: datetime, rules: Rules) -> tuple[str, datetime]:
    """The ISO week ``now`` falls in (in the configured time zone) and the moment of that
    week's digest, in UTC."""
    zone = ZoneInfo(rules.timezone)
    local = now.astimezone(zone)
    year, week, weekday = local.isocalendar()
    day = local.date() - timedelta(days=weekday - 1) + timedelta(days=rules.digest_weekday)
    at = datetime.combine(day, time(rules.digest_hour), tzinfo=zone).astimezone(UTC)
    return f"{year}-W{week:02d}", at


def digest_items(org: OrgFacts, rules: Rules, now: datetime) -> list[DueItem]:
    if rules.home_org is not None and org.org_id != rules.home_org:
        return []  # the managers and admins are the home organization's
    week, at = digest_slot(now, rules)
    if now < at or org.created_at >= at:
        return []
    return [
        DueItem(
            "digest",
            f"org:{org.org_id} to {describe(to)}",
            week,
            org.org_id,
            {"to": to, "week": week, "label": f"weekly digest {week}"},
        )
        for to in digest_addresses(rules)
    ]


def due_items(
    personas: Iterable[PersonaFacts], orgs: Sequence[OrgFacts], rules: Rules, now: datetime
) -> list[DueItem]:
    """Everything due at ``now``, in key order."""
    items: list[DueItem] = []
    for p in personas:
        items.extend(review_items(p, rules, now))
    for org in orgs:
        items.extend(digest_items(org, rules, now))
    return sorted(items, key=lambda i: i.key)
