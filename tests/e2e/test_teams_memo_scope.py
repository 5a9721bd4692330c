"""The Teams adapter keeps Adaptive Cards only of persona cards, which later lookups hand out
again; a fit or the help is rendered for its one answer and not kept."""

from __future__ import annotations

from tests.e2e.teams_kit import edited, teams_harness


async def test_only_persona_cards_are_kept(sqlite_url: str) -> None:
    async with teams_harness(sqlite_url) as teams:
        memo = teams.teams.bot._cards
        texts = ("fit a 300-person fintech whose CFO wants audit", "help", "fiona", "fiona")
        for sent, text in enumerate(texts, 1):
            response = await teams.post(edited(teams.payload("personal_message"), text=text))
            assert response.status == 201
            replies = await teams.connector.wait_for(count=sent)
            assert replies[-1].card is not None
        assert replies[-1].body["summary"].startswith("Finance Fiona")
        assert replies[-1].card == replies[-2].card
        assert len(memo) == 1  # Fiona's card, once; not the fit, not the help
