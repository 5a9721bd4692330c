"""Signed requests replayed or sent out of time: a captured request verifies for five minutes
either side of its timestamp, so its timestamp and its second arrival are checked too.

Out of the window (older or newer than five minutes): 401 and nothing changes. The exact
same signed slash command or click a second time: 401 and nothing changes, on the fast lane
as through Bolt. The same event a second time: acknowledged, acted on once (its event id).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from adapters.slack.config import load
from adapters.slack.replay import WINDOW, ReplayGuard
from bot.settings import Settings
from tests.e2e.slack.conftest import SECRET, MakeSlack, Slack
from tests.e2e.slack.test_slack_editor import NAMES, open_editor
from tests.fakes.slack_wire import (
    FORM,
    actions_payload,
    event_body,
    interactivity_body,
    signed_headers,
    slash_body,
    view_submission_payload,
)

FIONA = "finance-fiona"
MARK_REVIEWED = ("pb:review:0", FIONA)


def fiona_state(slack: Slack) -> tuple[int, int, object, bool]:
    """Fiona's revision, number of history entries, review date and archive flag."""
    org = slack.runtime.default_org_id
    persona = slack.runtime.store.get_persona(org, FIONA)
    assert persona is not None
    history = slack.runtime.store.history(org, FIONA, limit=1000)
    return persona.revision, len(history), persona.last_reviewed_at, persona.archived


def signed(body: str, content_type: str, timestamp: int | None = None) -> dict[str, str]:
    return signed_headers(SECRET, body, content_type=content_type, timestamp=timestamp)


async def send(slack: Slack, body: str, headers: dict[str, str]) -> tuple[int, str]:
    resp = await slack.client.post("/slack/events", data=body, headers=headers)
    return resp.status, await resp.text()


def slash(slack: Slack, text: str, *, user: str = "U1", key: str = "r1") -> str:
    return slash_body(text, user=user, response_url=slack.fake.response_url(key))


def click(slack: Slack, action: tuple[str, str], *, user: str, key: str) -> str:
    payload = actions_payload(*action, user=user, response_url=slack.fake.response_url(key))
    return interactivity_body(payload)


def nothing_sent(slack: Slack) -> bool:
    return [c.method for c in slack.fake.calls if c.method != "auth.test"] == []


# out of the window ---------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-(WINDOW + 60), WINDOW + 60], ids=["6-min-old", "6-min-ahead"])
@pytest.mark.parametrize("kind", ["slash", "click", "event"])
async def test_requests_out_of_the_five_minute_window_are_refused(
    slack: Slack, kind: str, offset: int
) -> None:
    before = fiona_state(slack)
    body, content_type = {
        "slash": (slash(slack, "review fiona", user="UOWNER"), FORM),
        "click": (click(slack, MARK_REVIEWED, user="UOWNER", key="r2"), FORM),
        "event": (json.dumps(event_body("app_mention.json")), "application/json"),
    }[kind]
    status, text = await send(slack, body, signed(body, content_type, int(time.time()) + offset))
    assert status == 401 and json.loads(text) == {"error": "invalid signature"}
    assert fiona_state(slack) == before
    assert slack.usage() == [] and nothing_sent(slack)
    # The same request signed now is accepted: only the timestamp was wrong.
    status, _ = await send(slack, body, signed(body, content_type))
    assert status == 200


@pytest.mark.parametrize("offset", [-(WINDOW - 60), WINDOW - 60], ids=["4-min-old", "4-min-ahead"])
async def test_clocks_a_few_minutes_apart_still_work(slack: Slack, offset: int) -> None:
    body = slash(slack, "fiona")
    status, text = await send(slack, body, signed(body, FORM, int(time.time()) + offset))
    assert status == 200 and json.loads(text)["blocks"][0]["text"]["text"] == "Finance Fiona"


# replays ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fast_lane", [True, False], ids=["fast-lane", "through-bolt"])
async def test_a_replayed_slash_command_is_refused_and_acts_once(
    slack: Slack, fast_lane: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack.adapter.fast_lane = fast_lane
    taken: list[str] = []
    real = slack.adapter._dispatch_slash

    async def spy(body: dict[str, Any], context: Any) -> Any:
        taken.append(str(body.get("text")))
        return await real(body, context)

    monkeypatch.setattr(slack.adapter, "_dispatch_slash", spy)
    before = fiona_state(slack)
    body = slash(slack, "review fiona", user="UOWNER")
    headers = signed(body, FORM)
    status, text = await send(slack, body, headers)
    assert status == 200 and "Finance Fiona is marked reviewed" in text
    reviewed = fiona_state(slack)
    assert reviewed[0] == before[0] + 1 and reviewed[2] != before[2]
    assert taken == (["review fiona"] if fast_lane else [])

    status, text = await send(slack, body, headers)
    assert status == 401 and json.loads(text) == {"error": "replayed request"}
    assert fiona_state(slack) == reviewed
    assert [u.command for u in slack.usage()] == ["review"]
    assert taken == (["review fiona"] if fast_lane else [])


async def test_a_replayed_deal_outcome_is_not_recorded_twice(slack: Slack) -> None:
    body = slash(slack, "deal D-9 won 5000")
    headers = signed(body, FORM)
    assert (await send(slack, body, headers))[0] == 200
    assert (await send(slack, body, headers))[0] == 401
    assert [(u.command, u.deal_id) for u in slack.usage()] == [("deal", "D-9")]


async def test_a_replayed_mark_reviewed_click_is_refused_and_acts_once(slack: Slack) -> None:
    before = fiona_state(slack)
    body = click(slack, MARK_REVIEWED, user="UOWNER", key="owner")
    headers = signed(body, FORM)
    assert await send(slack, body, headers) == (200, "")
    posted = await slack.fake.wait_for("response_url", path="owner")
    assert posted[0].params["text"].startswith("Finance Fiona is marked reviewed.")
    reviewed = fiona_state(slack)
    assert reviewed[0] == before[0] + 1

    status, text = await send(slack, body, headers)
    assert status == 401 and json.loads(text) == {"error": "replayed request"}
    # A click after the replay is answered: had the replay been accepted, its answer would
    # have been posted before this one.
    other = click(slack, MARK_REVIEWED, user="U1", key="later")
    assert (await send(slack, other, signed(other, FORM)))[0] == 200
    await slack.fake.wait_for("response_url", path="later")
    assert len(slack.fake.of("response_url")) == 2
    assert fiona_state(slack) == reviewed
    assert [(u.command, u.user_id) for u in slack.usage()] == [
        ("review", "UOWNER"),
        ("review", "U1"),
    ]


async def test_a_replayed_editor_submission_saves_nothing_more(slack: Slack) -> None:
    view = await open_editor(slack, "edit fiona", user="UOWNER")
    payload = view_submission_payload(
        view, {"summary": "Reviewed and tightened."}, user="UOWNER", user_name=NAMES["UOWNER"]
    )
    body = interactivity_body(payload)
    headers = signed(body, FORM)
    status, text = await send(slack, body, headers)
    assert status == 200 and json.loads(text) == {"response_action": "clear"}
    saved = fiona_state(slack)
    status, text = await send(slack, body, headers)
    assert status == 401 and json.loads(text) == {"error": "replayed request"}
    assert fiona_state(slack) == saved
    assert [u.command for u in slack.usage()] == ["edit", "save"]


async def test_a_replayed_event_is_acknowledged_and_answered_once(slack: Slack) -> None:
    body = json.dumps(event_body("app_mention.json"))
    headers = signed(body, "application/json")
    assert (await send(slack, body, headers))[0] == 200
    await slack.fake.wait_for("chat.postEphemeral")
    # The same signed delivery again (no retry header): Slack would redeliver an event it
    # thinks was lost, so it is acknowledged, and its event id keeps it from acting twice.
    assert (await send(slack, body, headers))[0] == 200
    later = json.dumps(event_body("app_mention.json", event_id="Ev0LATER", text="<@UBOT> list"))
    assert (await send(slack, later, signed(later, "application/json")))[0] == 200
    await slack.fake.wait_for("chat.postEphemeral", count=2)
    assert len(slack.fake.of("chat.postEphemeral")) == 2
    assert [u.command for u in slack.usage()] == ["lookup", "list"]


async def test_different_requests_in_the_same_second_are_all_answered(slack: Slack) -> None:
    now = int(time.time())
    for text in ("fiona", "fiona", "carlos"):  # each with its own trigger id, as from Slack
        body = slash(slack, text)
        assert (await send(slack, body, signed(body, FORM, now)))[0] == 200
    assert len(slack.usage()) == 3


async def test_the_check_can_be_switched_off_for_load_benchmarks(make_slack: MakeSlack) -> None:
    slack = await make_slack(PERSONA_BOT_SLACK_REPLAY_CHECK="off")
    body = slash(slack, "fiona")
    headers = signed(body, FORM)
    assert [(await send(slack, body, headers))[0] for _ in range(3)] == [200, 200, 200]


def test_the_check_is_on_unless_switched_off(sqlite_url: str) -> None:
    base = {"SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": "xoxb-1"}
    for value, on in (("", True), ("1", True), ("yes", True), ("0", False), ("off", False)):
        env = {**base, "PERSONA_BOT_SLACK_REPLAY_CHECK": value}
        config = load(Settings.from_env(env, database_url=sqlite_url))
        assert config is not None and config.replay_check is on, value


# the memory of signatures ------------------------------------------------------------------


def test_signatures_are_forgotten_once_they_can_no_longer_verify() -> None:
    now = [1_000_000.0]
    guard = ReplayGuard(clock=lambda: now[0])
    assert guard.first_time("1000000", "v0=a")
    assert guard.first_time("1000000", "v0=b")
    assert not guard.first_time("1000000", "v0=a")
    assert guard.first_time(str(1_000_000 + 200), "v0=ahead")  # a clock ahead of ours
    now[0] += WINDOW + 1
    assert guard.first_time(str(int(now[0])), "v0=c")  # pruning happens on the way
    assert len(guard) == 2  # v0=ahead can verify a while longer; a and b cannot
    assert not guard.first_time(str(1_000_000 + 200), "v0=ahead")


def test_the_memory_is_bounded_and_forgets_the_oldest_first() -> None:
    guard = ReplayGuard(limit=3, clock=lambda: 1_000_000.0)
    for sig in ("v0=1", "v0=2", "v0=3", "v0=4"):
        assert guard.first_time("1000000", sig)
    assert len(guard) == 3
    assert not guard.first_time("1000000", "v0=4")
    assert guard.first_time("1000000", "v0=1")  # the oldest was forgotten to make room
