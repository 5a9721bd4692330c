"""Command line of the scheduler: ``persona-bot scheduler`` runs it without a web server,
``persona-bot nudges`` lists what is (or would be) due and to whom.

``persona-bot scheduler`` builds the same app as ``serve`` without opening a port, so the
chat platforms mount exactly as they do there and register their Notifiers; only the HTTP
listener is missing. Run it beside ``serve`` replicas started with
``PERSONA_BOT_SCHEDULER=0``, or let every replica schedule (that is safe too).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.extensions import Extension
from bot.runtime import Runtime
from bot.settings import Settings
from persona_store import outbox
from scheduler.config import SchedulerConfig, with_home_org
from scheduler.due import describe
from scheduler.tick import collect

if TYPE_CHECKING:
    from scheduler.service import SchedulerService


async def run_scheduler(
    settings: Settings,
    extensions: Sequence[Extension],
    *,
    configure: Callable[[Runtime], None] | None = None,
    on_ready: Callable[[SchedulerService], None] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run the scheduler until SIGINT/SIGTERM (or ``stop``). ``configure`` may register
    extra notifiers (tests use it for a fake platform)."""
    from aiohttp import web

    from bot.cli import build_router
    from bot.web import create_app
    from scheduler.service import SchedulerService

    runtime = await asyncio.to_thread(Runtime.open, settings, seed=False)
    try:
        router = build_router(runtime, extensions)
        # The platforms mount as in ``serve`` (registering their notifiers); this process's
        # own scheduler is started below, whatever PERSONA_BOT_SCHEDULER says for serve.
        app = create_app(runtime, router, [e for e in extensions if e.name != "scheduler"])
        if configure is not None:
            configure(runtime)
        service = SchedulerService(runtime, SchedulerConfig.from_settings(settings))
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()  # startup hooks, no listening socket
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await service.start()
            if on_ready is not None:
                on_ready(service)
            await stop.wait()
        finally:
            await service.stop()
            await runner.cleanup()
    finally:
        await asyncio.to_thread(runtime.close)
    return 0


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from bot import malloc

    malloc.apply(settings)  # before any database thread starts
    return asyncio.run(run_scheduler(settings, args.extensions))


def parse_time(text: str, zone: str) -> datetime:
    """An ISO time; without an offset it is read in the configured time zone."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment


def cmd_nudges(args: argparse.Namespace, settings: Settings) -> int:
    config = SchedulerConfig.from_settings(settings)
    zone = ZoneInfo(settings.timezone)

    def local(moment: datetime) -> str:
        return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"

    try:
        at = parse_time(args.at, settings.timezone) if args.at else None
    except ValueError:
        print(
            f"persona-bot: --at {args.at!r} is not an ISO time (try 2027-04-01T09:00)",
            file=sys.stderr,
        )
        return 2
    runtime = Runtime.open(settings, seed=False)
    try:
        config = with_home_org(config, runtime.default_org_id)
        now = runtime.clock()
        if args.resend is not None:
            row = outbox.resend(runtime.engine, args.resend, now)
            if row is None:
                print(
                    f"persona-bot: outbox row {args.resend} is not failed, uncertain or "
                    "alerted; nothing to resend.",
                    file=sys.stderr,
                )
                return 2
            print(f"Queued again: {row.label} to {row.recipient_label} (row {row.id}).")
            return 0
        if at is not None and at > now + timedelta(minutes=1) and not args.dry_run:
            print(
                "persona-bot: --at in the future only previews: add --dry-run "
                "(things are queued when they are due, not before).",
                file=sys.stderr,
            )
            return 2
        when = at or now
        due = collect(runtime.store, config.rules, when)
        known = outbox.existing(runtime.engine, (item.key for item in due))
        queued: set[tuple[str, str, str]] = set()
        if not args.dry_run:
            fresh = [item for item in due if item.key not in known]
            queued = {item.key for item in outbox.enqueue(runtime.engine, fresh, when)}
    finally:
        runtime.close()
    suffix = " (dry run: nothing queued)" if args.dry_run else ""
    print(f"Due at {local(when)} {settings.timezone}{suffix}:")
    if not due:
        print("  nothing")
        return 0
    rows: list[tuple[str, str, str, str]] = []
    tally: dict[str, int] = {}
    for item in due:
        about = str(item.payload.get("persona_name") or item.payload.get("label") or item.subject)
        if item.kind != "digest":
            about += f" (due {item.payload.get('due_on')})"
        existing_row = known.get(item.key)
        if existing_row is not None:
            state = existing_row.state
            if existing_row.sent_at is not None:
                state += f" {local(existing_row.sent_at)}"
            status = existing_row.state
        elif item.key in queued:
            state = status = "queued now"
        else:
            state = status = "would be queued" if args.dry_run else "queued by another process"
        tally[status] = tally.get(status, 0) + 1
        rows.append((item.kind, about, describe(item.payload.get("to")), state))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for kind, about, to, state in rows:
        print(
            f"  {kind:<{widths[0]}}  {about:<{widths[1]}}  to {to:<{widths[2]}}  {state}".rstrip()
        )
    print(f"{len(due)} due: " + ", ".join(f"{n} {status}" for status, n in sorted(tally.items())))
    return 0


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "scheduler", help="run the review nudges and weekly digests without a web server"
    )
    p.set_defaults(func=cmd_scheduler)
    p = subparsers.add_parser("nudges", help="list what is (or would be) due and to whom")
    p.add_argument(
        "--at",
        metavar="ISO-TIME",
        help="as of this time (default now; without an offset, in PERSONA_BOT_TIMEZONE)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="only list; queue nothing (needed for a future --at)"
    )
    p.add_argument(
        "--resend",
        type=int,
        metavar="ID",
        help="queue a failed, uncertain or alerted outbox row again (after checking with its "
        "recipient)",
    )
    p.set_defaults(func=cmd_nudges)
