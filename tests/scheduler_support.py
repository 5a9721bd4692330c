"""Helpers shared by the scheduler's tests: a clock tests move by hand, personas with owners,
pressing a button of a delivered message as a given person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.model import Button, Buttons, Command, ConversationRef, Reply, UserRef
from bot.router import Router
from persona_store.records import Firmographic, IntRange, PersonaSpec


@dataclass
class FakeClock:
    """The injectable clock: ``runtime.clock`` returns ``now`` until a test moves it."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def persona(key: str, owner: str | None, every: int = 90) -> PersonaSpec:
    return PersonaSpec(
        key=key,
        name=key.replace("-", " ").title(),
        role="Buyer",
        summary=f"{key} buys things.",
        owner=owner,
        review_every_days=every,
        firmographic=Firmographic(industries=("SaaS",), employees=IntRange(50, 500)),
    )


def button(reply: Reply, label: str) -> Button:
    for block in reply.blocks:
        if isinstance(block, Buttons):
            for b in block.buttons:
                if b.label == label:
                    return b
    raise AssertionError(f"no button {label!r} in {reply.summary!r}")


async def press(router: Router, reply: Reply, label: str, *, user: str, email: str) -> Reply:
    """Press a button of ``reply`` in Slack workspace T1 (the home workspace)."""
    b = button(reply, label)
    command = Command(
        UserRef(id=user, name=user.lower(), email=email),
        ConversationRef(platform="slack", workspace="T1", channel="D1"),
        b.verb,
        b.args,
        b.label,
        "button",
    )
    return await router.dispatch(command)
