"""The router: one place where every platform's commands are handled, timed and logged.

``await router.dispatch(command)`` finds the organization, the user's role and the handler
for the verb, runs it, and records exactly one usage event, whatever the platform and
whatever the outcome. ``CommandError`` becomes a reply the user can act on; an unreachable
database becomes "temporarily unavailable"; anything else is logged with its command and
platform, and the user gets one short apology.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot import messages
from bot.catalog import Catalog
from bot.errors import CommandError, TemporarilyUnavailable
from bot.grammar import parse
from bot.model import Command, ConversationRef, Reply, UserRef
from bot.permissions import Role, role_of
from bot.runtime import Runtime
from persona_store.usage import UsageRecord

log = logging.getLogger(__name__)


@dataclass
class UsageNote:
    """What a handler learned that the usage event should carry."""

    persona_id: int | None = None
    matched: bool = False
    score: float | None = None
    deal_id: str | None = None
    query: str | None = None


@dataclass
class Turn:
    """One command being handled: the command, its organization, the user's role."""

    command: Command
    org_id: int
    role: Role
    runtime: Runtime
    router: Router
    usage: UsageNote = field(default_factory=UsageNote)

    async def catalog(self) -> Catalog:
        return await self.runtime.catalogs.get(self.org_id)

    @property
    def user(self) -> UserRef:
        return self.command.user


Handler = Callable[[Turn], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    handler: Handler
    advertise: bool = True  # listed by help


class Router:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.routes: dict[str, Route] = {}

    def add(self, verb: str, handler: Handler, *, advertise: bool = True) -> None:
        self.routes[verb] = Route(handler, advertise)

    @property
    def verbs(self) -> frozenset[str]:
        return frozenset(self.routes)

    @property
    def advertised(self) -> list[str]:
        return [verb for verb, route in self.routes.items() if route.advertise]

    def command_from_text(self, text: str, user: UserRef, conversation: ConversationRef) -> Command:
        """Parse typed text (slash command, mention, DM, terminal line) into a Command."""
        parsed = parse(text, extra_verbs=self.verbs)
        return Command(user, conversation, parsed.verb, parsed.args, text)

    async def dispatch(self, command: Command) -> Reply:
        started = time.perf_counter()
        turn: Turn | None = None
        outcome = "ok"
        try:
            org_id = await self.runtime.org_for(
                command.platform,
                command.conversation.workspace,
                command.conversation.workspace_name,
            )
            role = role_of(command.user, self.runtime.settings, command.platform)
            turn = Turn(command, org_id, role, self.runtime, self)
            route = self.routes.get(command.verb)
            if route is None:
                raise CommandError(messages.unknown_verb(command.verb))
            reply = await route.handler(turn)
        except CommandError as exc:
            outcome = "refused"
            reply = messages.error_reply(exc.message, exc.hint)
        except TemporarilyUnavailable:
            outcome = "unavailable"
            reply = messages.error_reply(messages.UNAVAILABLE)
        except Exception:
            outcome = "error"
            log.exception("command %r from %s failed", command.verb, command.platform)
            reply = messages.error_reply(messages.APOLOGY)
        elapsed = time.perf_counter() - started
        self.runtime.metrics.commands.labels(command.verb, command.platform, outcome).inc()
        self.runtime.metrics.command_latency.labels(command.verb).observe(elapsed)
        if turn is not None:
            self._record(turn, elapsed)
        return reply

    def _record(self, turn: Turn, elapsed: float) -> None:
        command, note = turn.command, turn.usage
        self.runtime.usage.record(
            UsageRecord(
                org_id=turn.org_id,
                ts=int(self.runtime.clock().timestamp() * 1000),
                platform=command.platform,
                user_id=command.user.id,
                channel=command.conversation.channel or None,
                command=command.verb[:32],
                persona_id=note.persona_id,
                query=note.query if note.query is not None else (command.args or None),
                matched=note.matched,
                score=note.score,
                deal_id=note.deal_id,
                latency_ms=round(elapsed * 1000, 3),
            )
        )
