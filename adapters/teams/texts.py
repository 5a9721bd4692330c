"""What the Teams bot says that is not an answer to a command: welcome, empty messages,
files, buttons it no longer understands. Command answers come from the shared handlers."""

from __future__ import annotations

from collections.abc import Iterable

from bot.grammar import VERBS
from bot.model import Context, Header, Reply, Text

TRY = "Type a persona name (try `fiona`), `list`, `fit <deal>` or `help`."
EMPTY = f"Hi! I did not catch a question. {TRY}"
ATTACHMENT = f"I can't read files or images. {TRY}"
FOREIGN = f"That button belongs to a card I no longer understand. {TRY}"
NOT_TEAMS = "persona-bot answers in Microsoft Teams only."
CHANNEL_HINT = "In channels and group chats, @mention me first: `@persona-bot fiona`."
EDITOR_PROBLEMS = "Nothing was saved: {count} problem(s) to fix, marked below."
EDITOR_REQUIRED = "{label} is required."
EDITOR_TOO_LONG = (
    "{label}: {length:,} characters, too long to show in a Teams card, so the saved "
    "version is kept. Change it in the persona file instead (persona-bot export, edit, "
    "persona-bot import)."
)


def welcome(advertised: Iterable[str]) -> Reply:
    """The card the bot posts when it is added to a chat, a team or someone's personal app."""
    lines = tuple(
        f"{'NAME' if verb == 'lookup' else verb}: {VERBS[verb]}"
        for verb in advertised
        if verb in VERBS
    )
    return Reply(
        summary="Hi, I'm persona-bot",
        blocks=(
            Header("Hi, I'm persona-bot"),
            Text("Your customer personas, where you work.", items=lines),
            Context(CHANNEL_HINT),
        ),
        kind="help",
    )


def text(message: str) -> Reply:
    return Reply.text(message)
