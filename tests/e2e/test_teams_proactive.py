"""Proactive Teams messages: the notifier reaches people and channels through the references
stored by earlier activities, retries rate limits and server errors, and refuses to send
anywhere it should not."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from bot.model import Header, Reply, Text
from bot.notify import DeliveryError, Recipient, Undeliverable
from persona_store.models import TeamsReference
from tests.e2e.teams_kit import (
    ANN_AAD,
    ANN_ID,
    OUTBOUND_TOKEN,
    TENANT_A,
    TENANT_B,
    TeamsHarness,
    assert_valid_card,
    edited,
    teams_harness,
)
from tests.fakes.bot_connector import FakeBotConnector

NUDGE = Reply(
    summary="Finance Fiona is due for review",
    blocks=(Header("Review due"), Text("Finance Fiona was last reviewed 95 days ago.")),
)
PERSONAL = (
    "a:1Xw6Jp3cLr0yHq9bVd2nEo8mKs5tFg7uZi4aQ1eRw0xYc3vBn6hMj9kLp2oIu5yTr8eWq1aSd4fGh7jKl0zXc3v"
    "Bn6mQw9eRt2yUi5oP"
)
CHANNEL = "19:6b2f9c1d4e7a4b0c8d3e5f6a7b8c9d0e@thread.tacv2"


@pytest.fixture
async def teams(sqlite_url: str) -> AsyncIterator[TeamsHarness]:
    async with teams_harness(sqlite_url) as harness:
        yield harness


async def say_hello(teams: TeamsHarness, name: str = "personal_message", **changes: object) -> None:
    body = edited(teams.payload(name), **changes) if changes else teams.payload(name)
    assert (await teams.post(body)).status == 201
    teams.connector.records.clear()


def me(teams: TeamsHarness, **fields: str) -> Recipient:
    return Recipient(org_id=teams.runtime.default_org_id, platform="teams", **fields)


async def test_a_person_seen_before_gets_the_message_in_their_personal_chat(
    teams: TeamsHarness,
) -> None:
    await say_hello(teams)
    notifier = teams.runtime.notifiers["teams"]
    message_id = await notifier.send(me(teams, user_id=ANN_AAD), NUDGE)
    [sent] = teams.connector.sent()
    assert message_id == sent.body.get("id") or message_id.startswith("activity-")
    assert sent.path == f"/v3/conversations/{PERSONAL}/activities"  # a new message, no thread
    assert sent.conversation_id == PERSONAL
    assert sent.headers["Authorization"] == f"Bearer {OUTBOUND_TOKEN}"
    assert sent.body["recipient"]["id"] == ANN_ID
    assert_valid_card(sent.card, actions=False)
    assert teams.usage_events() == 1  # the earlier message; a notification is not a command


async def test_people_are_found_by_email_and_by_teams_id(teams: TeamsHarness) -> None:
    teams.connector.add_member(ANN_ID, email="ann@example.com")
    await say_hello(teams)
    notifier = teams.runtime.notifiers["teams"]
    await notifier.send(me(teams, email="Ann@Example.com"), NUDGE)
    await notifier.send(me(teams, user_id=ANN_ID), NUDGE)
    assert [r.conversation_id for r in teams.connector.sent()] == [PERSONAL, PERSONAL]


async def test_unknown_people_and_channels_are_undeliverable(teams: TeamsHarness) -> None:
    await say_hello(teams)
    notifier = teams.runtime.notifiers["teams"]
    with pytest.raises(Undeliverable, match="never seen"):
        await notifier.send(me(teams, email="nobody@example.com"), NUDGE)
    with pytest.raises(Undeliverable, match="no Teams conversation for channel"):
        await notifier.send(me(teams, channel="19:unknown@thread.tacv2"), NUDGE)
    with pytest.raises(Undeliverable):
        await notifier.send(me(teams), NUDGE)
    assert teams.connector.records == []


async def test_another_organization_cannot_reach_this_tenants_people(
    teams: TeamsHarness,
) -> None:
    await say_hello(teams)
    other_org = await teams.runtime.org_for("teams", TENANT_B)
    with pytest.raises(Undeliverable):
        await teams.runtime.notifiers["teams"].send(
            Recipient(org_id=other_org, user_id=ANN_AAD), NUDGE
        )
    assert teams.connector.records == []


async def test_a_channel_gets_a_new_post(teams: TeamsHarness) -> None:
    await say_hello(teams, "channel_message")
    await teams.runtime.notifiers["teams"].send(me(teams, channel=CHANNEL), NUDGE)
    [sent] = teams.connector.sent()
    assert sent.path == f"/v3/conversations/{CHANNEL}/activities"


async def test_someone_seen_only_in_a_channel_gets_a_personal_chat_opened(
    teams: TeamsHarness,
) -> None:
    await say_hello(teams, "channel_message")
    notifier = teams.runtime.notifiers["teams"]
    await notifier.send(me(teams, user_id=ANN_AAD), NUDGE)
    created = [r for r in teams.connector.records if r.path == "/v3/conversations"]
    assert len(created) == 1
    assert created[0].body["members"][0]["id"] == ANN_ID
    assert created[0].body["channelData"]["tenant"]["id"] == TENANT_A
    assert created[0].body["isGroup"] is False
    [sent] = teams.connector.sent()
    assert sent.conversation_id == f"a:personal-{ANN_ID}"
    # The chat is remembered: the next nudge goes straight there.
    teams.connector.records.clear()
    await notifier.send(me(teams, user_id=ANN_AAD), NUDGE)
    assert [r.path for r in teams.connector.records] == [
        f"/v3/conversations/a:personal-{ANN_ID}/activities"
    ]


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_rate_limits_and_server_errors_are_retried(teams: TeamsHarness, status: int) -> None:
    await say_hello(teams)
    teams.connector.fail_next(status, times=2, retry_after="0" if status == 429 else None)
    await teams.runtime.notifiers["teams"].send(me(teams, user_id=ANN_AAD), NUDGE)
    assert len(teams.connector.sent()) == 1


async def test_persistent_failures_are_a_retryable_delivery_error(teams: TeamsHarness) -> None:
    await say_hello(teams)
    teams.connector.fail_next(503, times=10)
    with pytest.raises(DeliveryError) as failure:
        await teams.runtime.notifiers["teams"].send(me(teams, user_id=ANN_AAD), NUDGE)
    assert failure.value.retryable and not isinstance(failure.value, Undeliverable)
    assert teams.connector.sent() == []


async def test_a_long_retry_after_is_left_to_the_outbox(teams: TeamsHarness) -> None:
    await say_hello(teams)
    teams.connector.fail_next(429, retry_after="120")
    with pytest.raises(DeliveryError) as failure:
        await teams.runtime.notifiers["teams"].send(me(teams, user_id=ANN_AAD), NUDGE)
    assert failure.value.retryable and failure.value.retry_after == 120


@pytest.mark.parametrize("status", [403, 404])
async def test_a_conversation_that_is_gone_is_undeliverable(
    teams: TeamsHarness, status: int
) -> None:
    await say_hello(teams)
    teams.connector.fail_next(status)
    with pytest.raises(Undeliverable):
        await teams.runtime.notifiers["teams"].send(me(teams, user_id=ANN_AAD), NUDGE)


@pytest.mark.parametrize("column", ["reference", "service_url"])
async def test_a_tampered_reference_never_gets_the_token(teams: TeamsHarness, column: str) -> None:
    await say_hello(teams)
    evil = "https://evil.example/"
    with teams.runtime.engine.begin() as conn:
        rows = conn.execute(TeamsReference.__table__.select()).mappings().all()
        for row in rows:
            values = (
                {"reference": {**row["reference"], "serviceUrl": evil}}
                if column == "reference"
                else {"service_url": evil}
            )
            conn.execute(
                update(TeamsReference).where(TeamsReference.id == row["id"]).values(**values)
            )
    with pytest.raises(Undeliverable, match="refused"):
        await teams.runtime.notifiers["teams"].send(me(teams, user_id=ANN_AAD), NUDGE)
    assert teams.connector.records == []


async def test_a_new_service_url_replaces_the_stored_one(sqlite_url: str) -> None:
    async with (
        FakeBotConnector() as moved,
        teams_harness(sqlite_url, more_service_urls=(moved.url,)) as teams,
    ):
        await say_hello(teams)
        # The Bot Connector moved the conversation: the next activity carries the new URL.
        body = edited(teams.payload("personal_message"), serviceUrl=moved.url)
        assert (await teams.post(body)).status == 201
        await moved.wait_for()
        await teams.runtime.notifiers["teams"].send(me(teams, user_id=ANN_AAD), NUDGE)
        assert len(moved.sent()) == 2
        assert teams.connector.sent() == []
