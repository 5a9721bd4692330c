"""Every outbound delivery when Slack or the Bot Connector misbehaves: rate limits (429 with
Retry-After), server errors and calls that are never answered, acted out by the local fakes.

- Slack ``response_url`` replies of slow slash commands are retried with backoff and arrive
  exactly once; a reply that does not replace the original is not repeated after a timeout.
- Slack and Teams proactive messages (review nudges, the digest, the admins' alerts) go
  through the real scheduler: retried within the Notifier and then by the outbox, never
  before Retry-After; a send that timed out is not re-sent blindly but recorded
  ``uncertain`` with an alert to the admins, and an operator's resend delivers it once.
- Teams replies to a turn are retried with backoff and arrive exactly once.

Meanwhile the bot keeps answering other people. Gaps between attempts are read from the
fakes' receive times; every wait is a poll with a deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

import scheduler
from adapters.slack.app import SlackAdapter
from adapters.slack.config import load
from bot.cli import build_router
from bot.extensions import Extension
from bot.model import Reply
from bot.router import Router, Turn
from bot.runtime import Runtime
from bot.web import create_app
from persona_store import outbox
from persona_store.outbox import DueItem, OutboxRow
from scheduler.config import SchedulerConfig
from scheduler.due import address
from scheduler.service import SchedulerService
from tests.e2e.slack.conftest import ADMIN_EMAIL, BOT_TOKEN, MANAGER_EMAIL, Slack, slack_settings
from tests.e2e.slack.test_slack_commands import ask, texts_of
from tests.e2e.slack.test_slack_interactivity import click
from tests.e2e.teams_kit import (
    ANN_ID,
    TeamsHarness,
    assert_valid_card,
    payload,
    teams_harness,
)
from tests.fakes.bot_connector import Attempt
from tests.fakes.slack_api import HANG, FakeSlackAPI
from tests.polling import eventually
from tests.scheduler_support import persona

# Short enough to keep the file fast, long enough for a loaded machine to answer someone
# else while a call hangs.
CALL_TIMEOUT = 2.0
OUTBOX_BACKOFF = 0.3
WAIT = 15.0  # seconds for what a test awaits, unless it says otherwise
OUTBOX_ENV = {
    "PERSONA_BOT_OUTBOX_BACKOFF_SECONDS": str(OUTBOX_BACKOFF),
    "PERSONA_BOT_OUTBOX_POLL_SECONDS": "0.2",
    "PERSONA_BOT_OUTBOX_SEND_TIMEOUT": "20",
    "PERSONA_BOT_SCHEDULER_TICK_SECONDS": "3600",  # one tick at start is all these need
}
SLACK_OWNERS = {
    "UA": "ava.owner@tallyworks.example",
    "UB": "ben.owner@tallyworks.example",
    "UC": "cy.owner@tallyworks.example",
}


def gaps(moments: Sequence[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(moments)]


def rows(runtime: Runtime) -> list[OutboxRow]:
    return outbox.rows(runtime.engine)


def row_of(runtime: Runtime, label: str) -> OutboxRow:
    [row] = [r for r in rows(runtime) if r.label == label]
    return row


def overdue(runtime: Runtime, owners: dict[str, str]) -> None:
    """A persona "<Name> Buyer" per owner, last reviewed 91 days ago: due for review."""
    specs = [persona(f"{name}-buyer", email) for name, email in owners.items()]
    runtime.store.import_personas(
        runtime.default_org_id, specs, "test", now=datetime.now(UTC) - timedelta(days=91)
    )


# Slack ---------------------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackAPI]:
    fake = await FakeSlackAPI().start()
    fake.add_workspace("T1", BOT_TOKEN, name="Tallyworks")
    fake.add_user("T1", "U1", "sam.seller@tallyworks.example", "sam.seller")
    fake.add_user("T1", "UADMIN", ADMIN_EMAIL, "ada.admin")
    fake.add_user("T1", "UMANAGER", MANAGER_EMAIL, "max.manager")
    for user, email in SLACK_OWNERS.items():
        fake.add_user("T1", user, email)
    yield fake
    await fake.close()


@asynccontextmanager
async def slack_app(
    tmp_path: Path,
    fake: FakeSlackAPI,
    *,
    with_scheduler: bool = False,
    configure: Callable[[Router], None] | None = None,
    prepare: Callable[[Runtime], None] | None = None,
) -> AsyncIterator[Slack]:
    """The web app with Slack (and the scheduler, when asked) on 127.0.0.1."""
    env = {"PERSONA_BOT_SLACK_HTTP_TIMEOUT": str(CALL_TIMEOUT), **OUTBOX_ENV}
    settings = slack_settings(f"sqlite:///{tmp_path / 'faults.db'}", fake, **env)
    runtime = Runtime.open(settings, seed=True)
    try:
        if prepare is not None:
            prepare(runtime)
        router = build_router(runtime, [scheduler.extension] if with_scheduler else [])
        if configure is not None:
            configure(router)
        config = load(settings)
        assert config is not None and config.http_timeout == CALL_TIMEOUT
        adapter = SlackAdapter(config, runtime, router, deadline=1.0)
        extensions = [Extension("slack", mount_web=lambda app, rt, r: adapter.mount(app))]
        if with_scheduler:
            extensions.append(scheduler.extension)
        app = create_app(runtime, router, extensions)
        async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
            yield Slack(fake, client, runtime, router, adapter)
    finally:
        runtime.close()


async def answered_at_once(slack: Slack) -> None:
    """Someone else's lookup is answered within the ack's deadline while a call hangs."""
    started = time.monotonic()
    card = await ask(slack, "fiona", response_url=slack.fake.response_url("other"))
    assert time.monotonic() - started < 3.0
    assert "Finance Fiona" in texts_of(card)


# fault -> (Slack's error, HTTP status, Retry-After)
SLOW_REPLY_FAULTS: dict[str, tuple[str, int, int | None]] = {
    "rate limited": ("ratelimited", 429, 1),
    "server error": ("internal_error", 500, None),
    "no answer": (HANG, 200, None),
}


@pytest.mark.parametrize("fault", SLOW_REPLY_FAULTS)
async def test_a_slow_commands_reply_through_response_url_arrives_once(
    tmp_path: Path, fake: FakeSlackAPI, fault: str
) -> None:
    release = asyncio.Event()

    async def slow(turn: Turn) -> Reply:
        await release.wait()  # the command is slow until the test says otherwise
        return Reply.text(f"Done for {turn.user.id}.")

    async with slack_app(tmp_path, fake, configure=lambda r: r.add("slow", slow)) as slack:
        error, status, retry_after = SLOW_REPLY_FAULTS[fault]
        fake.fail("response_url", error, status=status, retry_after=retry_after, to="slow-1")
        acked = await ask(slack, "slow", response_url=fake.response_url("slow-1"))
        assert acked["text"] == "Working on it…"
        release.set()
        if fault == "no answer":
            await eventually(lambda: fake.hanging == 1, within=WAIT, what="Slack to hold the reply")
            await answered_at_once(slack)
            assert fake.delivered("response_url", to="slow-1") == []  # still hanging
        await eventually(
            lambda: fake.delivered("response_url", to="slow-1"),
            within=WAIT,
            what="the reply to arrive",
        )

    attempts = fake.attempts("response_url", "slow-1")
    assert [c.ok for c in attempts] == [False, True]
    [delivered] = fake.delivered("response_url", to="slow-1")
    assert delivered.params["text"] == "Done for U1."
    assert delivered.params["replace_original"] is True
    [gap] = gaps([c.at for c in attempts])
    least = {"rate limited": 1.0, "server error": 0.2, "no answer": CALL_TIMEOUT}[fault]
    assert least <= gap < least + 10, f"retried after {gap:.2f} s"


async def test_a_reply_that_adds_a_message_is_not_repeated_after_a_timeout(
    tmp_path: Path, fake: FakeSlackAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack.app")
    async with slack_app(tmp_path, fake) as slack:
        card = await ask(slack, "fiona")
        fake.fail("response_url", HANG, to="share")
        await click(slack, card, "pbx:share", key="share")
        await eventually(
            lambda: any(
                "response_url could not be reached" in r.getMessage() for r in caplog.records
            ),
            within=WAIT,
            what="the bot to give up on the shared card",
        )
        # Slack may have posted it: a second post could show the card twice in the channel.
        assert len(fake.attempts("response_url", "share")) == 1


async def test_slack_nudges_digest_and_alerts_survive_rate_limits_errors_and_hangs(
    tmp_path: Path, fake: FakeSlackAPI
) -> None:
    week = f"{datetime.now(UTC):%G-W%V}"

    def prepare(runtime: Runtime) -> None:
        overdue(
            runtime,
            {"ava": SLACK_OWNERS["UA"], "ben": SLACK_OWNERS["UB"], "cy": SLACK_OWNERS["UC"]},
        )
        org = runtime.default_org_id
        digest = DueItem(
            "digest",
            f"org:{org} to {MANAGER_EMAIL}",
            week,
            org,
            {"to": address(MANAGER_EMAIL), "week": week, "label": f"weekly digest {week}"},
        )
        outbox.enqueue(runtime.engine, [digest], runtime.clock())

    fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=1, to="UA")
    fake.fail("chat.postMessage", "internal_error", status=500, times=2, to="UB")
    fake.fail("chat.postMessage", HANG, to="UC")
    fake.fail("chat.postMessage", "service_unavailable", status=503, to="UMANAGER")

    async with slack_app(tmp_path, fake, with_scheduler=True, prepare=prepare) as slack:
        rt = slack.runtime
        service = slack.client.app[scheduler.SERVICE]
        await eventually(lambda: fake.hanging == 1, within=20, what="Slack to hold Cy's nudge")
        await answered_at_once(slack)
        assert row_of(rt, "review nudge for Cy Buyer").state == "sending"  # still in the air

        # The hang: recorded as uncertain, not sent again, and the admins are told.
        await eventually(
            lambda: fake.delivered("chat.postMessage", to="UADMIN"),
            within=WAIT,
            what="the admins' alert",
        )
        cy = row_of(rt, "review nudge for Cy Buyer")
        assert cy.state == "uncertain" and "did not answer" in (cy.last_error or "")
        [alert] = fake.delivered("chat.postMessage", to="UADMIN")
        alert_text = json.dumps(alert.params)
        assert "may not have arrived" in alert_text and f"--resend {cy.id}" in alert_text
        await eventually(
            lambda: {r.state for r in rows(rt) if r.id != cy.id} == {"sent"},
            within=WAIT,
            what="everything else to be sent",
        )
        assert len(fake.attempts("chat.postMessage", "UC")) == 1  # never sent blindly twice

        # The operator checked with Cy and resends it (what `persona-bot nudges --resend` does).
        assert outbox.resend(rt.engine, cy.id, rt.clock()) is not None
        service.wake()
        await eventually(
            lambda: fake.delivered("chat.postMessage", to="UC"),
            within=WAIT,
            what="Cy's nudge to arrive",
        )
        await eventually(
            lambda: {r.state for r in rows(rt)} == {"sent"},
            within=WAIT,
            what="every row to be sent",
        )
        final = rows(rt)

    # Nothing lost, nothing twice: one message per outbox row, each to its recipient.
    assert sorted(r.kind for r in final) == ["alert", "digest", "review", "review", "review"]
    delivered = fake.delivered("chat.postMessage")
    assert len(delivered) == len(final)
    for user, name in (("UA", "Ava Buyer"), ("UB", "Ben Buyer"), ("UC", "Cy Buyer")):
        [nudge] = fake.delivered("chat.postMessage", to=user)
        assert name in json.dumps(nudge.params)
    [digest] = fake.delivered("chat.postMessage", to="UMANAGER")
    assert "Persona digest: the last 7 days" in json.dumps(digest.params)

    def times(user: str) -> list[float]:
        return [c.at for c in fake.attempts("chat.postMessage", user)]

    def statuses(user: str) -> list[int | None]:
        return [c.status for c in fake.attempts("chat.postMessage", user)]

    assert statuses("UA") == [429, 200]
    [rate_limited] = gaps(times("UA"))
    assert 1.0 <= rate_limited < 10, f"retried {rate_limited:.2f} s after a Retry-After of 1"
    # Two 500s: one retry inside the notifier, then the outbox's backoff.
    assert statuses("UB") == [500, 500, 200]
    inline, by_outbox = gaps(times("UB"))
    assert 0 < inline < 10 and OUTBOX_BACKOFF <= by_outbox < 10
    assert statuses("UMANAGER") == [503, 200]
    assert statuses("UC") == [None, 200]  # the held call was never answered


# Teams ---------------------------------------------------------------------------------------

TEAMS_ENV = {"PERSONA_BOT_TEAMS_CONNECTOR_TIMEOUT": str(CALL_TIMEOUT), **OUTBOX_ENV}
# Besides Ann (the recorded payloads' sender), people who each have a personal chat with
# the bot: Teams id, Entra object id, email.
PEOPLE = {
    "bo": ("29:1Bo0ffE5dA7q", "7f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e51", "bo@example.com"),
    "cy": ("29:1Cy9aKe3pQ2w", "7f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e52", "cy@example.com"),
    "dee": ("29:1DeeQ8rT6yU4", "7f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e53", "dee@example.com"),
    "admin": ("29:1Ad4mIn7zX5v", "7f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e54", "admin@example.com"),
}
ANN_CHAT = str(payload("personal_message", "")["conversation"]["id"])


def message_from(teams: TeamsHarness, who: str, text: str = "fiona") -> dict[str, Any]:
    """A personal message to the bot from ``who`` (Ann, or one of PEOPLE)."""
    body = teams.payload("personal_message")
    body["text"] = text
    if who != "ann":
        teams_id, aad, _ = PEOPLE[who]
        body["id"] = f"activity-from-{who}"
        body["from"] = {**body["from"], "id": teams_id, "aadObjectId": aad, "name": who}
        body["conversation"] = {**body["conversation"], "id": chat_of(who)}
    return body


def chat_of(who: str) -> str:
    return ANN_CHAT if who == "ann" else f"a:personal-chat-of-{who}"


def messages(teams: TeamsHarness, who: str) -> list[Attempt]:
    """Every message activity sent to ``who``'s chat, answered or not."""
    chat = chat_of(who)
    return [
        a for a in teams.connector.attempts if a.conversation_id == chat and a.type == "message"
    ]


def delivered(teams: TeamsHarness, who: str) -> list[dict[str, Any]]:
    chat = chat_of(who)
    return [r.body for r in teams.connector.sent() if r.conversation_id == chat]


@asynccontextmanager
async def teams_app(sqlite_url: str) -> AsyncIterator[TeamsHarness]:
    async with teams_harness(sqlite_url, env=TEAMS_ENV) as teams:
        assert teams.teams.config.connector_timeout == CALL_TIMEOUT
        yield teams


TURN_FAULTS = ["rate limited", "server error", "no answer"]


@pytest.mark.parametrize("fault", TURN_FAULTS)
async def test_a_teams_reply_to_a_turn_arrives_once(sqlite_url: str, fault: str) -> None:
    async with teams_app(sqlite_url) as teams:
        connector, chat = teams.connector, chat_of("ann")
        if fault == "rate limited":
            connector.fail_next(429, retry_after="1", conversation=chat, kind="message")
        elif fault == "server error":
            connector.fail_next(500, conversation=chat, kind="message")
        else:
            connector.hang_next(conversation=chat, kind="message")
        asked = asyncio.create_task(teams.post(message_from(teams, "ann")))
        if fault == "no answer":
            await eventually(
                lambda: connector.hanging == 1,
                within=WAIT,
                what="the connector to hold the reply",
            )
            # Someone else is answered meanwhile (a new person: the bot looks them up).
            connector.add_member(PEOPLE["bo"][0], email=PEOPLE["bo"][2])
            other = await teams.post(message_from(teams, "bo"))
            assert other.status == 201 and len(delivered(teams, "bo")) == 1
            assert not asked.done()
        response = await asyncio.wait_for(asked, 20)
        assert response.status == 201
        [reply] = delivered(teams, "ann")

    card = reply["attachments"][0]["content"]
    assert_valid_card(card)
    assert "Finance Fiona" in json.dumps(card)
    attempts = messages(teams, "ann")
    assert [a.status for a in attempts] == [
        {"rate limited": 429, "server error": 500, "no answer": None}[fault],
        201,
    ]
    [gap] = gaps([a.at for a in attempts])
    least = {"rate limited": 1.0, "server error": 0.4, "no answer": CALL_TIMEOUT}[fault]
    assert least <= gap < least + 10, f"retried after {gap:.2f} s"


async def test_teams_proactive_messages_survive_rate_limits_errors_and_hangs(
    sqlite_url: str,
) -> None:
    async with teams_app(sqlite_url) as teams:
        rt, connector = teams.runtime, teams.connector
        # Everyone has talked to the bot once: it knows their personal chats and emails.
        connector.add_member(ANN_ID, email="ann@example.com")
        for teams_id, _, email in PEOPLE.values():
            connector.add_member(teams_id, email=email)
        for who in ("ann", *PEOPLE):
            assert (await teams.post(message_from(teams, who, "help"))).status == 201
        connector.records.clear()
        connector.attempts.clear()
        overdue(rt, {"ann": "ann@example.com", "bo": PEOPLE["bo"][2], "cy": PEOPLE["cy"][2]})

        connector.fail_next(429, retry_after="1", conversation=chat_of("ann"))
        # More 500s than the notifier's own attempts: the outbox retries the rest.
        inline_attempts = teams.teams.notifier.retry.attempts
        connector.fail_next(500, times=inline_attempts, conversation=chat_of("bo"))
        connector.hang_next(conversation=chat_of("cy"))

        service = SchedulerService(rt, SchedulerConfig.from_settings(rt.settings))
        await service.start()
        try:
            await eventually(
                lambda: connector.hanging == 1, within=20, what="the connector to hold Cy's nudge"
            )
            # Dee (no persona of hers is due) is answered meanwhile.
            other = await teams.post(message_from(teams, "dee"))
            assert other.status == 201
            [answer] = delivered(teams, "dee")
            assert "Finance Fiona" in json.dumps(answer)
            assert row_of(rt, "review nudge for Cy Buyer").state == "sending"

            await eventually(
                lambda: delivered(teams, "admin"), within=WAIT, what="the admins' alert"
            )
            cy = row_of(rt, "review nudge for Cy Buyer")
            assert cy.state == "uncertain"
            [alert] = delivered(teams, "admin")
            assert "may not have arrived" in json.dumps(alert)
            assert f"--resend {cy.id}" in json.dumps(alert)
            await eventually(
                lambda: {r.state for r in rows(rt) if r.id != cy.id} == {"sent"},
                within=WAIT,
                what="everything else to be sent",
            )
            assert len(messages(teams, "cy")) == 1  # never sent blindly twice

            assert outbox.resend(rt.engine, cy.id, rt.clock()) is not None
            service.wake()
            await eventually(
                lambda: delivered(teams, "cy"), within=WAIT, what="Cy's nudge to arrive"
            )
            await eventually(
                lambda: {r.state for r in rows(rt)} == {"sent"},
                within=WAIT,
                what="every row to be sent",
            )
        finally:
            await service.stop()
        final = rows(rt)

    assert sorted(r.kind for r in final) == ["alert", "review", "review", "review"]
    for who, name in (("ann", "Ann Buyer"), ("bo", "Bo Buyer"), ("cy", "Cy Buyer")):
        [nudge] = delivered(teams, who)
        assert name in json.dumps(nudge)
    assert len(delivered(teams, "admin")) == 1

    def statuses(who: str) -> list[int | None]:
        return [a.status for a in messages(teams, who)]

    assert statuses("ann") == [429, 201]
    [rate_limited] = gaps([a.at for a in messages(teams, "ann")])
    assert 1.0 <= rate_limited < 10, f"retried {rate_limited:.2f} s after a Retry-After of 1"
    assert statuses("bo") == [500] * inline_attempts + [201]
    *_, by_outbox = gaps([a.at for a in messages(teams, "bo")])
    assert OUTBOX_BACKOFF <= by_outbox < 10
    assert statuses("cy") == [None, 201]
