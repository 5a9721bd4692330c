"""Looking up a Slack user's email: odd answers from users.info never break a command."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack.people import People


class _Client(AsyncWebClient):
    def __init__(self, data: Any) -> None:
        super().__init__(token="xoxb-test")
        self.data = data
        self.calls = 0

    async def users_info(self, **kwargs: Any) -> AsyncSlackResponse:  # type: ignore[override]
        self.calls += 1
        return AsyncSlackResponse(
            client=self,
            http_verb="POST",
            api_url="users.info",
            req_args={},
            data=self.data,
            headers={},
            status_code=200,
        )


@pytest.mark.parametrize(
    ("data", "email"),
    [
        ({"ok": True, "user": {"profile": {"email": " Fiona@Example.COM "}}}, "fiona@example.com"),
        ({"ok": True, "user": {"profile": {}}}, None),
        ({"ok": True, "user": None}, None),
        ({"ok": True, "user": "not a mapping"}, None),
        ("<html>not json</html>", None),
        (b"\x00\x01", None),
    ],
)
async def test_odd_answers_give_no_email_instead_of_a_crash(data: Any, email: str | None) -> None:
    client = _Client(data)
    people = People()
    assert await people.email(client, "T1", "U1") == email
    assert await people.email(client, "T1", "U1") == email
    assert client.calls == 1  # cached either way
