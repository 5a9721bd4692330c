"""The Teams activity handler: translate, ``await router.dispatch(command)``, send the card.

Messages (typed text in personal chats, group chats and channels, and card submissions)
become Commands and go through the same router and handlers as every other platform. The
handler also remembers conversation references for proactive messages (on every message and
on install), shows "typing" while a slow command works, welcomes people when the app is
added, and answers empty messages, files and unknown buttons with a hint.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    AdaptiveCardInvokeValue,
    ChannelAccount,
)
from botbuilder.schema.teams import TeamInfo

from adapters.teams import texts
from adapters.teams.config import EMULATOR_TENANT, TeamsConfig
from adapters.teams.forms import activity_for, card_for, form_submission
from adapters.teams.notifier import REPLY_RETRY, RetryPolicy, send_with_retries
from adapters.teams.references import Person, ReferenceBook
from adapters.teams.translate import (
    CARD_CONTENT_TYPE,
    CardContent,
    activity_from_reply,
    card_from_reply,
    command_from_activity,
    feedback_follow_up,
    tenant_of,
    unusable_reason,
)
from bot.memo import RenderMemo, reused
from bot.model import Command, Reply
from bot.router import Router
from bot.runtime import Runtime

log = logging.getLogger(__name__)

TYPING_EVERY = 3.0  # Teams shows "typing" for about three seconds per indicator
UNUSABLE = {"empty": texts.EMPTY, "attachment": texts.ATTACHMENT, "foreign": texts.FOREIGN}


class PersonaTeamsBot(TeamsActivityHandler):
    def __init__(
        self,
        runtime: Runtime,
        router: Router,
        book: ReferenceBook,
        config: TeamsConfig,
        *,
        retry: RetryPolicy = REPLY_RETRY,
    ) -> None:
        self.runtime = runtime
        self.router = router
        self.book = book
        self.config = config
        self.retry = retry  # of the replies (a rate limit, a 5xx or a timeout is tried again)
        self._cards: RenderMemo[CardContent] = RenderMemo()

    # messages ---------------------------------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        tenant = self._tenant(turn_context.activity)
        if tenant is None:
            await self._say(turn_context, texts.text(texts.NOT_TEAMS))
            return
        person = await self._remember_sender(turn_context, tenant)
        command = self._command(turn_context.activity, tenant, person)
        if command is None:
            reason = unusable_reason(turn_context.activity)
            await self._say(turn_context, texts.text(UNUSABLE[reason]))
            return
        reply = await self._with_typing(turn_context, self._run(command))
        await self._say(turn_context, reply)

    async def _run(self, command: Command) -> Reply:
        reply = await self.router.dispatch(command)
        follow_up = feedback_follow_up(command)
        if follow_up is not None and reply.kind != "error":
            reply = await self.router.dispatch(follow_up)
        return reply

    async def _with_typing(self, turn_context: TurnContext, work: Awaitable[Reply]) -> Reply:
        """Run the command; if it takes a while, show "typing" until it is done."""
        task = asyncio.ensure_future(work)
        wait = self.config.typing_after
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=wait)
                if done:
                    return task.result()
                try:
                    await turn_context.send_activity(Activity(type=ActivityTypes.typing))
                except Exception as exc:  # cosmetic: the answer matters, not the indicator
                    log.debug("typing indicator not sent: %s", type(exc).__name__)
                wait = TYPING_EVERY
        except BaseException:
            task.cancel()
            raise

    async def _say(self, turn_context: TurnContext, reply: Reply) -> None:
        if reply.form is not None:
            activity = activity_for(reply)
        elif reused(reply):
            # A persona card is the same reply object for every lookup of it: rendered once.
            content = self._cards.get(reply, None, lambda: CardContent(card_from_reply(reply)))
            activity = activity_from_reply(reply, content)
        else:
            activity = activity_from_reply(reply)
        await send_with_retries(lambda: turn_context.send_activity(activity), self.retry)

    def _command(self, activity: Activity, tenant: str, person: Person) -> Command | None:
        """A submitted editor form, else a button's or the typed command."""
        return form_submission(activity, tenant=tenant, email=person.email) or (
            command_from_activity(
                activity, verbs=self.router.verbs, tenant=tenant, email=person.email
            )
        )

    # card submissions that arrive as invokes (Action.Execute, msteams invoke buttons) --------

    async def on_adaptive_card_invoke(
        self, turn_context: TurnContext, invoke_value: AdaptiveCardInvokeValue
    ) -> AdaptiveCardInvokeResponse:
        reply = await self._submitted(turn_context)
        # Universal Actions replace the card in place with the answer.
        return AdaptiveCardInvokeResponse(
            status_code=200, type=CARD_CONTENT_TYPE, value=card_for(reply)
        )

    async def on_teams_card_action_invoke(self, turn_context: TurnContext) -> InvokeResponse:
        reply = await self._submitted(turn_context)
        await self._say(turn_context, reply)
        return InvokeResponse(status=200)

    async def _submitted(self, turn_context: TurnContext) -> Reply:
        tenant = self._tenant(turn_context.activity)
        if tenant is None:
            return texts.text(texts.NOT_TEAMS)
        person = await self._remember_sender(turn_context, tenant)
        command = self._command(turn_context.activity, tenant, person)
        if command is None:
            return texts.text(texts.FOREIGN)
        return await self._run(command)

    # installs ---------------------------------------------------------------------------

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        await self._members_added(members_added, turn_context)

    async def on_teams_members_added_dispatch(
        self, members_added: list[ChannelAccount], team_info: TeamInfo, turn_context: TurnContext
    ) -> None:
        # Replaces botbuilder's version, which asks the connector about every added member.
        await self._members_added(members_added, turn_context)

    async def _members_added(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        activity = turn_context.activity
        tenant = self._tenant(activity)
        if tenant is None:
            return
        bot_id = activity.recipient.id if activity.recipient is not None else None
        bot_added = any(member.id == bot_id for member in members_added)
        org_id = await self._org(tenant)
        if org_id is not None:
            for member in members_added:
                if member.id != bot_id:
                    await self._remember(activity, org_id, tenant, None, user=member)
            if bot_added:
                await self._remember(activity, org_id, tenant, None)
        if bot_added:
            await self._say(turn_context, texts.welcome(self.router.advertised))

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        tenant = self._tenant(turn_context.activity)
        if tenant is not None:
            await self._remember_sender(turn_context, tenant)

    async def on_installation_update_remove(self, turn_context: TurnContext) -> None:
        await self._forget_conversation(turn_context)

    async def on_members_removed_activity(
        self, members_removed: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        await self._members_removed(members_removed, turn_context)

    async def on_teams_members_removed_dispatch(
        self, members_removed: list[ChannelAccount], team_info: TeamInfo, turn_context: TurnContext
    ) -> None:
        await self._members_removed(members_removed, turn_context)

    async def _members_removed(
        self, members_removed: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        recipient = turn_context.activity.recipient
        if recipient is not None and any(m.id == recipient.id for m in members_removed):
            await self._forget_conversation(turn_context)

    async def _forget_conversation(self, turn_context: TurnContext) -> None:
        """The bot left a conversation: nothing can be sent there any more."""
        activity = turn_context.activity
        tenant = self._tenant(activity)
        if tenant is not None and activity.conversation is not None and activity.conversation.id:
            try:
                await self.book.forget(tenant, activity.conversation.id)
            except Exception as exc:
                log.warning("Teams references of a removed app kept (%s)", type(exc).__name__)

    # helpers ----------------------------------------------------------------------------

    def _tenant(self, activity: Activity) -> str | None:
        tenant = tenant_of(activity)
        if tenant is None and self.config.mode == "emulator":
            return EMULATOR_TENANT
        return tenant

    async def _org(self, tenant: str) -> int | None:
        try:
            return await self.runtime.org_for("teams", tenant)
        except Exception as exc:  # the router reports outages to the user; here just skip
            log.warning("organization of a Teams tenant unknown (%s)", type(exc).__name__)
            return None

    async def _remember_sender(self, turn_context: TurnContext, tenant: str) -> Person:
        """Who sent this turn (with their email when known), remembered for proactive sends.
        Storage trouble never stops the answer."""
        sender = turn_context.activity.from_property
        person = Person(user_id=(sender.id if sender is not None else "") or "")
        try:
            person = await self.book.person(turn_context, tenant)
        except Exception as exc:
            log.warning("Teams user not looked up (%s)", type(exc).__name__)
        org_id = await self._org(tenant)
        if org_id is not None:
            await self._remember(turn_context.activity, org_id, tenant, person)
        return person

    async def _remember(
        self,
        activity: Activity,
        org_id: int,
        tenant: str,
        person: Person | None,
        *,
        user: ChannelAccount | None = None,
    ) -> None:
        try:
            await self.book.remember(activity, org_id, tenant, person, user=user)
        except Exception as exc:
            log.warning("Teams conversation reference not stored (%s)", type(exc).__name__)
