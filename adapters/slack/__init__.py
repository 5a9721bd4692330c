"""The Slack adapter: slash command, buttons, modals, mentions, DMs, App Home and the notifier,
on slack-bolt's AsyncApp mounted in persona-bot's web app (``POST /slack/events``, OAuth
install pages, or Socket Mode).

Only the extension object lives here; the adapter itself (and slack-bolt) is imported when
``serve`` mounts it, so other commands of the CLI do not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.extensions import Extension

if TYPE_CHECKING:
    from aiohttp import web

    from bot.router import Router
    from bot.runtime import Runtime


def mount_web(app: web.Application, runtime: Runtime, router: Router) -> str | None:
    """Mount Slack when it is configured; refuse (SettingsError) a set-up that cannot work."""
    from .config import load

    config = load(runtime.settings)
    if config is None:
        return None
    from .app import SlackAdapter

    return SlackAdapter(config, runtime, router).mount(app)


extension = Extension(name="slack", mount_web=mount_web, order=10)
