"""Change notes: after an edit, exactly the people who looked the persona up in the last 30
days are told what changed, once per person per change, through the outbox and a platform
reached over HTTP."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.handlers import default_router
from bot.model import Command, Reply
from bot.router import Router
from bot.runtime import Runtime
from bot.settings import Settings
from persona_store.models import UsageEvent
from scheduler.config import SchedulerConfig, with_home_org
from scheduler.verbs import install
from scheduler.worker import DeliveryWorker
from tests.conftest import command
from tests.fakes.platform import FakePlatform, HttpNotifier
from tests.scheduler_support import FakeClock, utc

NOW = utc(2030, 5, 6, 10)
OWNER = "fiona.owner@tallyworks.example"


@pytest.fixture
async def world(sqlite_url: str) -> AsyncIterator[tuple[Runtime, Router, FakePlatform]]:
    platform = FakePlatform()
    await platform.start()
    notifier = HttpNotifier("slack", platform.url)
    settings = Settings.from_env({"PERSONA_BOT_DIGEST_DAY": "sun"}, database_url=sqlite_url)
    runtime = Runtime.open(settings, seed=True, clock=FakeClock(NOW))
    runtime.home_workspaces["slack"] = {"T1"}
    runtime.notifiers["slack"] = notifier
    router = default_router(runtime)
    install(router)
    yield runtime, router, platform
    runtime.close()
    await notifier.close()
    await platform.close()


async def say(router: Router, text: str, user: str, email: str | None = None) -> Reply:
    return await router.dispatch(command(router, text, user=user, email=email))


async def edit(router: Router, changes: dict[str, str], notify: str = "yes") -> Reply:
    opened = await say(router, "edit fiona", "U_OWNER", OWNER)
    assert opened.form is not None
    base = command(router, "x", user="U_OWNER", email=OWNER)
    values = {f.name: f.value for f in opened.form.fields} | dict(opened.form.state)
    values |= {**changes, "notify": notify}
    return await router.dispatch(
        Command(base.user, base.conversation, "save", "", "", "form", values)
    )


async def deliver(runtime: Runtime) -> None:
    config = with_home_org(SchedulerConfig.from_settings(runtime.settings), runtime.default_org_id)
    await DeliveryWorker(runtime, config, name="w", rng=random.Random(1)).run_until_idle()


async def test_recent_viewers_get_one_note_per_change_and_nobody_else(
    world: tuple[Runtime, Router, FakePlatform],
) -> None:
    runtime, router, platform = world
    for user in ("U_V1", "U_V2", "U_V2", "U_OLD", "U_OWNER"):
        await say(router, "fiona", user, OWNER if user == "U_OWNER" else None)
    await say(router, "carlos", "U_OTHER_PERSONA")
    await say(router, "fit VP Finance at a 400-person SaaS company", "U_FIT_ONLY")
    runtime.usage.flush()
    # U_OLD's lookup was 40 days ago: too long ago to be told.
    with runtime.engine.begin() as conn:
        conn.execute(
            update(UsageEvent)
            .where(UsageEvent.user_id == "U_OLD")
            .values(ts=int((NOW - timedelta(days=40)).timestamp() * 1000))
        )

    saved = await edit(router, {"summary": "Now also owns procurement policy."})
    assert "2 recent viewer(s) will be told" in saved.summary
    await deliver(runtime)
    assert sorted(d.to for d in platform.deliveries) == ["U_V1", "U_V2"]
    note = platform.deliveries[0]
    assert "Finance Fiona was updated" in note.text and "summary" in note.text

    # Delivering again, or queuing the same change again, sends nothing more.
    fiona = runtime.store.get_persona(runtime.default_org_id, "finance-fiona")
    assert fiona is not None and runtime.change_notifier is not None
    assert await runtime.change_notifier(runtime.default_org_id, fiona, "U_OWNER") == 0
    await deliver(runtime)
    assert len(platform.deliveries) == 2

    # A second change is a second note; choosing not to notify sends none.
    await edit(router, {"goals": "Close the books in 3 days"})
    await deliver(runtime)
    assert len(platform.deliveries) == 4
    quiet = await edit(router, {"goals": "Close the books in 2 days"}, notify="no")
    assert "will be told" not in quiet.summary
    await deliver(runtime)
    assert len(platform.deliveries) == 4
