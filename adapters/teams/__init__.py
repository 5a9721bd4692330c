"""The Microsoft Teams adapter: Bot Framework activities at ``/api/messages``, Adaptive
Cards, proactive messages through stored conversation references, and the Teams app package.

botbuilder is imported only when the web app mounts Teams or ``teams-package`` runs, so other
commands start without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.extensions import Extension

if TYPE_CHECKING:
    from aiohttp import web

    from bot.router import Router
    from bot.runtime import Runtime


def mount_web(app: web.Application, runtime: Runtime, router: Router) -> str | None:
    from adapters.teams.app import mount_teams

    return mount_teams(app, runtime, router)


def add_commands(subparsers: Any) -> None:
    from adapters.teams.package import add_commands as add_package_commands

    add_package_commands(subparsers)


extension = Extension(name="teams", mount_web=mount_web, add_commands=add_commands, order=20)
