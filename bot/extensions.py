"""Extensions: how platforms and services plug into the core without the core importing them.

The core (``bot``) must not import ``adapters`` or ``scheduler`` (dependencies point down
only). Instead each of those packages exposes an ``Extension`` through the
``persona_bot.extensions`` entry-point group of the installed distribution, and the CLI loads
them: the Slack and Teams adapters mount their routes in the web app, the console adapter
provides ``persona-bot chat``, the scheduler starts with ``serve`` and adds its commands.
Tests pass the extensions they want explicitly.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from aiohttp import web

    from bot.router import Router
    from bot.runtime import Runtime

GROUP = "persona_bot.extensions"

# Mount routes and startup/cleanup hooks on the web app; return a status line such as
# "Slack: single workspace" (or None when the extension is not configured).
MountWeb = Callable[["web.Application", "Runtime", "Router"], "str | None"]
# Add handlers to the router (every process: serve, chat and the CLI).
ConfigureRouter = Callable[["Router"], None]
# Add subcommands to the CLI; each sets ``func(args, settings) -> int`` on its parser.
AddCommands = Callable[[Any], None]
# Run the bot interactively in a terminal.
Chat = Callable[["Runtime", "Router", TextIO, TextIO], Awaitable[int]]


@dataclass(frozen=True)
class Extension:
    name: str
    mount_web: MountWeb | None = None
    configure_router: ConfigureRouter | None = None
    add_commands: AddCommands | None = None
    chat: Chat | None = None
    order: int = 100  # lower mounts first


def load_extensions() -> list[Extension]:
    """Every extension the installed distribution declares, in mount order."""
    found: list[Extension] = []
    for point in entry_points(group=GROUP):
        ext = point.load()
        if not isinstance(ext, Extension):
            raise TypeError(f"entry point {point.name} is not an Extension")
        found.append(ext)
    return sorted(found, key=lambda e: (e.order, e.name))


def configure(router: Router, extensions: Sequence[Extension]) -> None:
    for ext in extensions:
        if ext.configure_router:
            ext.configure_router(router)


def add_all_commands(
    subparsers: argparse._SubParsersAction[Any], exts: Sequence[Extension]
) -> None:
    for ext in exts:
        if ext.add_commands:
            ext.add_commands(subparsers)
