"""Conversation references of the Teams bot: remembered on every message and install, found
again for proactive messages.

``ReferenceBook`` sits between the activity handler and ``TeamsReferenceStore``: it builds the
reference of (conversation, user) from an activity, writes it only when something changed
(a new person or conversation, a new service URL, a newly learned email), looks a sender's
email up once through the Bot Connector (Teams does not put it in activities), and refuses
to store a service URL that is not an allowed Bot Connector host.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from botbuilder.core import BotAdapter, TurnContext
from botbuilder.schema import Activity, ChannelAccount, ConversationReference

from adapters.teams.config import ServiceUrlPolicy
from adapters.teams.translate import base_conversation_id, channel_id_of, conversation_type
from bot.runtime import Runtime
from persona_store.teams_references import ReferenceRecord, TeamsReferenceStore

log = logging.getLogger(__name__)

CACHE_LIMIT = 50_000  # entries per in-memory cache before it is cleared
LOOKUP_RETRY = 3600.0  # seconds before a failed email lookup is tried again
LOOKUP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Person:
    """A Teams user as far as the bot knows them."""

    user_id: str  # the Bot Framework id ("29:...")
    aad_object_id: str | None = None
    email: str | None = None
    name: str | None = None


def reference_of(activity: Activity, user: ChannelAccount | None = None) -> ConversationReference:
    """The reference to continue the activity's conversation with ``user`` (default: the
    sender) later. Channel references point at the channel, not at one thread of it."""
    reference = TurnContext.get_conversation_reference(activity)
    reference.activity_id = None
    if user is not None:
        reference.user = user
    if reference.conversation is not None and reference.conversation.id:
        reference.conversation.id = base_conversation_id(reference.conversation.id)
    return reference


def serialize_reference(reference: ConversationReference, tenant: str) -> dict[str, Any]:
    data: dict[str, Any] = reference.serialize()
    conversation = data.setdefault("conversation", {})
    # Teams spells it tenantId; botbuilder's model writes tenantID. Keep both readable.
    conversation["tenantId"] = tenant
    return data


def _bounded(cache: dict[Any, Any]) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()


class ReferenceBook:
    """Remembers where people can be reached; reads and writes through ``runtime.db``."""

    def __init__(self, runtime: Runtime, policy: ServiceUrlPolicy) -> None:
        self.runtime = runtime
        self.policy = policy
        self.store = TeamsReferenceStore(runtime.engine)
        self._written: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        self._people: dict[tuple[str, str], Person] = {}
        self._failed_lookups: dict[tuple[str, str], float] = {}

    async def person(self, turn_context: TurnContext, tenant: str) -> Person:
        """The sender of this turn, with their email when Teams tells it (asked once)."""
        sender = turn_context.activity.from_property
        user_id = (sender.id if sender is not None else None) or ""
        seen = Person(
            user_id=user_id,
            aad_object_id=getattr(sender, "aad_object_id", None),
            name=getattr(sender, "name", None),
        )
        key = (tenant, user_id)
        known = self._people.get(key)
        if known is not None and known.email:
            return known
        if known is None and user_id:
            stored = await self.runtime.db(self.store.known_user, tenant, user_id)
            if stored is not None and stored.email:
                aad = stored.aad_object_id or seen.aad_object_id
                known = Person(user_id, aad, stored.email, seen.name)
                _bounded(self._people)
                self._people[key] = known
                return known
        failed_at = self._failed_lookups.get(key)
        if not user_id or (failed_at is not None and time.monotonic() - failed_at < LOOKUP_RETRY):
            return seen
        email = await self._lookup_email(turn_context, user_id)
        if email is None:
            _bounded(self._failed_lookups)
            self._failed_lookups[key] = time.monotonic()
            _bounded(self._people)
            self._people[key] = seen
            return seen
        person = Person(user_id, seen.aad_object_id, email, seen.name)
        _bounded(self._people)
        self._people[key] = person
        return person

    async def _lookup_email(self, turn_context: TurnContext, user_id: str) -> str | None:
        activity = turn_context.activity
        team = (
            (activity.channel_data or {}).get("team")
            if isinstance(activity.channel_data, dict)
            else None
        )
        # In a team the roster is the team's; elsewhere the conversation's.
        roster = team.get("id") if isinstance(team, dict) and team.get("id") else None
        roster = roster or base_conversation_id(activity.conversation.id or "")
        try:
            connector = turn_context.turn_state[BotAdapter.BOT_CONNECTOR_CLIENT_KEY]
            member = await asyncio.wait_for(
                connector.conversations.get_conversation_member(roster, user_id), LOOKUP_TIMEOUT
            )
        except Exception as exc:  # the answer still goes out, without the email
            log.info("no email for a Teams user (%s)", type(exc).__name__)
            return None
        extra = getattr(member, "additional_properties", None) or {}
        email = (
            getattr(member, "email", None) or extra.get("email") or extra.get("userPrincipalName")
        )
        return email.strip().lower()[:320] if isinstance(email, str) and "@" in email else None

    async def remember(
        self,
        activity: Activity,
        org_id: int,
        tenant: str,
        person: Person | None = None,
        *,
        user: ChannelAccount | None = None,
    ) -> bool:
        """Store the reference of (this conversation, the sender or ``user``); True when
        written, False when nothing changed or the service URL is not allowed."""
        service_url = activity.service_url or ""
        if not self.policy.allows(service_url):
            log.warning("not storing a Teams reference with a service URL outside the allow list")
            return False
        account = user or activity.from_property
        if account is None or not account.id or activity.conversation is None:
            return False
        conversation_id = base_conversation_id(activity.conversation.id or "")
        email = person.email if person is not None and user is None else None
        aad_object_id = getattr(account, "aad_object_id", None)
        user_name = getattr(account, "name", None)
        kind = conversation_type(activity)
        channel_id = channel_id_of(activity)
        key = (tenant, conversation_id, account.id)
        fingerprint = (org_id, service_url, email, aad_object_id, user_name, kind, channel_id)
        # Known and unchanged (every message after the first): nothing to build or write.
        if self._written.get(key) == fingerprint:
            return False
        reference = reference_of(activity, user)
        record = ReferenceRecord(
            org_id=org_id,
            tenant_id=tenant,
            conversation_id=reference.conversation.id or "",
            conversation_type=kind,
            user_id=account.id,
            service_url=service_url,
            reference=serialize_reference(reference, tenant),
            channel_id=channel_id,
            aad_object_id=aad_object_id,
            email=email,
            user_name=user_name,
        )
        await self.runtime.db(self.store.save, record, self.runtime.clock())
        _bounded(self._written)
        self._written[key] = fingerprint
        return True

    async def forget(self, tenant: str, conversation_id: str) -> int:
        """The bot was removed from a conversation: it can no longer be reached there."""
        conversation_id = base_conversation_id(conversation_id)
        for key in [k for k in self._written if k[0] == tenant and k[1] == conversation_id]:
            del self._written[key]
        return await self.runtime.db(self.store.forget_conversation, tenant, conversation_id)

    async def find_user(
        self, org_id: int, *, user_id: str | None, email: str | None
    ) -> list[ReferenceRecord]:
        return await self.runtime.db(self.store.find_user, org_id, user_id=user_id, email=email)

    async def find_channel(self, org_id: int, channel: str) -> ReferenceRecord | None:
        return await self.runtime.db(self.store.find_channel, org_id, channel)

    async def save(self, record: ReferenceRecord) -> None:
        """Store a reference made elsewhere (a personal chat the notifier opened)."""
        await self.runtime.db(self.store.save, record, self.runtime.clock())
