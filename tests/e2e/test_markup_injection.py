"""Markup in persona fields and typed queries cannot make the bot mention, notify or link
anyone, nor change the shape of what it sends, on Slack (signed slash command -> Block Kit
in the acknowledgement) and Teams (activity -> Adaptive Card at the fake Bot Connector).

Personas are imported through the file parser and the store, with every text field carrying
Slack control sequences (``<!channel>``, ``<@U123>``, ``<http://...|click>``), formatting,
entities, markdown links, Teams ``<at>`` tags, card template functions and JSON that tries
to close the card and add an ``Action.OpenUrl``. Their twin, in another organization, has the
same words without the markup; every reply (card, list, fit with its reasons, history) must
have the same structure for both, and the markup must come out escaped, still readable.
``test_slack_security`` covers a persona name and a query in a Slack card; this goes on to
every field, every reply kind, stats and Teams.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from persona_store.schema import load_sample_personas, parse_persona_text
from persona_store.summary import normalise_gap_text
from tests.e2e.platforms_kit import Platforms, both_platforms
from tests.e2e.slack.test_slack_commands import ask
from tests.e2e.slack.test_slack_security import mrkdwn_texts
from tests.e2e.teams_kit import ANN_ID, assert_valid_card, edited
from tests.fakes.bot_connector import Recorded

ADMIN = "admin@example.com"  # an admin of the harness (stats need one)
# One of everything that could turn into a mention, a link, formatting or card structure.
PROBES = (
    "<!channel> <!here> <!everyone> @channel <@U123> <#C123|general> <!subteam^S1|@team> "
    "<http://evil.example|click> <https://evil.example> *bold* _it_ ~gone~ `tick` ```fence``` "
    "&lt;b&gt; &amp; [x](https://evil.example) ![i](https://evil.example/i.png) "
    "<at>Ann Example</at> {{DATE(2017-02-14T06:08:39Z,SHORT)}} "
    '"}]},{"type":"Action.OpenUrl","title":"Win","url":"https://evil.example"}'
)
PLAIN = re.sub(r"[^\w\s]", " ", PROBES)  # the same words, no markup
KEY = "eve"
# Slack workspaces (the single-workspace install maps other teams to organizations of their
# own) and Teams tenants: one organization with the marked-up persona, one with its twin.
SLACK_TEAMS = {"evil": "T2EVIL", "plain": "T3PLAIN"}
TENANTS = {
    "evil": "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5",
    "plain": "5f4e3d2c-1b0a-4f9e-8d7c-6b5a49382716",
}
DEAL = "fit CFO at a fintech, 300 staff, the board wants audit-ready numbers"


def persona_file(text: str) -> str:
    """A persona file (JSON) whose every text field carries ``text``."""
    persona = {
        "key": KEY,
        "name": f"Eve {text}",
        "role": f"CFO {text}",
        "summary": f"Summary {text}",
        "background": f"Story {text}",
        "owner": f"owner {text}",
        "demographic": {"job_titles": [f"CFO {text}"], "seniority": ["C-level"]},
        "firmographic": {
            "industries": ["Fintech", f"Banking {text}"],
            "employees": {"min": 100, "max": 1000},
        },
        "behavioral": {"channels": [f"Podcasts {text}"], "buying_process": f"Board {text}"},
        "psychographic": {"values": [f"Control {text}"]},
        "goals": [f"Audit-ready numbers {text}"],
        "pain_points": [f"Spreadsheets {text}"],
        "objections": [f"Price {text}"],
        "keywords": ["audit"],
    }
    return json.dumps({"personas": [persona]})


@pytest.fixture
async def platforms(sqlite_url: str) -> AsyncIterator[Platforms]:
    async with both_platforms(sqlite_url) as running:
        runtime = running.runtime
        running.slack.fake.add_user("T1", "U1", ADMIN, "ada.admin")
        running.teams.connector.add_member(ANN_ID, name="Ann Example", email=ADMIN)
        for variant, text in (("evil", PROBES), ("plain", PLAIN)):
            eve = parse_persona_text(persona_file(text), filename="eve.json")
            specs = [*load_sample_personas(), *eve]
            author = f"Mallory {text}"
            for org_id in (
                await runtime.org_for("slack", SLACK_TEAMS[variant]),
                await runtime.org_for("teams", TENANTS[variant]),
            ):
                runtime.store.import_personas(org_id, specs, author)
        yield running


# Slack ------------------------------------------------------------------------------------


def slack_unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def assert_slack_inert(message: dict[str, Any]) -> str:
    """No control sequence anywhere Slack reads them (the mrkdwn texts, all verbatim, and
    the notification text); every ``&`` starts one of Slack's three escapes. What Slack
    shows, unescaped, is returned for checking that nothing was dropped."""
    marked = [message["text"], *mrkdwn_texts(message)]
    for text in marked:
        assert "<" not in text and ">" not in text, text
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), text
    plain = [
        element["text"]["text"]
        for block in message["blocks"]
        for element in [block, *block.get("elements", []), block.get("accessory") or {}]
        if isinstance(element.get("text"), dict) and element["text"]["type"] == "plain_text"
    ]
    return "\n".join([*map(slack_unescape, marked), *plain])


def slack_shape(message: dict[str, Any]) -> list[Any]:
    """The structure of a message without its words: blocks, fields, buttons."""
    return [
        (
            block["type"],
            len(block.get("fields", [])),
            (block.get("accessory") or {}).get("type"),
            [(e["type"], e.get("action_id"), e.get("style")) for e in block.get("elements", [])],
        )
        for block in message["blocks"]
    ]


# Teams ------------------------------------------------------------------------------------


async def teams_ask(platforms: Platforms, text: str, tenant: str) -> Recorded:
    """Send a message in the tenant; the bot's answer as the connector received it."""
    teams = platforms.teams
    before = len(teams.connector.sent())
    body = edited(teams.payload("personal_message", tenant=tenant), text=text)
    response = await teams.post(body)
    assert response.status == 201, await response.text()
    return (await teams.connector.wait_for(count=before + 1))[-1]


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def markdown_unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text.replace("{\u200b{", "{{"))


def assert_teams_inert(reply: Recorded) -> str:
    """A valid card with only the bot's own actions, no mention entities, no URL; text that
    Teams reads as markdown (facts, text blocks) escaped. What it shows is returned."""
    card = reply.card
    assert_valid_card(card)
    assert card is not None
    assert not reply.body.get("entities"), reply.body.get("entities")
    assert "entities" not in card.get("msteams", {})
    shown: list[str] = []
    for key, value in walk(card):
        assert key not in ("url", "selectAction", "iconUrl"), (key, value)
        if key == "type":
            assert value != "Action.OpenUrl"
    for element in card["body"]:
        shown += [inline["text"] for inline in element.get("inlines", [])]  # never markdown
        markdown = [element["text"]] if element["type"] == "TextBlock" else []
        for fact in element.get("facts", []):
            markdown += [fact["title"], fact["value"]]
        for text in markdown:
            # markdown's link, emphasis, code and tag characters all escaped, and no card
            # template function left
            assert not re.search(r"(?<!\\)[\[\]*_`~<>]", text), text
            assert "{{" not in text, text
            shown.append(markdown_unescape(text))
    return "\n".join(shown)


def teams_shape(reply: Recorded) -> list[Any]:
    card = reply.card
    assert card is not None
    body = [(e["type"], len(e.get("inlines", [])), len(e.get("facts", []))) for e in card["body"]]
    actions = [
        (a["type"], (a.get("data") or {}).get("verb"), a.get("style"), "card" in a)
        for a in card.get("actions", [])
    ]
    return [body, actions]


# tests ------------------------------------------------------------------------------------

COMMANDS = [KEY, "list", DEAL, f"history {KEY}"]


async def test_persona_fields_stay_text_in_slack(platforms: Platforms) -> None:
    replies = {
        variant: {text: await ask(platforms.slack, text, team=team) for text in COMMANDS}
        for variant, team in SLACK_TEAMS.items()
    }
    for text in COMMANDS:
        evil, plain = replies["evil"][text], replies["plain"][text]
        assert slack_shape(evil) == slack_shape(plain), text
        shown = assert_slack_inert(evil)
        assert PROBES in shown, text  # escaped, never dropped or cut
    card = replies["evil"][KEY]
    assert card["blocks"][0]["text"]["type"] == "plain_text"  # the name: shown as it is
    shown = assert_slack_inert(card)
    for field in ("Eve", "CFO", "Summary", "Story", "owner", "Banking", "Podcasts", "Board",
                  "Control", "Audit-ready numbers", "Spreadsheets", "Price"):  # fmt: skip
        assert f"{field} {PROBES}" in shown, field
    fit = assert_slack_inert(replies["evil"][DEAL])
    assert f"job title 'CFO {PROBES}'" in fit  # a fit reason quoting the persona's title
    history = assert_slack_inert(replies["evil"][f"history {KEY}"])
    assert f"by Mallory {PROBES}: created" in history


async def test_persona_fields_stay_text_in_teams(platforms: Platforms) -> None:
    replies = {
        variant: {text: await teams_ask(platforms, text, tenant) for text in COMMANDS}
        for variant, tenant in TENANTS.items()
    }
    for text in COMMANDS:
        evil, plain = replies["evil"][text], replies["plain"][text]
        assert teams_shape(evil) == teams_shape(plain), text
        shown = assert_teams_inert(evil)
        assert PROBES in shown, text
    shown = assert_teams_inert(replies["evil"][KEY])
    for field in ("Eve", "CFO", "Summary", "Story", "owner", "Banking", "Podcasts", "Board",
                  "Control", "Audit-ready numbers", "Spreadsheets", "Price"):  # fmt: skip
        assert f"{field} {PROBES}" in shown, field
    assert f"job title 'CFO {PROBES}'" in assert_teams_inert(replies["evil"][DEAL])
    history = assert_teams_inert(replies["evil"][f"history {KEY}"])
    assert f"by Mallory {PROBES}: created" in history
    # The buttons still carry the persona's key, whatever its name says.
    listed = replies["evil"]["list"].card
    assert listed is not None
    data = [a.get("data") for a in listed["actions"]]
    assert {"verb": "lookup", "args": KEY} in data


# Typed text: what Slack sends for "@channel", a mention, a link and "<b>" typed into
# /persona (Slack's own escaping), and markdown, entities and JSON typed as they are.
SLACK_TYPED = (
    "nosuch <!channel> <!here> <@U123|mallory> <http://evil.example|click> &lt;b&gt; &amp;lt; "
    '*bold* `tick` [x](https://evil.example) "}]},{"type":"Action.OpenUrl"'
)
SLACK_SHOWN = (  # ... and how persona-bot reads it: as the words people see in Slack
    "nosuch @channel @here @mallory click <b> &lt; *bold* `tick` [x](https://evil.example) "
    '"}]},{"type":"Action.OpenUrl"'
)
TEAMS_TYPED = (  # Teams sends typed text as HTML: tags are markup, "<" typed is "&lt;"
    "nosuch <at>persona-bot</at> &lt;at&gt;Ann&lt;/at&gt; [x](https://evil.example) *bold* "
    '`tick` {{DATE(2017-02-14T06:08:39Z,SHORT)}} "}]},{"type":"Action.OpenUrl"'
)
TEAMS_SHOWN = (
    "nosuch persona-bot <at>Ann</at> [x](https://evil.example) *bold* `tick` "
    '{{DATE(2017-02-14T06:08:39Z,SHORT)}} "}]},{"type":"Action.OpenUrl"'
)


async def test_typed_queries_stay_text_in_replies_and_in_the_stats(
    platforms: Platforms,
) -> None:
    slack = platforms.slack
    tenant = TENANTS["evil"]
    missing = await ask(slack, SLACK_TYPED, team=SLACK_TEAMS["evil"])
    assert "No persona matches" in missing["text"]
    assert SLACK_SHOWN in assert_slack_inert(missing)
    fit = await ask(slack, f"fit CFO {SLACK_TYPED}", team=SLACK_TEAMS["evil"])
    assert_slack_inert(fit)
    reply = await teams_ask(platforms, TEAMS_TYPED, tenant)
    assert TEAMS_SHOWN in assert_teams_inert(reply)
    assert_teams_inert(await teams_ask(platforms, f"fit CFO {TEAMS_TYPED}", tenant))

    # The stats quote what people searched for (knowledge gaps) and the personas they used.
    await ask(slack, KEY, team=SLACK_TEAMS["evil"])
    await teams_ask(platforms, KEY, tenant)
    stats = await ask(slack, "stats", team=SLACK_TEAMS["evil"])
    shown = assert_slack_inert(stats)
    # (searches are grouped by their words, so the gap shows the words of the search)
    assert normalise_gap_text(SLACK_SHOWN, "search") in shown and f"Eve {PROBES}" in shown
    teams_stats = await teams_ask(platforms, "stats", tenant)
    shown = assert_teams_inert(teams_stats)
    assert normalise_gap_text(TEAMS_SHOWN, "search") in shown and f"Eve {PROBES}" in shown
