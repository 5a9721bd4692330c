"""Review nudges and manager digests: APScheduler decides what is due, an outbox records it,
and a delivery worker sends it exactly once through the platforms' Notifiers.

Plugged into the core as the ``scheduler`` extension: it starts with ``persona-bot serve``
(unless ``PERSONA_BOT_SCHEDULER=0``), adds the ``snooze`` verb of the nudge's buttons, queues
change notes after edits, and adds the ``persona-bot scheduler`` and ``persona-bot nudges``
commands. Every CLI command loads the extensions, so APScheduler and aiohttp are only imported
when needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.extensions import Extension
from scheduler.cli import add_commands
from scheduler.verbs import install

if TYPE_CHECKING:
    from aiohttp import web

    from bot.router import Router
    from bot.runtime import Runtime
    from scheduler.service import SERVICE as SERVICE
    from scheduler.service import SchedulerService as SchedulerService


def mount_web(app: web.Application, runtime: Runtime, router: Router) -> str | None:
    """Run the scheduler with the web app: started on startup, stopped on shutdown."""
    from scheduler.change_notes import ChangeNotes
    from scheduler.config import SchedulerConfig
    from scheduler.service import SERVICE, SchedulerService

    config = SchedulerConfig.from_settings(runtime.settings)
    if not config.enabled:
        return None
    service = SchedulerService(runtime, config)
    app[SERVICE] = service
    if isinstance(runtime.change_notifier, ChangeNotes):
        runtime.change_notifier.wake = service.wake

    async def start(app: web.Application) -> None:
        await service.start()

    async def stop(app: web.Application) -> None:
        await service.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    # Not a chat platform: nothing for the platforms' status line (the service logs).
    return None


def __getattr__(name: str) -> Any:
    if name in ("SERVICE", "SchedulerService"):
        from scheduler import service

        return getattr(service, name)
    raise AttributeError(f"module 'scheduler' has no attribute {name!r}")


extension = Extension(
    name="scheduler",
    mount_web=mount_web,
    configure_router=install,
    add_commands=add_commands,
    order=50,
)
