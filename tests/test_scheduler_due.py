"""The rules of what is due, without a database: cycles, reminders, snoozes, escalations,
and the weekly digest in a time zone (across daylight saving time)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from scheduler.config import Rules
from scheduler.due import (
    OrgFacts,
    PersonaFacts,
    channel_address,
    digest_items,
    digest_slot,
    due_items,
    review_items,
)
from tests.scheduler_support import utc

DUE = utc(2030, 4, 1, 9, 30)
RULES = Rules(admins=("U_ADMIN", "boss@example.com"), managers=("m@example.com",))


def fiona(**changes: object) -> PersonaFacts:
    facts = {
        "persona_id": 7,
        "org_id": 1,
        "key": "finance-fiona",
        "name": "Finance Fiona",
        "owner": "fiona@example.com",
        "due_at": DUE,
    }
    facts.update(changes)
    return PersonaFacts(**facts)  # type: ignore[arg-type]


def keys(items: list) -> list[tuple[str, str, str]]:  # type: ignore[type-arg]
    return [i.key for i in items]


def test_nothing_before_the_due_date_then_the_nudge() -> None:
    assert review_items(fiona(), RULES, DUE - timedelta(seconds=1)) == []
    (nudge,) = review_items(fiona(), RULES, DUE)
    assert nudge.key == ("review", "persona:7", "2030-04-01")
    assert nudge.payload["to"] == {"email": "fiona@example.com"}
    assert nudge.persona_id == 7


def test_a_reminder_seven_days_after_the_nudge_was_delivered() -> None:
    assert keys(review_items(fiona(), RULES, DUE + timedelta(days=8))) == [
        ("review", "persona:7", "2030-04-01")  # never delivered: no reminder about it
    ]
    sent = fiona(nudge_sent_at=DUE + timedelta(days=2))  # the platform was down two days
    assert len(review_items(sent, RULES, DUE + timedelta(days=8, hours=23))) == 1
    items = review_items(sent, RULES, DUE + timedelta(days=9))
    assert keys(items)[1] == ("reminder", "persona:7", "2030-04-01#0")


def test_a_snooze_silences_the_owner_and_moves_the_reminder_to_its_end() -> None:
    snoozed = fiona(nudge_sent_at=DUE, snoozes=1, snoozed_until=DUE + timedelta(days=10))
    assert review_items(snoozed, RULES, DUE + timedelta(days=9)) == []
    (reminder,) = review_items(snoozed, RULES, DUE + timedelta(days=10))
    assert reminder.key == ("reminder", "persona:7", "2030-04-01#1")
    assert reminder.payload["snoozes"] == 1


def test_fourteen_days_overdue_escalates_to_each_admin_or_the_channel() -> None:
    at = DUE + timedelta(days=14)
    items = review_items(fiona(nudge_sent_at=DUE), RULES, at)
    escalations = [i for i in items if i.kind == "escalation"]
    assert [i.subject for i in escalations] == [
        "persona:7 to U_ADMIN",
        "persona:7 to boss@example.com",
    ]
    assert escalations[0].payload["to"] == {"user_id": "U_ADMIN"}
    channel = Rules(admins=("U_ADMIN",), escalation_channel="slack:C0PERSONAS")
    (escalation,) = [i for i in review_items(fiona(), channel, at) if i.kind == "escalation"]
    assert escalation.payload["to"] == {"channel": "C0PERSONAS", "platform": "slack"}
    # A snooze does not keep an overdue review from the admins.
    snoozed = fiona(snoozes=2, snoozed_until=at + timedelta(days=3))
    assert [i.kind for i in review_items(snoozed, RULES, at)] == ["escalation", "escalation"]
    # Nobody to escalate to is still recorded (and fails visibly), not dropped.
    (nobody,) = [i for i in review_items(fiona(), Rules(), at) if i.kind == "escalation"]
    assert nobody.payload["to"] is None


def test_channel_addresses() -> None:
    assert channel_address("C123") == {"channel": "C123"}
    assert channel_address("teams:19:abc@thread.tacv2") == {
        "channel": "19:abc@thread.tacv2",
        "platform": "teams",
    }


@pytest.mark.parametrize(
    ("now", "week", "at"),
    [
        # Berlin is UTC+1 in winter and UTC+2 in summer: Monday 09:00 local moves in UTC.
        (utc(2030, 3, 20, 12), "2030-W12", utc(2030, 3, 18, 8)),
        (utc(2030, 4, 3, 12), "2030-W14", utc(2030, 4, 1, 7)),
        # Sunday 23:30 UTC is already Monday in Berlin: a new ISO week there.
        (utc(2030, 3, 31, 23, 30), "2030-W14", utc(2030, 4, 1, 7)),
    ],
)
def test_the_digest_slot_follows_the_time_zone(now: datetime, week: str, at: datetime) -> None:
    rules = Rules(timezone="Europe/Berlin", digest_weekday=0, digest_hour=9)
    assert digest_slot(now, rules) == (week, at)


def test_one_digest_per_week_per_manager_and_admin_only_after_its_time() -> None:
    org = OrgFacts(1, utc(2029, 1, 1))
    monday_9 = utc(2030, 3, 18, 9)
    assert digest_items(org, RULES, monday_9 - timedelta(minutes=1)) == []
    items = digest_items(org, RULES, monday_9)
    assert [i.subject for i in items] == [
        "org:1 to U_ADMIN",
        "org:1 to boss@example.com",
        "org:1 to m@example.com",
    ]
    assert {i.period for i in items} == {"2030-W12"}
    # Down all week: on Sunday the same (one) digest is still due, not a second one.
    assert keys(digest_items(org, RULES, utc(2030, 3, 24, 20))) == keys(items)
    # An organization created after this week's digest time waits for next week.
    assert digest_items(OrgFacts(1, monday_9 + timedelta(hours=1)), RULES, utc(2030, 3, 20)) == []


def test_everything_due_comes_in_key_order() -> None:
    at = DUE + timedelta(days=15)
    personas = [fiona(persona_id=9, key="b"), fiona(persona_id=3, key="a", nudge_sent_at=DUE)]
    items = due_items(personas, [OrgFacts(1, utc(2029, 1, 1))], RULES, at)
    assert keys(items) == sorted(keys(items))
    assert {i.kind for i in items} == {"review", "reminder", "escalation", "digest"}


def test_other_organizations_never_reach_the_home_organizations_people() -> None:
    rules = Rules(admins=("U_ADMIN",), managers=("m@example.com",), home_org=1)
    at = DUE + timedelta(days=15)
    elsewhere = review_items(fiona(org_id=2), rules, at)
    assert sorted((i.kind, str(i.payload["to"])) for i in elsewhere) == [
        ("escalation", "None"),  # nobody: recorded and failed visibly, never sent across
        ("review", "{'email': 'fiona@example.com'}"),  # its own owner is still nudged
    ]
    assert digest_items(OrgFacts(2, utc(2029, 1, 1)), rules, at) == []
    assert len(digest_items(OrgFacts(1, utc(2029, 1, 1)), rules, at)) == 2
