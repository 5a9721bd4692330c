"""/persona fit in chat and on the command line: ranking, deal ids, usage, "This one fits"."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.errors import CommandError
from bot.fit import query_from, split_deal_id
from bot.grammar import MAX_INPUT
from bot.model import Buttons, Command
from bot.router import Router
from bot.runtime import Runtime
from persona_store.matcher import DealQuery, FitResult, Matcher
from persona_store.models import Deal, DealPersona, UsageEvent
from tests.conftest import command

FINANCE_DEAL = "VP Finance at a 400-person SaaS company, worried about audit deadlines"


@pytest.mark.parametrize(
    ("text", "deal_id", "rest"),
    [
        ("D-1042: Series B fintech", "D-1042", "Series B fintech"),
        ("deal OPP-7 — bank", "OPP-7", "bank"),
        ("#123: hospital", "#123", "hospital"),
        ("Series B fintech: 300 staff", None, "Series B fintech: 300 staff"),
        ("300 staff", None, "300 staff"),
        ("D-1042:", None, "D-1042:"),
    ],
)
def test_split_deal_id(text: str, deal_id: str | None, rest: str) -> None:
    assert split_deal_id(text) == (deal_id, rest)


async def test_fit_ranks_explains_and_links_the_deal(router: Router, runtime: Runtime) -> None:
    reply = await router.dispatch(command(router, f"fit D-9: {FINANCE_DEAL}"))
    assert reply.kind == "fit" and reply.persona_key == "finance-fiona"
    fit = reply.data["fit"]
    assert isinstance(fit, dict) and fit["best"] == "finance-fiona"
    scores = [m["score"] for m in fit["matches"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 100 for s in scores)
    assert any("400 employees" in r for r in fit["matches"][0]["reasons"])
    runtime.usage.flush()
    with runtime.store.session() as s:
        event = s.scalars(select(UsageEvent)).one()
        assert (event.command, event.matched, event.deal_id) == ("fit", True, "D-9")
        assert event.score == fit["matches"][0]["score"]
        link = s.execute(select(Deal.external_id, DealPersona.source).join(DealPersona)).one()
        assert tuple(link) == ("D-9", "fit")


async def test_this_one_fits_confirms_the_persona_for_the_deal(
    router: Router, runtime: Runtime
) -> None:
    reply = await router.dispatch(command(router, f"fit D-10: {FINANCE_DEAL}"))
    button = next(
        b
        for block in reply.blocks
        if isinstance(block, Buttons)
        for b in block.buttons
        if b.verb == "confirm"
    )
    base = command(router, "x")
    pressed = Command(base.user, base.conversation, button.verb, button.args, "", "button")
    confirm = await router.dispatch(pressed)
    assert "fits deal D-10" in confirm.summary
    with runtime.store.session() as s:
        assert s.scalars(select(DealPersona.source)).all() == ["confirmed"]


async def test_a_non_buyer_gets_an_honest_none(router: Router) -> None:
    reply = await router.dispatch(
        command(router, "which persona fits a student writing a thesis about procurement?")
    )
    assert reply.kind == "fit" and reply.persona_key is None
    assert reply.summary.startswith("No persona fits")
    assert not any(
        b.verb == "confirm"
        for block in reply.blocks
        if isinstance(block, Buttons)
        for b in block.buttons
    )


async def test_fit_without_a_deal_explains_how_to_ask(router: Router) -> None:
    reply = await router.dispatch(command(router, "fit"))
    assert reply.kind == "error" and "Describe the deal" in reply.summary


async def test_lookup_for_a_deal_counts_as_used_on_it(router: Router, runtime: Runtime) -> None:
    reply = await router.dispatch(command(router, "fiona for D-55"))
    assert reply.kind == "card"
    with runtime.store.session() as s:
        assert s.execute(select(Deal.external_id, DealPersona.source).join(DealPersona)).all() == [
            ("D-55", "lookup")
        ]


def test_cli_fit_json_contract(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--db",
            sqlite_url,
            "fit",
            "worried",
            "about",
            "audit",
            "--title",
            "VP Finance",
            "--employees",
            "400",
            "--industry",
            "SaaS",
            "--json",
        ],
        environ={},
        configure_logging=False,
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["best"] == "finance-fiona"
    assert set(data["matches"][0]) >= {"key", "name", "score", "reasons"}
    assert [m["score"] for m in data["matches"]] == sorted(
        (m["score"] for m in data["matches"]), reverse=True
    )


def test_cli_fit_rejects_nonsense_numbers(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["--db", sqlite_url, "fit", "bank", "--revenue", "-5"],
        environ={},
        configure_logging=False,
    )
    assert code == 2
    assert "whole number" in capsys.readouterr().out


@pytest.mark.parametrize("raw", ["²", "¹²", "1e3", "-5", "3.5"])
def test_structured_numbers_must_be_whole_numbers(raw: str) -> None:
    # str.isdigit() accepts superscripts, which int() then refuses.
    with pytest.raises(CommandError, match="must be a whole number"):
        query_from("saas", {"employees": raw})


def test_structured_numbers_may_use_separators_and_any_script_s_digits() -> None:
    assert query_from("saas", {"employees": "1,200"}).employees == 1200
    assert query_from("saas", {"employees": "٣٠٠"}).employees == 300


async def test_a_button_s_huge_deal_text_is_cut_like_typed_text(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    rank = Matcher.rank

    def measured(self: Matcher, query: DealQuery) -> FitResult:
        seen.append(len(query.text))
        return rank(self, query)

    monkeypatch.setattr(Matcher, "rank", measured)
    huge = "Series B fintech, 300 staff, the CFO worries about audit. " * 2000
    base = command(router, "x")
    reply = await router.dispatch(Command(base.user, base.conversation, "fit", huge, "", "button"))
    assert reply.kind == "fit"
    assert seen == [MAX_INPUT]
