"""Bot Framework Emulator mode: no app id, loopback only, no authentication, and still no
sending anywhere but loopback and the Bot Connector hosts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.teams_kit import TENANT_B, TeamsHarness, edited, teams_harness


@pytest.fixture
async def emulator(sqlite_url: str) -> AsyncIterator[TeamsHarness]:
    async with teams_harness(sqlite_url, bot_mode=False) as harness:
        yield harness


async def test_the_emulator_talks_to_the_bot_without_credentials(emulator: TeamsHarness) -> None:
    assert emulator.teams.config.mode == "emulator"
    response = await emulator.post(emulator.payload("emulator_message"))
    assert response.status == 201
    [reply] = await emulator.connector.wait_for()
    assert "Authorization" not in reply.headers  # there is no token to send
    # The Emulator has no tenant: it belongs to the default organization and its personas.
    assert reply.card is not None
    assert reply.card["body"][0]["inlines"][0]["text"] == "Finance Fiona"


async def test_the_emulator_gets_the_welcome_card(emulator: TeamsHarness) -> None:
    update = edited(
        emulator.payload("emulator_message"),
        type="conversationUpdate",
        text=None,
        membersAdded=[
            {"id": "3e8d6b10-7b2d-11f1-a9e3-3f6b8c2d1e0a", "name": "Bot"},
            {"id": "6b9f3c2e-8d4a-4f1b-9c7e-2a5d8f0b3e61", "name": "User"},
        ],
    )
    assert (await emulator.post(update)).status == 201
    [welcome] = await emulator.connector.wait_for()
    assert "Hi, I'm persona-bot" in welcome.card["body"][0]["inlines"][0]["text"]  # type: ignore[index]


async def test_teams_payloads_keep_their_tenants_apart(emulator: TeamsHarness) -> None:
    body = edited(emulator.payload("personal_message", tenant=TENANT_B), text="fiona")
    assert (await emulator.post(body)).status == 201
    [reply] = await emulator.connector.wait_for()
    assert "There are no personas yet" in reply.card["body"][0]["inlines"][0]["text"]  # type: ignore[index]


async def test_even_without_authentication_only_allowed_service_urls(
    emulator: TeamsHarness,
) -> None:
    body = edited(emulator.payload("emulator_message"), serviceUrl="https://evil.example/")
    response = await emulator.post(body)
    assert response.status == 403
    assert emulator.connector.records == []
    assert emulator.references() == 0
    assert emulator.usage_events() == 0


async def test_a_token_in_emulator_mode_is_still_checked(emulator: TeamsHarness) -> None:
    response = await emulator.post(emulator.payload("emulator_message"), token="forged.token.x")
    assert response.status == 401
    assert emulator.connector.records == []
