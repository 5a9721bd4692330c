"""The router and handlers, without any platform: a conversation in commands and replies."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from bot.model import Button, Buttons, Command, Fields, Header, Image, Text
from bot.router import Router
from bot.runtime import Runtime
from persona_store.models import Feedback, UsageEvent
from tests.conftest import command


async def ask(router: Router, text: str, **kw: str):  # type: ignore[no-untyped-def]
    return await router.dispatch(command(router, text, **kw))


def usage_rows(runtime: Runtime) -> list[UsageEvent]:
    runtime.usage.flush()
    with runtime.store.session() as s:
        return list(s.scalars(select(UsageEvent).order_by(UsageEvent.id)))


async def test_lookup_returns_the_full_card(router: Router) -> None:
    reply = await ask(router, "fiona")
    assert reply.kind == "card" and reply.persona_key == "finance-fiona"
    kinds = [type(b) for b in reply.blocks]
    assert kinds[0] is Header and Image in kinds and Buttons in kinds
    titles = {b.title for b in reply.blocks if isinstance(b, Fields | Text)}
    assert {"Demographic", "Firmographic", "Behavioral", "Psychographic"} <= titles
    assert {"Goals", "Pain points", "Objections"} <= titles
    assert "Owner:" in reply.blocks[-2].text and "last reviewed" in reply.blocks[-2].text  # type: ignore[union-attr]


async def test_ambiguous_and_unknown_names_say_what_to_do(router: Router) -> None:
    unknown = await ask(router, "xyzzy")
    assert unknown.kind == "suggest" and "No persona matches 'xyzzy'" in unknown.summary
    verb_typo = await ask(router, "hepl")
    assert "Did you mean the command `/persona help`" in verb_typo.summary


async def test_every_command_is_one_usage_event(router: Router, runtime: Runtime) -> None:
    await ask(router, "fiona", user="U7", channel="C9")
    await ask(router, "xyzzy")
    await ask(router, "list")
    await ask(router, "stats")  # refused for members, still logged
    rows = usage_rows(runtime)
    assert [(r.command, r.matched) for r in rows] == [
        ("lookup", True),
        ("lookup", False),
        ("list", False),
        ("stats", False),
    ]
    first = rows[0]
    fiona = runtime.store.get_persona(runtime.default_org_id, "finance-fiona")
    assert fiona is not None
    assert (first.user_id, first.channel, first.platform) == ("U7", "C9", "slack")
    assert first.persona_id == fiona.id and first.query == "fiona"
    assert first.latency_ms is not None and first.latency_ms >= 0
    assert rows[1].persona_id is None and rows[1].query == "xyzzy"


async def test_stats_is_for_managers_and_admins(router: Router) -> None:
    member = await ask(router, "stats 7")
    assert member.kind == "error" and "managers and admins" in member.summary
    await ask(router, "fiona")
    admin = await ask(router, "stats 7", user="U_ADMIN")
    assert admin.kind == "stats"
    assert admin.data["by_command"]["lookup"] >= 1  # type: ignore[index]
    bad = await ask(router, "stats lots", user="U_ADMIN")
    assert bad.kind == "error" and "number of days" in bad.summary


async def test_review_is_for_owners_and_admins(router: Router, runtime: Runtime) -> None:
    fiona = runtime.store.get_persona(runtime.default_org_id, "finance-fiona")
    assert fiona is not None and fiona.spec.owner
    refused = await ask(router, "review fiona", user="U_SOMEONE")
    assert refused.kind == "error" and "owner" in refused.summary
    assert runtime.store.history(runtime.default_org_id, "finance-fiona")[0].action == "created"
    by_owner = await ask(router, "review fiona", user="U_OWNER", email=fiona.spec.owner)
    assert "marked reviewed" in by_owner.summary
    history = runtime.store.history(runtime.default_org_id, "finance-fiona")
    assert history[0].action == "reviewed" and history[0].author == "u_owner"


async def test_feedback_and_rating_buttons_land_in_one_table(
    router: Router, runtime: Runtime
) -> None:
    reply = await ask(router, "feedback finance fiona objections are out of date")
    assert "Thanks" in reply.summary
    card = await ask(router, "fiona")
    down = next(
        b
        for block in card.blocks
        if isinstance(block, Buttons)
        for b in block.buttons
        if "down" in b.args
    )
    await router.dispatch(press(router, down))
    empty = await ask(router, "feedback fiona")
    assert empty.kind == "error" and "What would you like to say" in empty.summary
    with runtime.store.session() as s:
        rows = s.execute(select(Feedback.rating, Feedback.comment).order_by(Feedback.id)).all()
    assert [tuple(r) for r in rows] == [(0, "objections are out of date"), (-1, None)]


def press(router: Router, button: Button) -> Command:
    base = command(router, "x")
    return Command(base.user, base.conversation, button.verb, button.args, button.label, "button")


async def test_history_shows_changes_readably(router: Router, runtime: Runtime) -> None:
    await ask(router, "review fiona", user="U_ADMIN")
    reply = await ask(router, "history fiona")
    assert reply.kind == "history"
    lines = next(b for b in reply.blocks if isinstance(b, Text) and b.items).items
    assert lines[0].startswith("#2 ") and "reviewed" in lines[0]
    assert lines[1].startswith("#1 ") and "created" in lines[1]


async def test_health_counts_the_classic_failures(router: Router) -> None:
    reply = await ask(router, "health")
    assert reply.kind == "health"
    assert reply.data["problems"] == 0  # fresh samples: complete, reviewed, new


async def test_a_crash_is_logged_and_the_user_gets_an_apology(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(turn):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    router.add("list", broken)
    with caplog.at_level(logging.ERROR):
        reply = await ask(router, "list")
    assert reply.kind == "error" and "Sorry" in reply.summary and "boom" not in reply.summary
    assert any("'list' from slack failed" in r.getMessage() for r in caplog.records)


async def test_organizations_do_not_see_each_others_personas(
    router: Router, runtime: Runtime
) -> None:
    runtime.home_workspaces["slack"] = {"T_HOME"}
    home = await ask(router, "fiona", workspace="T_HOME")
    assert home.kind == "card"
    stranger = await ask(router, "fiona", workspace="T_STRANGER")
    assert stranger.kind == "error" and "no personas yet" in stranger.summary.lower()
