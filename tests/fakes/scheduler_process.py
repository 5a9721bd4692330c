"""A real scheduler process, delivering to the recording platform over HTTP.

``python -m tests.fakes.scheduler_process --db URL --platform URL --name A`` runs exactly what
``persona-bot scheduler`` runs (``scheduler.cli.run_scheduler``: settings from the
environment, the installed extensions, the same service), with one addition: an HttpNotifier
to the fake platform is registered as the "slack" notifier, the way the Slack adapter
registers its own. It prints ``ready WORKER-NAME`` once the scheduler runs, logs to stderr,
and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from bot.extensions import load_extensions
from bot.logs import setup_logging
from bot.runtime import Runtime
from bot.settings import Settings
from scheduler.cli import run_scheduler
from scheduler.service import SchedulerService
from tests.fakes.platform import HttpNotifier


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scheduler_process")
    parser.add_argument("--db", required=True)
    parser.add_argument("--platform", required=True, help="base URL of the fake platform")
    parser.add_argument("--name", required=True, help="label this process's deliveries")
    args = parser.parse_args(argv)
    settings = Settings.from_env(os.environ, database_url=args.db)
    setup_logging("INFO", settings.secrets)
    notifier = HttpNotifier("slack", args.platform, sender=args.name)

    def configure(runtime: Runtime) -> None:
        runtime.notifiers["slack"] = notifier

    def ready(service: SchedulerService) -> None:
        print(f"ready {service.worker.name}", flush=True)

    async def run() -> int:
        try:
            return await run_scheduler(
                settings, load_extensions(), configure=configure, on_ready=ready
            )
        finally:
            await notifier.close()

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
