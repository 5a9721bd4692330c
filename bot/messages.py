"""Every sentence persona-bot says to people, in one place."""

from __future__ import annotations

from bot.model import Context, Reply, Text

APOLOGY = "Sorry, something went wrong on our side. It has been logged; please try again."
UNAVAILABLE = (
    "persona-bot is temporarily unavailable (its database cannot be reached). "
    "Please try again in a minute."
)
SLACK_UNREACHABLE = (
    "persona-bot cannot reach Slack's Web API right now, so it cannot answer. "
    "Please try again in a minute."
)
NO_PERSONAS = (
    "There are no personas yet for this workspace. An admin can load some with "
    "`persona-bot --org SLUG import FILE` (`persona-bot orgs` lists each workspace's SLUG)."
)
LIST_HINT = "Type `/persona list` to see every persona."


def error_reply(message: str, hint: str | None = None) -> Reply:
    blocks: tuple[Text | Context, ...] = (Text(message),)
    if hint:
        blocks += (Context(hint),)
    return Reply(summary=message, blocks=blocks, kind="error")


def unknown_verb(verb: str) -> str:
    return f"persona-bot does not know the command '{verb}'. Type `/persona help` for the list."


def no_match(query: str, verb_hint: str | None = None) -> str:
    if verb_hint:
        return f"No persona matches '{query}'. Did you mean the command `/persona {verb_hint}`?"
    return f"No persona matches '{query}'."


def did_you_mean(query: str, names: list[str]) -> str:
    if len(names) == 1:
        return f"No persona matches '{query}' exactly. Did you mean {names[0]}?"
    listed = ", ".join(names[:-1]) + f" or {names[-1]}"
    return f"No persona matches '{query}' exactly. Did you mean {listed}?"


def needs_argument(verb: str, example: str) -> str:
    return f"`/persona {verb}` needs a persona name, for example `/persona {verb} {example}`."


def not_allowed(action: str, who: str) -> str:
    return f"Only {who} can {action}."
