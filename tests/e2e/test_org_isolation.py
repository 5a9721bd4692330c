"""Four organizations on one server, asked at the same time, never see each other.

Two Slack workspaces installed through OAuth (each its own organization) and two Teams
tenants (the configured one, on the default organization, and another company's) each get
their own personas with look-alike profiles (every organization has a CFO persona that fits
the same deal). Dozens of signed slash commands and activities with real tokens, interleaved
across the four, run concurrently (``asyncio.gather``); then the four ask for their stats at
the same time. Every reply names and links only its own organization's personas, a lookup of
another organization's persona finds nothing, fit ranks only its own personas, and the stats
and the stored usage events count exactly that organization's commands. On SQLite and, when
configured, PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from persona_store.models import UsageEvent
from persona_store.schema import parse_persona_text
from persona_store.summary import normalise_gap_text
from tests.e2e.platforms_kit import Platforms, both_platforms, install_slack
from tests.e2e.slack.test_slack_commands import ask, texts_of
from tests.e2e.teams_kit import TENANT_A, TENANT_B, edited
from tests.e2e.test_teams_messages import card_texts


@dataclass(frozen=True)
class Org:
    label: str
    platform: str  # "slack" or "teams"
    workspace: str  # Slack team id or Teams tenant id
    user: str  # the person asking, on that platform
    email: str
    cfo: tuple[str, str]  # (key, name) of its persona that fits the deal
    it: tuple[str, str]  # (key, name) of its other persona
    lookups: int  # how often its CFO persona is looked up (different in every organization)

    @property
    def names(self) -> set[str]:
        return {self.cfo[1], self.it[1]}

    @property
    def keys(self) -> set[str]:
        return {self.cfo[0], self.it[0]}


ORGS = [
    Org("slack A", "slack", "TA", "UA1", "ann@company-a.example",
        ("alpha-alice", "Alpha Alice"), ("alpha-arnold", "Alpha Arnold"), 3),
    Org("slack B", "slack", "TB", "UB1", "bea@company-b.example",
        ("beta-bob", "Beta Bob"), ("beta-bettina", "Beta Bettina"), 4),
    Org("teams A", "teams", TENANT_A, "29:teams-user-of-tenant-a", "gus@company-c.example",
        ("gamma-gina", "Gamma Gina"), ("gamma-gus", "Gamma Gus"), 5),
    Org("teams B", "teams", TENANT_B, "29:teams-user-of-tenant-b", "dora@company-d.example",
        ("delta-dora", "Delta Dora"), ("delta-dan", "Delta Dan"), 6),
]  # fmt: skip
ALL_NAMES = set().union(*(o.names for o in ORGS))
ALL_KEYS = set().union(*(o.keys for o in ORGS))
DEAL = "fit CFO at a fintech, 300 staff, the board wants audit-ready numbers"


def personas_of(org: Org) -> str:
    """Two personas for ``org``: a finance buyer that fits DEAL, an IT buyer that does not."""
    (cfo_key, cfo_name), (it_key, it_name) = org.cfo, org.it
    return json.dumps(
        {
            "personas": [
                {
                    "key": cfo_key,
                    "name": cfo_name,
                    "role": "CFO at a mid-market fintech",
                    "summary": "Signs off every tool; wants audit-ready numbers.",
                    "demographic": {"job_titles": ["CFO"], "seniority": ["C-level"]},
                    "firmographic": {
                        "industries": ["Fintech"],
                        "employees": {"min": 100, "max": 1000},
                    },
                    "goals": ["Audit-ready numbers"],
                },
                {
                    "key": it_key,
                    "name": it_name,
                    "role": "IT director at a retailer",
                    "summary": "Gates every integration.",
                    "demographic": {"job_titles": ["IT Director"], "seniority": ["Director"]},
                    "firmographic": {"industries": ["Retail"], "employees": {"min": 5000}},
                },
            ]
        }
    )


@pytest.fixture
async def platforms(db_url: str) -> AsyncIterator[Platforms]:
    admins = ",".join(o.email for o in ORGS)
    async with both_platforms(
        db_url, slack_mode="oauth", env={"PERSONA_BOT_ADMINS": admins}
    ) as running:
        runtime = running.runtime
        for org in ORGS:
            if org.platform == "slack":
                org_id = await install_slack(running.slack, org.workspace)
                running.slack.fake.add_user(org.workspace, org.user, org.email, org.label)
            else:
                org_id = await runtime.org_for("teams", org.workspace)
                running.teams.connector.add_member(org.user, name=org.label, email=org.email)
            specs = parse_persona_text(personas_of(org), filename=f"{org.cfo[0]}.json")
            # replace: the default organization's sample personas are archived
            runtime.store.import_personas(org_id, specs, "test", replace=True)
        org_ids = [await org_id_of(running, org) for org in ORGS]
        assert len(set(org_ids)) == 4 and runtime.default_org_id in org_ids
        yield running


async def org_id_of(platforms: Platforms, org: Org) -> int:
    return await platforms.runtime.org_for(org.platform, org.workspace)


@dataclass
class Answer:
    org: Org
    text: str  # what was asked
    shown: str  # every visible text of the reply
    targets: list[str]  # what the reply's buttons act on


def button_targets(node: Any) -> list[str]:
    """The values of the buttons (Slack) or the data of the actions (Teams)."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "button":
            found.append(str(node.get("value", "")))
        if isinstance(node.get("data"), dict):
            found.append(str(node["data"].get("args", "")))
        for value in node.values():
            found += button_targets(value)
    elif isinstance(node, list):
        for value in node:
            found += button_targets(value)
    return found


_ids = itertools.count(1)


async def send(platforms: Platforms, org: Org, text: str) -> Answer:
    """``text`` as ``org``'s person types it; the answer as the platform received it."""
    if org.platform == "slack":
        message = await ask(platforms.slack, text, team=org.workspace, user=org.user)
        return Answer(org, text, texts_of(message), button_targets(message["blocks"]))
    teams = platforms.teams
    activity_id = f"isolation-{next(_ids)}"
    body = teams.payload("personal_message", tenant=org.workspace)
    body = edited(
        body,
        id=activity_id,
        text=text,
        conversation={**body["conversation"], "id": f"a:chat-of-{org.user}"},
        **{"from": {"id": org.user, "name": org.label, "aadObjectId": f"aad-{org.user[3:]}"}},
    )
    response = await teams.post(body)
    assert response.status == 201, await response.text()
    [reply] = [r for r in teams.connector.sent() if r.reply_to == activity_id]
    card = reply.card
    assert card is not None
    return Answer(org, text, reply.body["summary"] + "\n" + card_texts(card), button_targets(card))


def assert_only_its_own(answer: Answer) -> None:
    foreign_names = ALL_NAMES - answer.org.names
    foreign_keys = ALL_KEYS - answer.org.keys
    seen = [name for name in foreign_names if name in answer.shown]
    assert seen == [], (answer.org.label, answer.text, answer.shown)
    linked = [
        key
        for target in answer.targets
        for key in foreign_keys
        if re.search(rf"(^|\W){re.escape(key)}($|\W)", target)
    ]
    assert linked == [], (answer.org.label, answer.text, answer.targets)


def other(org: Org) -> Org:
    return ORGS[(ORGS.index(org) + 1) % len(ORGS)]


def plan(org: Org) -> list[str]:
    """What ``org``'s person asks in the concurrent round."""
    return [
        *[org.cfo[1]] * org.lookups,  # by name
        org.it[0],  # by key
        other(org).cfo[0],  # another organization's persona: must not be found
        "list",
        DEAL,
        f"history {org.cfo[0]}",
    ]


def user_of(org: Org) -> str:
    """The user id usage events keep: Slack's user id; in Teams the AAD object id."""
    return org.user if org.platform == "slack" else f"aad-{org.user[3:]}"


def says(shown: str, phrase: str) -> bool:
    """``phrase`` in ``shown`` as a whole ("3 lookups" is not "13 lookups")."""
    return re.search(rf"(?<![\w]){re.escape(phrase)}(?![\w])", shown) is not None


async def test_concurrent_requests_of_four_organizations_stay_isolated(
    platforms: Platforms,
) -> None:
    # Interleaved: one request of each organization in turn, all in flight at once.
    asked = [
        (org, text)
        for texts in itertools.zip_longest(*(plan(org) for org in ORGS))
        for org, text in zip(ORGS, texts, strict=True)
        if text is not None
    ]
    assert len(asked) >= 36
    answers = await asyncio.gather(*(send(platforms, org, text) for org, text in asked))

    for answer in answers:
        assert_only_its_own(answer)
        org, text = answer.org, answer.text
        if text == org.cfo[1]:
            assert org.cfo[1] in answer.shown and "CFO at a mid-market fintech" in answer.shown
        elif text == org.it[0]:
            assert "IT director at a retailer" in answer.shown
        elif text == other(org).cfo[0]:
            assert "No persona matches" in answer.shown, answer.shown
        elif text == "list":
            assert "2 personas" in answer.shown
            assert all(f"{name} (" in answer.shown for name in org.names)
        elif text == DEAL:
            assert f"Best fit: {org.cfo[1]}" in answer.shown, answer.shown
            assert org.cfo[0] in " ".join(answer.targets)  # "This one fits" / "Show ..."
        else:
            assert f"History of {org.cfo[1]}" in answer.shown

    # Every stored usage event belongs to the organization whose person asked.
    runtime = platforms.runtime
    runtime.usage.flush()
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(
                UsageEvent.org_id, UsageEvent.platform, UsageEvent.user_id, func.count()
            ).group_by(UsageEvent.org_id, UsageEvent.platform, UsageEvent.user_id)
        ).all()
    expected = {
        (await org_id_of(platforms, org), org.platform, user_of(org), len(plan(org)))
        for org in ORGS
    }
    assert {tuple(row) for row in rows} == expected

    # The four ask for their stats at the same time (twice each, interleaved).
    stats = await asyncio.gather(*(send(platforms, org, "stats") for org in ORGS * 2))
    for answer in stats:
        assert_only_its_own(answer)
        org = answer.org
        lookups = org.lookups + 1  # the CFO persona by name, the IT persona by key
        assert says(answer.shown, f"{lookups} persona lookups"), answer.shown
        per_persona = re.escape(org.cfo[1]) + r"\W+" + f"{org.lookups} lookups · 1 fit · 1 person"
        assert re.search(per_persona, answer.shown), answer.shown
        assert says(answer.shown, f"{org.platform}: {len(plan(org))} commands, 1 person")
        # Its one failed search is its own gap; nobody else's searches show up.
        gaps = [normalise_gap_text(other(o).cfo[0], "search") for o in ORGS]
        assert [g for g in gaps if g in answer.shown] == [
            normalise_gap_text(other(org).cfo[0], "search")
        ]
