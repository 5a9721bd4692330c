"""The console adapter: ``persona-bot chat`` talks to the same router as Slack and Teams.

Each line typed is parsed with the shared grammar (``fiona``, ``/persona fit ...``, ``help``);
replies are rendered as plain text with numbered buttons, and typing a button's number
presses it, as a click would in Slack or Teams.
"""

from __future__ import annotations

import asyncio
from typing import TextIO

from bot.extensions import Extension
from bot.model import Button, Command, ConversationRef, UserRef
from bot.permissions import terminal_user
from bot.plaintext import render_text
from bot.router import Router
from bot.runtime import Runtime

PROMPT = "persona> "
BANNER = (
    "persona-bot chat: type a persona name (try 'fiona'), 'list', 'fit <deal>', 'help',\n"
    "a button's number to press it, or 'quit'."
)
QUIT = {"quit", "exit", ":q", "bye"}


def console_user() -> UserRef:
    return terminal_user("console")


def console_conversation() -> ConversationRef:
    return ConversationRef(platform="console", workspace="", channel="terminal")


async def _readline(stdin: TextIO) -> str:
    return await asyncio.to_thread(stdin.readline)


async def run_chat(runtime: Runtime, router: Router, stdin: TextIO, stdout: TextIO) -> int:
    """Read lines until EOF or 'quit'; answer each through the router."""
    user, conversation = console_user(), console_conversation()
    interactive = stdin.isatty()
    stdout.write(BANNER + "\n")
    buttons: list[Button] = []
    while True:
        if interactive:
            stdout.write(PROMPT)
        stdout.flush()
        line = await _readline(stdin)
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        if text.lower() in QUIT:
            break
        if text.isdigit() and 1 <= int(text) <= len(buttons):
            pressed = buttons[int(text) - 1]
            command = Command(user, conversation, pressed.verb, pressed.args, text, "button")
        else:
            command = router.command_from_text(text, user, conversation)
        reply = await router.dispatch(command)
        rendered, buttons = render_text(reply)
        stdout.write(rendered + "\n\n")
    stdout.flush()
    return 0


extension = Extension(name="console", chat=run_chat)
