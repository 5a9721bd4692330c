"""What people see and do: the nudge and digest messages, the snooze / edit / review verbs
behind their buttons, and ``persona-bot nudges``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from bot.cli import main
from bot.handlers import default_router
from bot.model import Buttons, Command, Fields, Reply
from bot.router import Router
from bot.runtime import Runtime
from bot.settings import Settings
from persona_store import outbox
from persona_store.db import create_db_engine
from persona_store.models import Deal
from persona_store.outbox import DueItem
from scheduler.messages import digest_reply, reply_for
from scheduler.verbs import install
from tests.conftest import command
from tests.scheduler_support import FakeClock, persona

# Usage events carry the real time, so this world's clock starts at the real hour.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
OWNER = "fiona@example.com"


@pytest.fixture
def world(sqlite_url: str) -> Iterator[tuple[Runtime, Router, FakeClock]]:
    clock = FakeClock(NOW)
    settings = Settings.from_env({"PERSONA_BOT_ADMINS": "U_ADMIN"}, database_url=sqlite_url)
    runtime = Runtime.open(settings, seed=False, clock=clock)
    org = runtime.default_org_id
    runtime.store.import_personas(
        org,
        [persona("finance-fiona", OWNER), persona("finance-frank", "frank@example.com")],
        "test",
        now=NOW - timedelta(days=95),
    )
    runtime.store.import_personas(org, [persona("it-ivan", None)], "test", now=NOW)
    runtime.home_workspaces["slack"] = {"T1"}
    router = default_router(runtime)
    install(router)
    yield runtime, router, clock
    runtime.close()


async def say(router: Router, text: str, user: str = "U_FIONA", email: str | None = OWNER) -> Reply:
    return await router.dispatch(command(router, text, user=user, email=email))


def nudge_row(runtime: Runtime, key: str = "finance-fiona") -> outbox.OutboxRow:
    p = runtime.store.get_persona(runtime.default_org_id, key)
    assert p is not None
    due = (p.last_reviewed_at or p.created_at) + timedelta(days=90)
    item = DueItem(
        "review",
        f"persona:{p.id}",
        due.date().isoformat(),
        p.org_id,
        {"persona_id": p.id, "persona_key": key, "due_on": due.date().isoformat(), "to": {}},
        p.id,
    )
    outbox.enqueue(runtime.engine, [item], NOW)
    return outbox.existing(runtime.engine, [item.key])[item.key]


async def test_the_nudge_says_what_changed_and_offers_three_buttons(
    world: tuple[Runtime, Router, FakeClock],
) -> None:
    runtime, router, _ = world
    for text in ("fiona", "finance fiona", "finanse", "fin"):  # two finds, near misses
        await say(router, text, user="U_SOMEONE", email=None)
    await say(
        router, "feedback finance-fiona the objections are out of date", user="U_X", email=None
    )
    fiona = runtime.store.get_persona(runtime.default_org_id, "finance-fiona")
    assert fiona is not None
    runtime.store.link_deal(runtime.default_org_id, "D-1", fiona.key, source="fit", user_id="U")
    with runtime.store.session() as s, s.begin():
        s.execute(update(Deal).values(outcome="won", closed_at=datetime.now(UTC)))
    runtime.usage.flush()

    reply, reason = reply_for(runtime, nudge_row(runtime), NOW)
    assert reply is not None, reason
    assert reply.summary == "Time to review Finance Fiona" and not reply.ephemeral
    (fields,) = [b for b in reply.blocks if isinstance(b, Fields)]
    facts = dict(fields.pairs)
    assert facts["Lookups"] == "2"
    assert facts["Searches that nearly found it"].startswith("2 (")  # 'finanse' and 'fin'
    assert facts["Feedback"] == "0 👍, 0 👎, 1 comment"
    assert facts["Deals it was used on"] == "1 won, 0 lost"
    assert "the objections are out of date" in str(reply.blocks)
    (buttons,) = [b for b in reply.blocks if isinstance(b, Buttons)]
    assert [(b.label, b.verb, b.args) for b in buttons.buttons] == [
        ("Still accurate", "review", "finance-fiona"),
        ("Edit", "edit", "finance-fiona"),
        ("Snooze 7 days", "snooze", "finance-fiona"),
    ]
    assert reply.data["outbox_key"].startswith(f"review/persona:{fiona.id}/")  # type: ignore[union-attr]


async def test_a_nudge_no_longer_due_is_not_built(world: tuple[Runtime, Router, FakeClock]) -> None:
    runtime, router, _ = world
    row = nudge_row(runtime)
    assert "marked reviewed" in (await say(router, "review finance-fiona")).summary
    assert reply_for(runtime, row, NOW) == (None, "the persona was reviewed or updated since")


async def test_snooze_edit_and_review_from_the_buttons(
    world: tuple[Runtime, Router, FakeClock],
) -> None:
    runtime, router, clock = world
    fiona = runtime.store.get_persona(runtime.default_org_id, "finance-fiona")
    assert fiona is not None
    stranger = await say(router, "snooze finance-fiona", user="U_OTHER", email=None)
    assert stranger.kind == "error" and "its owner and admins" in stranger.summary
    not_due = await say(router, "snooze ivan", user="U_ADMIN", email=None)
    assert not_due.kind == "error" and "not due for review until" in not_due.summary

    snoozed = await say(router, "snooze finance-fiona")
    until = f"{NOW + timedelta(days=7):%Y-%m-%d %H:%M}"
    assert snoozed.summary == f"Snoozed: I will ask about Finance Fiona again on {until} (UTC)."
    again = await say(router, "snooze finance-fiona")
    assert f"already snoozed until {until}" in again.summary
    assert outbox.review_cycles(runtime.engine, [fiona.id])[fiona.id].snoozes == 1

    # "Edit" opens the editor for the owner; a stranger is refused politely.
    edit = await say(router, "edit finance-fiona")
    assert edit.kind == "form" and edit.form is not None
    other = await say(router, "edit finance-fiona", user="U_OTHER", email=None)
    assert other.kind == "error" and "its owner and admins" in other.summary

    # A reminder is queued; the review ends the cycle: reminder cancelled, snoozes gone.
    outbox.enqueue(
        runtime.engine,
        [DueItem("reminder", f"persona:{fiona.id}", "x#1", fiona.org_id, {}, fiona.id)],
        clock.now,
    )
    reviewed = await say(router, "review finance-fiona")
    assert "marked reviewed" in reviewed.summary
    assert outbox.review_cycles(runtime.engine, [fiona.id]) == {}
    assert [r.state for r in outbox.rows(runtime.engine)] == ["cancelled"]
    assert runtime.store.history(fiona.org_id, fiona.key)[0].action == "reviewed"


async def test_the_digest_sums_up_the_week(world: tuple[Runtime, Router, FakeClock]) -> None:
    runtime, router, _ = world
    for text in ("fiona", "fiona", "zzz-nothing"):
        await say(router, text, user="U_SOMEONE", email=None)
    runtime.usage.flush()
    reply = digest_reply(runtime, runtime.default_org_id, datetime.now(UTC))
    text = str(reply.blocks)
    assert reply.kind == "stats" and not reply.ephemeral
    assert "2 persona lookups" in text and "Most used: Finance Fiona (2 lookups)" in text
    assert "Nobody used: Finance Frank, It Ivan." in text
    assert "Top knowledge gaps: “zzz-nothing” ×1" in text
    # The link in the digest opens this organization's dashboard.
    url = str(reply.data["dashboard_url"])
    assert url.startswith("http://127.0.0.1:3978/dashboard?t=")


def run_cli(argv: list[str], db: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(
        ["--db", db, *argv], environ={"PERSONA_BOT_ADMINS": "U_ADMIN"}, configure_logging=False
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_nudges_lists_what_is_due_and_to_whom(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    runtime = Runtime.open(Settings.from_env({}, database_url=sqlite_url), seed=False)
    store, org = runtime.store, runtime.default_org_id
    store.import_personas(
        org, [persona("late-lee", "lee@example.com")], "t", now=now - timedelta(days=110)
    )
    store.import_personas(org, [persona("soon-sue", "U_SUE")], "t", now=now - timedelta(days=80))
    runtime.close()

    code, out, _ = run_cli(["nudges", "--dry-run"], sqlite_url, capsys)
    assert code == 0
    assert "(dry run: nothing queued)" in out
    lines = [" ".join(line.split()) for line in out.splitlines()[1:-1]]
    due_on = f"{now - timedelta(days=20):%Y-%m-%d}"
    assert lines == [
        f"escalation Late Lee (due {due_on}) to U_ADMIN would be queued",
        f"review Late Lee (due {due_on}) to lee@example.com would be queued",
    ]
    assert out.splitlines()[-1] == "2 due: 2 would be queued"
    engine = create_db_engine(sqlite_url)
    assert outbox.rows(engine) == []

    later = (now + timedelta(days=11)).isoformat()
    code, _, err = run_cli(["nudges", "--at", later], sqlite_url, capsys)
    assert code == 2 and "--dry-run" in err
    code, out, _ = run_cli(["nudges", "--at", later, "--dry-run"], sqlite_url, capsys)
    assert code == 0 and "Soon Sue" in out and "to U_SUE" in out
    code, _, err = run_cli(["nudges", "--at", "next tuesday"], sqlite_url, capsys)
    assert code == 2 and "not an ISO time" in err

    code, out, _ = run_cli(["nudges"], sqlite_url, capsys)
    assert code == 0 and out.splitlines()[-1] == "2 due: 2 queued now"
    code, out, _ = run_cli(["nudges"], sqlite_url, capsys)
    assert out.splitlines()[-1] == "2 due: 2 pending"

    code, _, err = run_cli(["nudges", "--resend", "1"], sqlite_url, capsys)
    assert code == 2 and "not failed, uncertain or alerted" in err
    (row,) = outbox.claim(
        engine, "w", now + timedelta(minutes=1), limit=1, lease=timedelta(minutes=5)
    )
    outbox.mark_failed(engine, row.id, "w", now, error="gave up")
    code, out, _ = run_cli(["nudges", "--resend", str(row.id)], sqlite_url, capsys)
    assert code == 0 and out.startswith("Queued again:")
    assert outbox.get(engine, row.id).state == "pending"  # type: ignore[union-attr]
    engine.dispose()


def test_the_commands_are_there(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"], environ={}, configure_logging=False)
    out = capsys.readouterr().out
    assert "scheduler" in out and "nudges" in out


async def test_a_saved_edit_ends_the_nudge_cycle_like_a_review(
    world: tuple[Runtime, Router, FakeClock],
) -> None:
    runtime, router, clock = world
    fiona = runtime.store.get_persona(runtime.default_org_id, "finance-fiona")
    assert fiona is not None
    outbox.enqueue(
        runtime.engine,
        [DueItem("reminder", f"persona:{fiona.id}", "x#1", fiona.org_id, {}, fiona.id)],
        clock.now,
    )
    form = (await say(router, "edit finance-fiona")).form
    assert form is not None
    base = command(router, "x", user="U_FIONA", email=OWNER)
    values = {f.name: f.value for f in form.fields} | dict(form.state)
    values["summary"] = "Reviewed by editing."
    saved = await router.dispatch(
        Command(base.user, base.conversation, "save", "", "", "form", values)
    )
    assert saved.kind == "card"
    assert [r.state for r in outbox.rows(runtime.engine)] == ["cancelled"]
    updated = runtime.store.get_persona(runtime.default_org_id, "finance-fiona")
    assert updated is not None and updated.last_reviewed_at == clock.now
