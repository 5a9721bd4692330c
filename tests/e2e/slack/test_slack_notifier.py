"""The Slack notifier the scheduler uses: DMs by user id or email, channel posts, retries
that honour Retry-After, and Slack's errors mapped onto DeliveryError / Undeliverable."""

from __future__ import annotations

import time

import pytest

from bot.cards import persona_card
from bot.model import Reply
from bot.notify import DeliveryError, Notifier, Recipient, Undeliverable
from tests.e2e.slack.conftest import BOT_TOKEN, TOKENS, Slack
from tests.e2e.slack.test_slack_oauth import install
from tests.fakes.slack_api import DISCONNECT, block_kit_problems


def nudge(slack: Slack) -> Reply:
    fiona = slack.runtime.store.get_persona(slack.runtime.default_org_id, "finance-fiona")
    assert fiona is not None
    return persona_card(fiona, slack.runtime.clock())


def notifier(slack: Slack) -> Notifier:
    found = slack.runtime.notifiers["slack"]
    assert isinstance(found, Notifier) and found.platform == "slack"
    return found


async def test_dm_by_user_id_by_email_and_a_channel_post(slack: Slack) -> None:
    org = slack.runtime.default_org_id
    send = notifier(slack).send
    by_id = await send(Recipient(org, user_id="UOWNER"), nudge(slack))
    by_email = await send(Recipient(org, email="fiona.owner@tallyworks.example"), nudge(slack))
    in_channel = await send(Recipient(org, channel="#persona-owners"), Reply.text("Digest"))
    posts = slack.fake.of("chat.postMessage")
    assert [p.params["channel"] for p in posts] == ["UOWNER", "UOWNER", "persona-owners"]
    assert all(p.token == BOT_TOKEN for p in posts)
    assert all(block_kit_problems(p.params["blocks"]) == [] for p in posts)
    assert posts[0].params["blocks"][0]["text"]["text"] == "Finance Fiona"
    assert by_id.startswith("DOWNER:") and by_email.startswith("DOWNER:")
    assert in_channel.startswith("persona-owners:")
    [lookup] = slack.fake.of("users.lookupByEmail")
    assert lookup.params["email"] == "fiona.owner@tallyworks.example"


async def test_rate_limits_are_retried_after_the_wait_slack_asks_for(slack: Slack) -> None:
    slack.fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=1)
    started = time.monotonic()
    await notifier(slack).send(Recipient(slack.runtime.default_org_id, user_id="U1"), nudge(slack))
    waited = time.monotonic() - started
    attempts = slack.fake.of("chat.postMessage")
    assert len(attempts) == 2 and waited >= 1.0
    assert attempts[1].at - attempts[0].at >= 1.0


async def test_a_long_rate_limit_goes_back_to_the_outbox(slack: Slack) -> None:
    slack.fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=120)
    with pytest.raises(DeliveryError) as caught:
        await notifier(slack).send(
            Recipient(slack.runtime.default_org_id, user_id="U1"), nudge(slack)
        )
    assert caught.value.retryable and caught.value.retry_after == 120
    assert len(slack.fake.of("chat.postMessage")) == 1  # not retried inline


async def test_server_errors_are_retried_once(slack: Slack) -> None:
    slack.fake.fail("chat.postMessage", "internal_error", status=500)
    await notifier(slack).send(Recipient(slack.runtime.default_org_id, user_id="U1"), nudge(slack))
    assert len(slack.fake.of("chat.postMessage")) == 2


@pytest.mark.parametrize(
    "recipient,error",
    [
        (Recipient(0, email="nobody@tallyworks.example"), "users_not_found"),
        (Recipient(0, channel="C404"), "channel_not_found"),
        (Recipient(0, channel="CPRIVATE"), "not_in_channel"),
    ],
)
async def test_unreachable_recipients_are_undeliverable(
    slack: Slack, recipient: Recipient, error: str
) -> None:
    slack.fake.missing_channels.add("C404")
    if error == "not_in_channel":
        slack.fake.fail("chat.postMessage", "not_in_channel")
    with pytest.raises(Undeliverable) as caught:
        await notifier(slack).send(recipient, nudge(slack))
    assert error in str(caught.value) and not caught.value.retryable


async def test_a_dropped_connection_is_retried(slack: Slack) -> None:
    slack.fake.fail("chat.postMessage", DISCONNECT)
    sent = await notifier(slack).send(Recipient(0, user_id="U1"), nudge(slack))
    assert sent.startswith("D1:") and len(slack.fake.of("chat.postMessage")) == 2


async def test_revoked_tokens_and_lost_connections(slack: Slack) -> None:
    slack.fake.fail("chat.postMessage", "token_revoked")
    with pytest.raises(DeliveryError) as revoked:
        await notifier(slack).send(Recipient(0, user_id="U1"), nudge(slack))
    assert not revoked.value.retryable and BOT_TOKEN not in str(revoked.value)
    await slack.fake.close()  # Slack unreachable
    with pytest.raises(DeliveryError) as lost:
        await notifier(slack).send(Recipient(0, user_id="U1"), nudge(slack))
    assert lost.value.retryable and not isinstance(lost.value, Undeliverable)


async def test_oauth_installs_deliver_with_their_own_token(oauth_slack: Slack) -> None:
    await install(oauth_slack, "TB")
    org_b = await oauth_slack.runtime.org_for("slack", "TB")
    await notifier(oauth_slack).send(Recipient(org_b, user_id="U1"), Reply.text("Hello B"))
    [post] = oauth_slack.fake.of("chat.postMessage")
    assert post.token == TOKENS["TB"]
    with pytest.raises(Undeliverable):  # the default organization has no workspace installed
        await notifier(oauth_slack).send(
            Recipient(oauth_slack.runtime.default_org_id, user_id="U1"), Reply.text("Hi")
        )
