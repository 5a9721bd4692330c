"""Events as Slack sends them (JSON): mentions, direct messages, the App Home tab, retried
deliveries and uninstalls. Every event is acked at once and acted on exactly once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tests.e2e.slack.conftest import Slack
from tests.e2e.slack.test_slack_commands import action_ids, texts_of
from tests.fakes.slack_api import view_problems
from tests.fakes.slack_wire import event_body


async def send(slack: Slack, body: dict, *, retry: int | None = None) -> None:
    started = time.monotonic()
    resp = await slack.event(body, retry=retry)
    assert resp.status == 200, await resp.text()
    assert time.monotonic() - started < 3.0  # Slack waits three seconds for the ack


async def test_a_mention_answers_the_asker_in_the_channel(slack: Slack) -> None:
    await send(slack, event_body("app_mention.json"))
    [posted] = await slack.fake.wait_for("chat.postEphemeral")
    assert (posted.params["channel"], posted.params["user"]) == ("C1", "U1")
    assert posted.params["blocks"][0]["text"]["text"] == "Finance Fiona"
    assert "pbx:share" in action_ids(posted.params)
    assert [(u.command, u.channel) for u in slack.usage()] == [("lookup", "C1")]


async def test_a_question_in_a_direct_message_gets_a_fit(slack: Slack) -> None:
    await send(slack, event_body("message_im.json"))
    [posted] = await slack.fake.wait_for("chat.postMessage")
    assert posted.params["channel"] == "D1"
    assert "Which persona fits this deal?" in texts_of(posted.params)
    assert "pbx:share" not in action_ids(posted.params)  # nobody to share with in a DM
    [event] = slack.usage()
    assert event.command == "fit" and event.query is not None and "300-person" in event.query


async def test_a_mention_in_a_thread_is_answered_in_the_thread(slack: Slack) -> None:
    body = event_body("app_mention.json", text="<@UBOT> list", thread_ts="1732871000.000100")
    await send(slack, body)
    [posted] = await slack.fake.wait_for("chat.postEphemeral")
    assert posted.params["thread_ts"] == "1732871000.000100"


@pytest.mark.parametrize(
    "name,event",
    [
        ("message_im.json", {"bot_id": "B999", "user": "U2"}),  # another bot
        ("message_im.json", {"user": "UBOT"}),  # persona-bot itself
        ("message_im.json", {"subtype": "message_changed"}),  # an edit
        ("message_im.json", {"subtype": "bot_message", "user": None}),
        ("message_im.json", {"channel_type": "channel", "channel": "C1"}),
        ("app_mention.json", {"edited": {"user": "U1", "ts": "1.0"}}),
    ],
)
async def test_bots_edits_and_other_messages_are_ignored(
    slack: Slack, name: str, event: dict
) -> None:
    await send(slack, event_body(name, **event))
    await send(slack, event_body("app_mention.json", event_id="Ev0AFTER", text="<@UBOT> help"))
    await slack.fake.wait_for("chat.postEphemeral")  # the later mention was answered...
    assert slack.fake.of("chat.postMessage") == []  # ...the ignored one never was
    assert [u.command for u in slack.usage()] == ["help"]


async def test_a_retried_delivery_is_acked_but_never_answered_twice(slack: Slack) -> None:
    body = event_body("app_mention.json")
    await send(slack, body)
    await slack.fake.wait_for("chat.postEphemeral")
    for attempt in (1, 2, 3):
        await send(slack, body, retry=attempt)
    await send(slack, event_body("app_mention.json", event_id="Ev0NEXT", text="<@UBOT> list"))
    await slack.fake.wait_for("chat.postEphemeral", count=2)
    await slack.adapter.drain(within=5)  # a wrongly accepted retry would be running still
    assert len(slack.fake.of("chat.postEphemeral")) == 2
    assert [u.command for u in slack.usage()] == ["lookup", "list"]


async def test_app_home_lists_personas_with_look_up_buttons(slack: Slack) -> None:
    await send(slack, event_body("app_home_opened.json"))
    [published] = await slack.fake.wait_for("views.publish")
    assert published.params["user_id"] == "U1"
    view = published.params["view"]
    assert view["type"] == "home" and view_problems(view) == []
    shown = texts_of(view)
    assert "Finance Fiona" in shown and "IT Ivan" in shown
    assert [b for b in action_ids(view) if b.startswith("pb:lookup:")]
    assert "due for review" not in shown and "Usage in the last" not in shown
    assert slack.usage() == []  # opening a tab is not a command


async def test_app_home_shows_owners_their_reviews_and_admins_the_usage(slack: Slack) -> None:
    await slack.slash("fiona")
    await send(slack, event_body("app_home_opened.json", user="UADMIN"))
    [admin] = await slack.fake.wait_for("views.publish")
    admin_view = texts_of(admin.params["view"])
    assert "Usage in the last 30 days" in admin_view and "*Commands*\n1" in admin_view
    assert "*Finance Fiona*\n1" in admin_view
    assert "due for review" not in admin_view  # the admin owns no persona

    fiona = slack.runtime.store.get_persona(slack.runtime.default_org_id, "finance-fiona")
    assert fiona is not None and fiona.last_reviewed_at is not None
    later = fiona.last_reviewed_at + timedelta(days=fiona.spec.review_every_days + 1)
    slack.runtime.clock = lambda: later
    await send(slack, event_body("app_home_opened.json", event_id="Ev0HOME2", user="UOWNER"))
    owner = (await slack.fake.wait_for("views.publish", count=2))[1]
    owner_view = texts_of(owner.params["view"])
    assert "Your personas due for review" in owner_view
    assert "Finance Fiona: last reviewed" in owner_view
    assert "Controller Carlos: last" not in owner_view  # owned by someone else
    assert "pb:review:" in " ".join(action_ids(owner.params["view"]))
    assert "pb:edit:" in " ".join(action_ids(owner.params["view"]))  # edit from the nudge too
    assert "Usage in the last 30 days" not in owner_view


async def test_uninstalling_a_single_workspace_install_changes_nothing_else(slack: Slack) -> None:
    await send(slack, event_body("app_uninstalled.json"))
    await send(slack, event_body("tokens_revoked.json"))
    assert slack.fake.of("chat.postMessage") == [] and slack.usage() == []
