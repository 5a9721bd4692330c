"""A year of review nudges and digests, walked with the injectable clock.

Every six simulated hours the scheduler ticks and the worker delivers, exactly as the
service does each minute; owners answer the messages they get by pressing their buttons,
each in their own way. Every message is checked by kind and by the day it arrived:

* Pat reviews at once: a nudge every 90 days, nothing else.
* Lee reviews when reminded (7 days after the nudge).
* Eve only reviews the day after her review was escalated to the admin (14 days overdue).
* Sam snoozes 3 days after the nudge; the reminder comes when the snooze ends (10 days
  after the nudge, not 7), and Sam reviews then.
* Abe never answers: one nudge, one reminder, one escalation, then only the digests show it.
* Gus's owner is unknown on every platform: the admin is alerted instead (never nowhere),
  and marks it reviewed from the alert.

Pat and Gus were last reviewed when the walk starts, the others 89 days earlier (so their
first nudge comes on day 1): with those starts four review cycles fall in the year for every
persona that gets reviewed, and each owner gets exactly four nudges. A review starts the next
cycle exactly ``review_every_days`` after it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.handlers import default_router
from bot.runtime import Runtime
from bot.settings import Settings
from persona_store import outbox
from scheduler.config import SchedulerConfig
from scheduler.service import SchedulerService
from scheduler.verbs import install
from tests.fakes.platform import RecordingNotifier, Sent
from tests.scheduler_support import FakeClock, persona, press, utc

pytestmark = pytest.mark.slow  # a year of six-hour ticks: about five seconds

START = utc(2030, 1, 1)  # a Tuesday
END = START + timedelta(days=365)
STEP = timedelta(hours=6)
ADMIN = "admin@example.com"
MANAGER = "manager@example.com"

OWNERS = {
    "prompt-pat": "pat@example.com",
    "late-lee": "lee@example.com",
    "escalated-eve": "eve@example.com",
    "snoozy-sam": "sam@example.com",
    "absent-abe": "abe@example.com",
    "ghosted-gus": "ghost@nowhere.example",
}


def day(sent: Sent) -> float:
    return (sent.at - START) / timedelta(days=1)


@pytest.fixture
def walk_runtime(sqlite_url: str) -> Iterator[tuple[Runtime, FakeClock]]:
    settings = Settings.from_env(
        {
            "PERSONA_BOT_ADMINS": ADMIN,
            "PERSONA_BOT_MANAGERS": MANAGER,
            "PERSONA_BOT_TIMEZONE": "Europe/Berlin",
            "PERSONA_BOT_DIGEST_DAY": "monday",
            "PERSONA_BOT_DIGEST_HOUR": "9",
        },
        database_url=sqlite_url,
    )
    clock = FakeClock(START)
    runtime = Runtime.open(settings, seed=False, clock=clock)
    store, org = runtime.store, runtime.default_org_id
    for key, owner in OWNERS.items():
        reviewed = START if key in ("prompt-pat", "ghosted-gus") else START - timedelta(days=89)
        store.import_personas(org, [persona(key, owner)], "test", now=reviewed)
    yield runtime, clock
    runtime.close()


async def test_a_year_of_nudges_reminders_escalations_and_digests(
    walk_runtime: tuple[Runtime, FakeClock],
) -> None:
    runtime, clock = walk_runtime
    known = [o for o in OWNERS.values() if o != OWNERS["ghosted-gus"]] + [ADMIN, MANAGER]
    notifier = RecordingNotifier("slack", clock, known)
    runtime.notifiers["slack"] = notifier
    runtime.home_workspaces["slack"] = {"T1"}
    router = default_router(runtime)
    install(router)
    service = SchedulerService(runtime, SchedulerConfig.from_settings(runtime.settings))
    people = {owner: f"U_{key.split('-')[1].upper()}" for key, owner in OWNERS.items()}
    people[ADMIN] = "U_ADMIN"
    later: list[tuple[object, Callable[[], Awaitable[object]]]] = []

    def act(sent: Sent, label: str, *, after: timedelta = timedelta(0)) -> None:
        async def go() -> None:
            answer = await press(router, sent.reply, label, user=people[sent.to], email=sent.to)
            assert answer.kind != "error", answer.summary

        later.append((clock.now + after, go))

    def respond(sent: Sent) -> None:
        """What each person does with the message they just got."""
        key = sent.reply.persona_key or str(sent.reply.data.get("outbox_key"))
        prompt = sent.kind == "review" and sent.to == OWNERS["prompt-pat"]
        when_reminded = sent.kind == "reminder" and sent.to in (
            OWNERS["late-lee"],
            OWNERS["snoozy-sam"],
        )
        if prompt or when_reminded:
            act(sent, "Still accurate")
        elif sent.kind == "review" and sent.to == OWNERS["snoozy-sam"]:
            act(sent, "Snooze 7 days", after=timedelta(days=3))
        elif sent.kind == "escalation" and key == "escalated-eve":
            # Eve hears from the admin and presses the button of her own reminder a day later.
            reminder = next(s for s in reversed(notifier.sent) if s.to == OWNERS[key])
            act(reminder, "Still accurate", after=timedelta(days=1))
        elif sent.kind == "alert":
            act(sent, "Mark reviewed")

    seen = 0
    while clock.now <= END:
        ticked = await service.tick()
        assert ticked is not None
        if ticked.queued:  # the service wakes its worker the same way
            await service.worker.run_until_idle()
        while True:
            for sent in notifier.sent[seen:]:
                respond(sent)
            seen = len(notifier.sent)
            due_now = [go for at, go in later if at <= clock.now]  # type: ignore[operator]
            later[:] = [(at, go) for at, go in later if at > clock.now]  # type: ignore[operator]
            if not due_now:
                break
            for go in due_now:
                await go()
            await service.worker.run_until_idle()  # alerts raised by the answers, if any
        clock.now += STEP

    def timeline(to: str) -> list[tuple[str, float]]:
        return [(s.kind, day(s)) for s in notifier.sent if s.to == to]

    assert timeline(OWNERS["prompt-pat"]) == [("review", d) for d in (90, 180, 270, 360)]
    assert timeline(OWNERS["late-lee"]) == [
        (kind, start + offset)
        for start in (1, 98, 195, 292)
        for kind, offset in (("review", 0), ("reminder", 7))
    ]
    assert timeline(OWNERS["snoozy-sam"]) == [
        (kind, start + offset)
        for start in (1, 101, 201, 301)
        for kind, offset in (("review", 0), ("reminder", 10))
    ]
    assert timeline(OWNERS["escalated-eve"]) == [
        (kind, start + offset)
        for start in (1, 106, 211, 316)
        for kind, offset in (("review", 0), ("reminder", 7))
    ]
    assert timeline(OWNERS["absent-abe"]) == [("review", 1), ("reminder", 8)]
    assert timeline(OWNERS["ghosted-gus"]) == []

    to_admin = [(s.kind, s.reply.persona_key or s.reply.summary, day(s)) for s in notifier.sent]
    escalations = [(k, d) for kind, k, d in to_admin if kind == "escalation"]
    assert escalations == sorted(
        [("escalated-eve", d) for d in (15, 120, 225, 330)] + [("absent-abe", 15)],
        key=lambda e: e[1],
    )
    alerts = [s for s in notifier.sent if s.kind == "alert"]
    assert [(s.to, day(s)) for s in alerts] == [(ADMIN, d) for d in (90, 180, 270, 360)]
    assert all("Ghosted Gus" in s.reply.summary + str(s.reply.blocks) for s in alerts)

    # Exactly four nudges for every owner who reviews; one per cycle, never twice.
    nudges = Counter(s.reply.persona_key for s in notifier.sent if s.kind == "review")
    assert nudges == {k: 4 for k in OWNERS if k not in ("absent-abe", "ghosted-gus")} | {
        "absent-abe": 1
    }
    keys = [s.key for s in notifier.sent]
    assert len(keys) == len(set(keys)), "a message was delivered twice"

    # One digest per Monday 09:00 Berlin time to the admin and to the manager, delivered at
    # the first tick after it (the walk ticks every six hours). The walk starts on a Tuesday
    # in an organization that existed before: that week's digest is caught up at once.
    berlin = ZoneInfo("Europe/Berlin")
    mondays = []
    moment = START - timedelta(days=6)
    while moment <= END:
        local = moment.astimezone(berlin)
        if local.weekday() == 0:
            at = local.replace(hour=9, minute=0).astimezone(START.tzinfo)
            tick = max(START, START + STEP * -(-(at - START) // STEP))
            if tick <= END:
                mondays.append(tick)
        moment += timedelta(days=1)
    assert mondays[0] == START and len(mondays) == 53
    for who in (ADMIN, MANAGER):
        digests = [s.at for s in notifier.sent if s.kind == "digest" and s.to == who]
        assert digests == mondays

    rows = outbox.rows(runtime.engine)
    states = Counter(r.state for r in rows)
    assert states == {"sent": len(notifier.sent), "alerted": 4}, states
    # Gus's nudges were never lost: each is recorded as alerted, with its alert sent.
    gus = [r for r in rows if r.kind == "review" and r.state == "alerted"]
    assert len(gus) == 4 and all("not known on slack" in (r.last_error or "") for r in gus)
