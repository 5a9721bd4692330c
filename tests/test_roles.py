"""Who may do what: every privileged action against every role, as one table.

Roles (``bot.permissions``): admins (``PERSONA_BOT_ADMINS``, here by email) create, edit,
archive and review any persona and read summaries; managers (``PERSONA_BOT_MANAGERS``, here
by user id) read summaries and the dashboard; a persona's owner reviews, snoozes, edits and
archives that persona (and no other); members look up, give feedback, read a persona's
history and record deal outcomes; the terminal (``persona-bot chat`` and the CLI) acts as an
admin. A refusal is a polite sentence naming who may, and changes nothing in the database.

The table is run through the router, then the review button and ``stats`` through the real
Slack (signed requests) and Teams (signed activities) paths, and the dashboard's signed
links through the web app.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import MetaData, select

from bot.cli import main
from bot.dashboard import sign, verify
from bot.editor import persona_form
from bot.handlers import default_router
from bot.model import Command, ConversationRef, Reply, UserRef
from bot.permissions import terminal_user
from bot.router import Router
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web import create_app
from persona_store import outbox
from persona_store.deals import deal_info
from persona_store.records import StoredPersona
from scheduler.messages import reply_for
from scheduler.verbs import install
from tests.e2e.slack.conftest import MakeSlack, Slack, fake_slack, make_slack  # noqa: F401 (fixtures)
from tests.e2e.teams_kit import TeamsHarness, edited, teams_harness
from tests.fakes.slack_wire import actions_payload, event_body
from tests.scheduler_support import FakeClock, button
from tests.test_scheduler_commands import nudge_row

FIONA, CARLOS = "finance-fiona", "controller-carlos"
FIONA_OWNER = "fiona.owner@tallyworks.example"  # in the sample personas
ADMIN_EMAIL = "Ada.Admin@Example.com"  # listed in lower case: emails match in any case
DASHBOARD_SECRET = "dashboard-secret-for-the-roles-test"
ROLES = ("admin", "manager", "owner", "member", "terminal")

# role x action -> allowed (every other role is refused).
POLICY: dict[str, frozenset[str]] = {
    "new": frozenset({"admin", "terminal"}),
    "create": frozenset({"admin", "terminal"}),
    "edit": frozenset({"admin", "owner", "terminal"}),
    "save": frozenset({"admin", "owner", "terminal"}),
    "archive": frozenset({"admin", "owner", "terminal"}),
    "review": frozenset({"admin", "owner", "terminal"}),
    "review-not-owned": frozenset({"admin", "terminal"}),
    "still-accurate": frozenset({"admin", "owner", "terminal"}),
    "snooze": frozenset({"admin", "owner", "terminal"}),
    "stats": frozenset({"admin", "manager", "terminal"}),
    "dashboard": frozenset({"admin", "manager", "terminal"}),
    "history": frozenset(ROLES),
    "deal": frozenset(ROLES),
}
REFUSALS = {
    "new": "Only admins can create personas.",
    "create": "Only admins can create personas.",
    "edit": "Only its owner and admins can edit Finance Fiona.",
    "save": "Only its owner and admins can edit Finance Fiona.",
    "archive": "Only its owner and admins can archive Finance Fiona.",
    "review": "Only its owner and admins can mark Finance Fiona reviewed.",
    "review-not-owned": "Only its owner and admins can mark Controller Carlos reviewed.",
    "still-accurate": "Only its owner and admins can mark Finance Fiona reviewed.",
    "snooze": "Only its owner and admins can snooze the review of Finance Fiona.",
    "stats": "Only managers and admins can read usage summaries.",
    "dashboard": "Only managers and admins can open the dashboard.",
}
MATRIX = [(role, action) for action in POLICY for role in ROLES]
TABLES = MetaData()  # every table of the database, reflected once


def case_id(role: str, action: str) -> str:
    return f"{role}-{action}-{'allowed' if role in POLICY[action] else 'refused'}"


# the world -------------------------------------------------------------------------------


@dataclass
class World:
    runtime: Runtime
    router: Router
    clock: FakeClock

    @property
    def org(self) -> int:
        return self.runtime.default_org_id

    def persona(self, key: str = FIONA) -> StoredPersona:
        persona = self.runtime.store.get_persona(self.org, key)
        assert persona is not None
        return persona

    def revisions(self, key: str = FIONA) -> int:
        return len(self.runtime.store.history(self.org, key, limit=1000))


def role_settings(database_url: str) -> Settings:
    return Settings.from_env(
        {
            "PERSONA_BOT_ADMINS": ADMIN_EMAIL.lower(),
            "PERSONA_BOT_MANAGERS": "U_MANAGER",
            "PERSONA_BOT_DASHBOARD_SECRET": DASHBOARD_SECRET,
        },
        database_url=database_url,
    )


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database with the sample personas, copied for each test (faster)."""
    path = tmp_path_factory.mktemp("roles") / "seeded.db"
    runtime = Runtime.open(role_settings(f"sqlite:///{path}"), seed=True)
    TABLES.reflect(runtime.engine)
    runtime.close()
    return path


@pytest.fixture
def world(seeded_database: Path, tmp_path: Path) -> Iterator[World]:
    path = tmp_path / "roles.db"
    shutil.copyfile(seeded_database, path)
    # Well after the samples' last review, so Fiona is due (snoozing needs that).
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(days=200))
    settings = role_settings(f"sqlite:///{path}")
    runtime = Runtime.open(settings, run_migrations=False, seed=False, clock=clock)
    runtime.home_workspaces["slack"] = {"T1"}
    router = default_router(runtime)
    install(router)  # snooze, and the review / save hooks of the nudges
    yield World(runtime, router, clock)
    runtime.close()


def person(role: str) -> tuple[UserRef, ConversationRef]:
    if role == "terminal":
        return terminal_user("cli"), ConversationRef(platform="cli", workspace="", channel="")
    user = {
        "admin": UserRef("U_ADMIN", "ada", ADMIN_EMAIL),
        "manager": UserRef("U_MANAGER", "max", "max.manager@example.com"),
        "owner": UserRef("U_OWNER", "fiona", FIONA_OWNER),
        "member": UserRef("U_MEMBER", "sam", "sam.seller@example.com"),
    }[role]
    return user, ConversationRef(platform="slack", workspace="T1", channel="C1")


def typed(world: World, role: str, text: str) -> Command:
    user, conversation = person(role)
    return world.router.command_from_text(text, user, conversation)


def pressed(role: str, verb: str, args: str, label: str) -> Command:
    user, conversation = person(role)
    return Command(user, conversation, verb, args, label, "button")


def submitted(role: str, fields: dict[str, str]) -> Command:
    user, conversation = person(role)
    return Command(user, conversation, "save", "", "Save", "form", fields)


def everything_but_usage(runtime: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table except the usage log (refused commands are logged too)."""
    with runtime.engine.connect() as conn:
        return {
            name: sorted(map(tuple, conn.execute(select(table))), key=repr)
            for name, table in TABLES.tables.items()
            if name not in ("usage_event", "alembic_version")
        }


# the actions -------------------------------------------------------------------------------


def editor_values(world: World, **changes: str) -> dict[str, str]:
    """What the editor's Save sends for Fiona: every input as shown, with ``changes``."""
    fiona = world.persona()
    form = persona_form(fiona.spec, revision=fiona.revision)
    values = {f.name: f.value for f in form.fields}
    return {**values, **form.state, "notify": "no", **changes}


def new_persona_values() -> dict[str, str]:
    form = persona_form(None, revision=0)
    values = {f.name: f.value for f in form.fields}
    new = {"key": "sally-sales", "name": "Sally Sales", "role": "Sales lead", "summary": "Sells."}
    return {**values, **form.state, **new}


def nudge_button(world: World, role: str, label: str) -> Command:
    """Pressing ``label`` on the review nudge the scheduler would send Fiona's owner."""
    nudge, reason = reply_for(world.runtime, nudge_row(world.runtime), world.clock())
    assert nudge is not None, reason
    b = button(nudge, label)
    return pressed(role, b.verb, b.args, b.label)


# How each action is asked for; built before the "before" snapshot is taken.
MakeCommand = Callable[[World, str], Command]


def say(text: str) -> MakeCommand:
    return lambda world, role: typed(world, role, text)


COMMANDS: dict[str, MakeCommand] = {
    "new": say("new"),
    "create": lambda world, role: submitted(role, new_persona_values()),
    "edit": say("edit fiona"),
    "save": lambda world, role: submitted(
        role, editor_values(world, summary="Tightened after the quarterly review.")
    ),
    "archive": say("archive fiona"),
    "review": say("review fiona"),
    "review-not-owned": say("review carlos"),
    "still-accurate": lambda world, role: nudge_button(world, role, "Still accurate"),
    "snooze": lambda world, role: nudge_button(world, role, "Snooze 7 days"),
    "stats": say("stats 30"),
    "dashboard": say("dashboard"),
    "history": say("history fiona"),
    "deal": say("deal D-1042 won 12000"),
}


def assert_done(world: World, action: str, reply: Reply, before: dict[str, Any]) -> None:
    """What an allowed action did: the answer it gave and the change it made."""
    now = world.clock()
    fiona = world.persona()
    if action == "new":
        assert reply.kind == "form" and reply.form is not None
        assert reply.form.title == "New persona"
    elif action == "create":
        assert reply.kind == "card", reply.summary
        assert world.persona("sally-sales").spec.name == "Sally Sales"
    elif action == "edit":
        assert reply.kind == "form" and reply.form is not None
        assert reply.form.state["key"] == FIONA
    elif action == "save":
        assert reply.kind == "card", reply.summary
        assert fiona.spec.summary == "Tightened after the quarterly review."
        assert world.revisions() == before["revisions"] + 1
    elif action == "archive":
        assert reply.summary.startswith("Finance Fiona is archived")
        assert fiona.archived
    elif action in ("review", "still-accurate"):
        assert reply.summary.startswith("Finance Fiona is marked reviewed.")
        assert fiona.last_reviewed_at == now and world.revisions() == before["revisions"] + 1
    elif action == "review-not-owned":
        assert reply.summary.startswith("Controller Carlos is marked reviewed.")
        assert world.persona(CARLOS).last_reviewed_at == now
    elif action == "snooze":
        assert reply.summary.startswith("Snoozed: I will ask about Finance Fiona again")
        cycle = outbox.review_cycles(world.runtime.engine, [fiona.id])[fiona.id]
        assert cycle.snoozes == 1 and cycle.snoozed_until == now + timedelta(days=7)
    elif action == "stats":
        assert reply.kind == "stats" and "by_command" in reply.data
    elif action == "dashboard":
        url = str(reply.data["url"])
        [token] = parse_qs(urlsplit(url).query)["t"]
        assert verify(DASHBOARD_SECRET, token, now) == world.org
    elif action == "history":
        assert reply.kind == "history" and reply.summary == "History of Finance Fiona"
    elif action == "deal":
        assert reply.summary == "Deal D-1042 is won 🎉."
        info = deal_info(world.runtime.engine, world.org, "D-1042")
        assert info is not None and (info.outcome, info.amount) == ("won", 12000)
    else:
        raise AssertionError(f"no check for {action}")


# the matrix ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role,action", MATRIX, ids=[case_id(r, a) for r, a in MATRIX])
async def test_role_x_action(world: World, role: str, action: str) -> None:
    # Warm up: the first command of a workspace may register it, which is not the action.
    await world.router.dispatch(typed(world, role, "help"))
    command = COMMANDS[action](world, role)
    before = {"rows": everything_but_usage(world.runtime), "revisions": world.revisions()}
    reply = await world.router.dispatch(command)
    if role in POLICY[action]:
        assert reply.kind != "error", reply.summary
        assert_done(world, action, reply, before)
        return
    assert reply.kind == "error"
    assert reply.summary == REFUSALS[action]
    assert everything_but_usage(world.runtime) == before["rows"]
    assert "url" not in reply.data  # a refused dashboard request carries no link


def test_the_table_covers_every_action_and_names_every_refusal() -> None:
    assert set(COMMANDS) == set(POLICY)
    assert {a for a, allowed in POLICY.items() if allowed != set(ROLES)} == set(REFUSALS)
    assert all("terminal" in allowed and "admin" in allowed for allowed in POLICY.values())


@pytest.mark.parametrize("role", ROLES)
async def test_cards_offer_review_and_edit_only_to_who_may_use_them(
    world: World, role: str
) -> None:
    card = await world.router.dispatch(typed(world, role, "fiona"))
    verbs = {b.verb for block in card.blocks for b in getattr(block, "buttons", ())}
    may = role in POLICY["review"]
    assert ("review" in verbs, "edit" in verbs) == (may, may)
    assert "rate" in verbs  # everybody may rate


async def test_a_refused_editor_hint_says_how_to_suggest_a_change(world: World) -> None:
    reply = await world.router.dispatch(typed(world, "member", "edit fiona"))
    assert reply.blocks[-1].text == (  # type: ignore[union-attr]
        "Suggest a change with `/persona feedback finance-fiona ...` instead."
    )


# the dashboard's signed links ---------------------------------------------------------------


@pytest.fixture
async def web(world: World) -> AsyncIterator[TestClient]:
    app = create_app(world.runtime, world.router)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def with_token(token: str, path: str = "/dashboard") -> str:
    return f"{path}?{urlencode({'t': token})}"


async def test_the_managers_link_opens_and_forged_expired_or_foreign_links_get_403(
    world: World, web: TestClient
) -> None:
    reply = await world.router.dispatch(typed(world, "manager", "dashboard"))
    link = path_of(str(reply.data["url"]))
    page = await web.get(link)
    assert page.status == 200 and "Finance Fiona" in await page.text()

    [token] = parse_qs(urlsplit(link).query)["t"]
    org, expires, mac = token.split(".")
    other_org = await world.runtime.org_for("slack", "T2", "Other company")
    now = world.clock()
    refused = {
        "another org's id on this org's signature": f"{other_org}.{expires}.{mac}",
        "a later expiry": f"{org}.{int(expires) + 86400}.{mac}",
        "signed with another secret": sign("not-the-secret", world.org, now + timedelta(hours=1)),
        "expired": sign(DASHBOARD_SECRET, world.org, now - timedelta(seconds=1)),
        "no signature": f"{org}.{expires}.",
        "garbage": "../../etc/passwd",
    }
    for what, forged in refused.items():
        for path in ("/dashboard", "/dashboard/summary.csv", "/dashboard/events.csv"):
            resp = await web.get(with_token(forged, path))
            assert resp.status == 403, (what, path)
            assert "Finance Fiona" not in await resp.text()

    # A valid link of the other organization shows that organization only.
    foreign = await web.get(with_token(sign(DASHBOARD_SECRET, other_org, now + timedelta(hours=1))))
    text = await foreign.text()
    assert foreign.status == 200 and "Other company" in text and "Finance Fiona" not in text


async def test_the_terminal_prints_a_link_that_opens(
    world: World, web: TestClient, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"PERSONA_BOT_DASHBOARD_SECRET": DASHBOARD_SECRET}
    args = ["--db", sqlite_url, "dashboard-link"]
    assert await asyncio.to_thread(main, args, env, configure_logging=False) == 0
    url = capsys.readouterr().out.strip()
    # The link was signed with the real clock; the web app's clock is months ahead.
    world.clock.now = datetime.now(UTC)
    assert (await web.get(path_of(url))).status == 200
    world.clock.now += timedelta(hours=25)
    assert (await web.get(path_of(url))).status == 403


# the same rules through Slack and Teams -----------------------------------------------------

SLACK_USERS = {"admin": "UADMIN", "manager": "UMANAGER", "owner": "UOWNER", "member": "U1"}
PLATFORM_ROLES = ("admin", "manager", "owner", "member")


def fiona_state(runtime: Runtime) -> tuple[int, int, object, bool]:
    org = runtime.default_org_id
    persona = runtime.store.get_persona(org, FIONA)
    assert persona is not None
    return (
        persona.revision,
        len(runtime.store.history(org, FIONA, limit=1000)),
        persona.last_reviewed_at,
        persona.archived,
    )


@pytest.mark.parametrize("role", PLATFORM_ROLES)
async def test_slack_mark_reviewed_on_the_owners_card(make_slack: MakeSlack, role: str) -> None:  # noqa: F811
    slack: Slack = await make_slack()
    resp = await slack.slash("fiona", user="UOWNER")
    card = await resp.json()
    [review] = [
        e
        for block in card["blocks"]
        for e in block.get("elements", [])
        if e.get("action_id", "").startswith("pb:review:")
    ]
    assert review["text"]["text"] == "✅ Mark reviewed" and review["value"] == FIONA
    before = fiona_state(slack.runtime)
    # The card was shared in the channel, so anyone there can press its button.
    payload = actions_payload(
        review["action_id"],
        review["value"],
        user=SLACK_USERS[role],
        response_url=slack.fake.response_url("pressed"),
        label=review["text"]["text"],
    )
    resp = await slack.click(payload)
    assert resp.status == 200
    [answer] = await slack.fake.wait_for("response_url", path="pressed")
    if role in POLICY["review"]:
        assert answer.params["text"].startswith("Finance Fiona is marked reviewed.")
        assert fiona_state(slack.runtime)[0] == before[0] + 1
    else:
        assert answer.params["text"] == REFUSALS["review"]
        assert answer.params["response_type"] == "ephemeral"  # only the presser sees it
        assert fiona_state(slack.runtime) == before
    assert [(u.command, u.user_id) for u in slack.usage()][-1] == ("review", SLACK_USERS[role])


@pytest.mark.parametrize("role", PLATFORM_ROLES)
async def test_slack_stats_and_archive(make_slack: MakeSlack, role: str) -> None:  # noqa: F811
    slack: Slack = await make_slack()
    stats = await (await slack.slash("stats 7", user=SLACK_USERS[role])).json()
    if role in POLICY["stats"]:
        assert stats["text"].startswith("Persona usage")
    else:
        assert stats["text"] == REFUSALS["stats"]
    before = fiona_state(slack.runtime)
    archived = await (await slack.slash("archive fiona", user=SLACK_USERS[role])).json()
    if role in POLICY["archive"]:
        assert archived["text"].startswith("Finance Fiona is archived")
        assert fiona_state(slack.runtime)[3] is True
    else:
        assert archived["text"] == REFUSALS["archive"]
        assert fiona_state(slack.runtime) == before


@pytest.mark.parametrize("role", PLATFORM_ROLES)
async def test_slack_app_home_shows_usage_only_to_who_may_read_summaries(
    make_slack: MakeSlack,  # noqa: F811
    role: str,
) -> None:
    slack: Slack = await make_slack()
    home = event_body("app_home_opened.json", user=SLACK_USERS[role])
    resp = await slack.post(json.dumps(home), "application/json")
    assert resp.status == 200
    [published] = await slack.fake.wait_for("views.publish")
    shown = json.dumps(published.params["view"])
    assert ("Usage in the last 30 days" in shown) is (role in POLICY["stats"])
    assert ("Your personas due for review" in shown) is (role == "owner")


TEAMS_PEOPLE = {
    "admin": ("29:the-admin", "admin@example.com"),
    "manager": ("29:the-manager", "manager@example.com"),
    "owner": ("29:owner-of-fiona", FIONA_OWNER),
    "member": ("29:a-member", "member@example.com"),
}


async def teams_say(teams: TeamsHarness, role: str, *, text: str | None = None,
                    value: Any = None) -> dict[str, Any]:  # fmt: skip
    """A message in the group chat from ``role``; the card of the answer."""
    account_id = TEAMS_PEOPLE[role][0]
    sender = {"id": account_id, "name": role.title(), "aadObjectId": f"aad-{role}"}
    before = len(teams.connector.sent())
    body = edited(teams.payload("group_chat_message"), text=text, value=value, **{"from": sender})
    response = await teams.post(body)
    assert response.status == 201, await response.text()
    card = (await teams.connector.wait_for(count=before + 1))[-1].card
    assert card is not None
    return card


def card_text(card: dict[str, Any]) -> str:
    return "\n".join(
        inline["text"] for element in card["body"] for inline in element.get("inlines", [])
    )


@pytest.mark.parametrize("role", PLATFORM_ROLES)
async def test_teams_mark_reviewed_on_the_owners_card_and_stats(sqlite_url: str, role: str) -> None:
    env = {"PERSONA_BOT_MANAGERS": "manager@example.com"}
    async with teams_harness(sqlite_url, env=env) as teams:
        for account_id, email in TEAMS_PEOPLE.values():
            teams.connector.add_member(account_id, email=email)
        card = await teams_say(teams, "owner", text="fiona")
        [review] = [a for a in card["actions"] if a["title"] == "✅ Mark reviewed"]
        before = fiona_state(teams.runtime)
        # Everyone in the group chat sees the owner's card and can press its button.
        answer = card_text(await teams_say(teams, role, value=review["data"]))
        if role in POLICY["review"]:
            assert "Finance Fiona is marked reviewed" in answer
            assert fiona_state(teams.runtime)[0] == before[0] + 1
        else:
            assert REFUSALS["review"] in answer
            assert fiona_state(teams.runtime) == before
        stats = card_text(await teams_say(teams, role, text="stats 7"))
        if role in POLICY["stats"]:
            assert "Persona usage, last 7 days" in stats
        else:
            assert REFUSALS["stats"] in stats
