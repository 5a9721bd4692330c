"""The Slack adapter keeps renderings only of persona cards, which later lookups hand out
again; a fit, a summary or the help is rendered for its one answer and not kept."""

from __future__ import annotations

import json

from adapters.slack.app import SharedBlocks, _SlashAck
from bot.memo import RenderMemo
from tests.e2e.slack.conftest import Slack

ONE_OFF = ["fit a 300-person fintech whose CFO wants audit-ready numbers", "help", "stats", "list"]


async def test_only_persona_cards_are_kept(slack: Slack) -> None:
    for text in ONE_OFF:
        resp = await slack.slash(text)
        assert resp.status == 200 and json.loads(await resp.read())["blocks"]
    assert len(slack.adapter._messages) == 0 and len(slack.adapter._bodies) == 0
    bodies = []
    for text in ("fiona", "fiona"):  # the same card twice: rendered and encoded once
        resp = await slack.slash(text)
        bodies.append(await resp.read())
    assert bodies[0] == bodies[1]
    assert json.loads(bodies[0])["blocks"][0]["text"]["text"] == "Finance Fiona"
    assert len(slack.adapter._messages) == 1 and len(slack.adapter._bodies) == 1


async def test_the_ack_keeps_only_shared_blocks() -> None:
    memo: RenderMemo[str] = RenderMemo()
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Best fit: Fiona"}}]
    fresh, shared = _SlashAck(memo), _SlashAck(memo)
    await fresh(text="Best fit", blocks=blocks)
    assert len(memo) == 0
    await shared(text="Best fit", blocks=SharedBlocks(blocks))
    assert len(memo) == 1
    assert fresh.response is not None and shared.response is not None
    assert fresh.response.body == shared.response.body
