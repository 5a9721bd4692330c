"""Slash commands of the single-workspace install skip Bolt's dispatch (the hot path): they
get exactly the answer Bolt's dispatch gives, and everything else still goes through Bolt."""

from __future__ import annotations

import json
from collections.abc import Coroutine
from typing import Any

import pytest
from slack_bolt.async_app import AsyncAck

from adapters.slack.app import SharedBlocks, _SlashAck
from bot import messages
from bot.memo import RenderMemo
from tests.e2e.slack.conftest import MakeSlack, Slack
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_wire import actions_payload

COMMANDS = [
    "fiona",
    "fiona",  # the second time from the memoized card and its memoized JSON
    "finanse fiona",
    "pa",
    "xyzzy",
    "help",
    "list",
    "stats",
    "review fiona",
    "fit payload of a 300-person fintech, CFO wants audit",
    "",
]


async def answer(slack: Slack, text: str, **form: Any) -> tuple[int, str, bytes]:
    resp = await slack.slash(text, **form)
    return resp.status, resp.headers["Content-Type"], await resp.read()


async def test_slash_commands_answer_as_through_bolt(slack: Slack) -> None:
    fast = [await answer(slack, text) for text in COMMANDS]
    slack.adapter.fast_lane = False
    through_bolt = [await answer(slack, text) for text in COMMANDS]
    assert fast == through_bolt
    assert all(status == 200 and "json" in kind for status, kind, _ in fast)
    assert json.loads(fast[0][2])["blocks"][0]["text"]["text"] == "Finance Fiona"
    assert len(slack.usage()) == 2 * len(COMMANDS)  # every command counted, either way


async def test_only_slash_commands_skip_bolt(slack: Slack, monkeypatch: pytest.MonkeyPatch) -> None:
    dispatched: list[str] = []
    real = slack.adapter.bolt.async_dispatch

    async def spy(request: Any) -> Any:
        dispatched.append(str(request.body.get("type") or request.body.get("command")))
        return await real(request)

    monkeypatch.setattr(slack.adapter.bolt, "async_dispatch", spy)
    assert (await answer(slack, "fiona"))[0] == 200
    assert dispatched == []
    resp = await slack.click(actions_payload("pb:lookup:0", "finance-fiona"))
    assert resp.status == 200
    assert dispatched == ["block_actions"]


async def test_a_failing_listener_gets_bolt_s_error_answer(
    slack: Slack, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(work: Coroutine[Any, Any, Any]) -> Any:
        work.close()
        raise RuntimeError("boom")

    monkeypatch.setattr(slack.adapter, "_within_deadline", broken)
    fast = await answer(slack, "fiona")
    slack.adapter.fast_lane = False
    assert await answer(slack, "fiona") == fast
    assert fast[0] == 200 and fast[2].decode() == messages.APOLOGY


async def test_until_auth_test_succeeds_bolt_authorizes(
    make_slack: MakeSlack, fake_slack: FakeSlackAPI
) -> None:
    fake_slack.fail("auth.test", "invalid_auth")  # at start-up
    slack = await make_slack()
    assert slack.adapter.home_team is None
    status, _, body = await answer(slack, "fiona")
    assert status == 200
    assert json.loads(body)["blocks"][0]["text"]["text"] == "Finance Fiona"
    assert slack.adapter.home_team == "T1"  # learned from Bolt's authorization instead
    assert [c.method for c in fake_slack.calls].count("auth.test") == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"text": "Finance Fiona", "response_type": "ephemeral"},
        {"text": "Finance Fiona", "response_type": "in_channel"},
        {"text": "Finance Fiona"},
    ],
)
async def test_the_slash_ack_sends_bolt_s_bytes(kwargs: dict[str, Any]) -> None:
    blocks = SharedBlocks(
        [{"type": "header", "text": {"type": "plain_text", "text": "Fiona & <b>"}}]
    )
    bolt = AsyncAck()
    await bolt(blocks=blocks, **kwargs)
    memo: RenderMemo[str] = RenderMemo()
    for _ in range(2):  # encoded, then from the memo
        ours = _SlashAck(memo)
        await ours(blocks=blocks, **kwargs)
        assert ours.response is not None and bolt.response is not None
        assert ours.response.body == bolt.response.body
        assert ours.response.headers == bolt.response.headers
    assert len(memo) == 1


async def test_the_slash_ack_leaves_other_answers_to_bolt() -> None:
    ours, bolt = _SlashAck(RenderMemo()), AsyncAck()
    for ack in (ours, bolt):
        await ack(text="Working on it…", response_type="ephemeral")
    assert ours.response is not None and bolt.response is not None
    assert ours.response.body == bolt.response.body


async def test_installed_workspaces_are_authorized_once_per_token(oauth_slack: Slack) -> None:
    from tests.e2e.slack.test_slack_oauth import install

    for team in ("TA", "TB"):
        await install(oauth_slack, team)
    before = len(oauth_slack.fake.of("auth.test"))
    for _ in range(3):
        for team in ("TA", "TB"):
            assert (await answer(oauth_slack, "list", team=team))[0] == 200
    assert len(oauth_slack.fake.of("auth.test")) - before == 2  # not one per request
