"""Review nudges and manager digests: APScheduler decides what is due, an outbox records it,
and a delivery worker sends it exactly once through the platforms' Notifiers.

Plugged into the core as the ``scheduler`` extension: it starts with ``persona-bot serve``
(unless ``PERSONA_BOT_SCHEDULER=0``), adds the ``snooze`` and ``edit`` verbs of the nudge's
buttons, and the ``persona-bot scheduler`` and ``persona-bot nudges`` commands.
"""

from __future__ import annotations

from aiohttp import web

from bot.extensions import Extension
from bot.router import Router
from bot.runtime import Runtime
from scheduler.cli import add_commands
from scheduler.config import SchedulerConfig
from scheduler.service import SchedulerService
from scheduler.verbs import install

SERVICE = web.AppKey("scheduler", SchedulerService)


def mount_web(app: web.Application, runtime: Runtime, router: Router) -> str | None:
    """Run the scheduler with the web app: started on startup, stopped on shutdown."""
    config = SchedulerConfig.from_settings(runtime.settings)
    if not config.enabled:
        return None
    service = SchedulerService(runtime, config)
    app[SERVICE] = service

    async def start(app: web.Application) -> None:
        await service.start()

    async def stop(app: web.Application) -> None:
        await service.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    # Not a chat platform: nothing for the platforms' status line (the service logs).
    return None


extension = Extension(
    name="scheduler",
    mount_web=mount_web,
    configure_router=install,
    add_commands=add_commands,
    order=50,
)
