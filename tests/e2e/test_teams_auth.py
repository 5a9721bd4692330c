"""Who may post to /api/messages: token validation with a local fake issuer (no network),
the service URL allow-list, and malformed requests. A refused activity changes nothing:
no answer, no usage event, no stored reference, no warning in the log."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import AsyncIterator

import pytest

from tests.e2e.teams_kit import APP_ID, PASSWORD, TeamsHarness, edited, teams_harness


@pytest.fixture
async def teams(sqlite_url: str) -> AsyncIterator[TeamsHarness]:
    async with teams_harness(sqlite_url) as harness:
        yield harness


def assert_nothing_happened(teams: TeamsHarness) -> None:
    assert teams.connector.records == []
    assert teams.usage_events() == 0
    assert teams.references() == 0


async def test_a_valid_token_is_accepted(teams: TeamsHarness) -> None:
    body = teams.payload("personal_message")
    assert teams.issuer is not None
    token = teams.issuer.token(audience=APP_ID, service_url=body["serviceUrl"])
    response = await teams.post(body, token=token)
    assert response.status == 201
    await teams.connector.wait_for()
    assert teams.usage_events() == 1


@pytest.mark.parametrize(
    "forgery",
    [
        "missing header",
        "unknown signing key",
        "wrong audience",
        "service URL not matching its claim",
        "expired",
        "wrong issuer",
        "not a JWT",
        "not a bearer token",
    ],
)
async def test_invalid_tokens_are_refused_and_change_nothing(
    teams: TeamsHarness, forgery: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = teams.payload("personal_message")
    issuer = teams.issuer
    assert issuer is not None
    url = body["serviceUrl"]
    headers: dict[str, str] = {}
    token: str | None = None
    if forgery == "unknown signing key":
        token = issuer.token(audience=APP_ID, service_url=url, kid="attacker", key_name="attacker")
    elif forgery == "wrong audience":
        token = issuer.token(audience="another-bots-app-id", service_url=url)
    elif forgery == "service URL not matching its claim":
        token = issuer.token(audience=APP_ID, service_url="https://smba.trafficmanager.net/amer/")
    elif forgery == "expired":
        token = issuer.token(audience=APP_ID, service_url=url, expires_in=-3600)
    elif forgery == "wrong issuer":
        token = issuer.token(audience=APP_ID, service_url=url, issuer="https://evil.example")
    elif forgery == "not a JWT":
        token = "not.a.jwt"
    elif forgery == "not a bearer token":
        headers["Authorization"] = f"Basic {PASSWORD}"
    with caplog.at_level(logging.INFO):
        response = await teams.post(body, token=token, sign=False, headers=headers)
    assert response.status == 401
    assert await response.json() == {"error": "unauthorized"}
    assert_nothing_happened(teams)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


async def test_signing_keys_are_fetched_once_and_reused(teams: TeamsHarness) -> None:
    assert teams.issuer is not None
    for _ in range(3):
        assert (await teams.post(teams.payload("personal_message"))).status == 201
    assert teams.issuer.requests == 2  # the OpenID document and the key set, once


async def test_an_unknown_key_does_not_refetch_on_every_request(teams: TeamsHarness) -> None:
    issuer = teams.issuer
    assert issuer is not None
    body = teams.payload("personal_message")
    assert (await teams.post(body)).status == 201
    fetched = issuer.requests
    for _ in range(3):
        token = issuer.token(audience=APP_ID, service_url=body["serviceUrl"], kid="rotated")
        assert (await teams.post(body, token=token)).status == 401
    assert issuer.requests == fetched


async def test_unreachable_signing_keys_answer_503_not_500(teams: TeamsHarness) -> None:
    assert teams.issuer is not None
    teams.issuer.fail = True
    response = await teams.post(teams.payload("personal_message"))
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert_nothing_happened(teams)
    teams.issuer.fail = False  # the issuer is back: the next activity goes through
    assert (await teams.post(teams.payload("personal_message"))).status == 201


async def test_a_hanging_key_endpoint_cannot_hang_the_request(sqlite_url: str) -> None:
    async with teams_harness(sqlite_url, key_fetch_timeout=0.3) as teams:
        assert teams.issuer is not None
        teams.issuer.hang = True
        started = time.monotonic()
        response = await teams.post(teams.payload("personal_message"))
        assert response.status == 503
        assert time.monotonic() - started < 3
        assert_nothing_happened(teams)


async def test_a_service_url_outside_the_allow_list_is_refused(teams: TeamsHarness) -> None:
    assert teams.issuer is not None
    body = edited(teams.payload("personal_message"), serviceUrl="https://evil.example/teams/")
    token = teams.issuer.token(audience=APP_ID, service_url="https://evil.example/teams/")
    response = await teams.post(body, token=token)
    assert response.status == 403
    assert_nothing_happened(teams)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
        (b"[1, 2, 3]", "application/json", 400),
        (b'"a string"', "application/json", 400),
        (b"{}", "application/json", 400),
        (b'{"type": "message"}', "application/json", 400),
        (b"type=message", "application/x-www-form-urlencoded", 415),
    ],
)
async def test_malformed_requests_get_4xx(
    teams: TeamsHarness, body: bytes, content_type: str, status: int
) -> None:
    response = await teams.client.post(
        "/api/messages", data=body, headers={"Content-Type": content_type}
    )
    assert response.status == status
    assert_nothing_happened(teams)


@pytest.mark.parametrize(
    "change",
    [
        {"conversation": None},
        {"conversation": {"id": 42}},
        {"from": "someone"},
        {"recipient": {}},
        {"serviceUrl": 7},
        {"text": {"nested": "object"}},
        {"entities": "mention"},
        {"entities": [1, 2]},
        {"attachments": {"contentType": "x"}},
        {"channelData": ["tenant"]},
        {"type": ""},
    ],
)
async def test_malformed_activities_get_400_even_with_a_valid_token(
    teams: TeamsHarness, change: dict[str, object]
) -> None:
    body = edited(teams.payload("personal_message"), **change)
    assert teams.issuer is not None
    token = teams.issuer.token(audience=APP_ID, service_url=teams.connector.url)
    response = await teams.post(body, token=token)
    assert response.status == 400
    assert_nothing_happened(teams)


async def test_an_oversized_body_is_refused(teams: TeamsHarness) -> None:
    body = edited(teams.payload("personal_message"), text="x" * (1024 * 1024 + 10))
    response = await teams.client.post(
        "/api/messages",
        data=io.BytesIO(json.dumps(body).encode()),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 413
    assert_nothing_happened(teams)


async def test_unknown_activity_types_are_accepted_and_ignored(teams: TeamsHarness) -> None:
    body = edited(teams.payload("personal_message"), type="messageReaction", text=None)
    assert (await teams.post(body)).status == 201
    body = edited(teams.payload("personal_message"), type="somethingNew", text=None)
    assert (await teams.post(body)).status == 201
    assert teams.connector.sent() == []
    assert teams.usage_events() == 0
