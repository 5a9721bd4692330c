"""Command-line verbs for outcomes and usage: ``deals import``, ``dashboard-link``,
``purge-usage``. Added to ``persona-bot``'s parser by ``bot.cli``.

``persona-bot deals import FILE.csv`` reads a HubSpot, Salesforce or plain CSV export and
loads every deal's outcome in one transaction; any unreadable row is printed as
``FILE:LINE: message``, nothing is imported, and the exit code is 2.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from bot.dashboard import dashboard_url
from bot.file_problems import report_problems
from bot.maintenance import purge_now
from bot.runtime import Runtime
from bot.settings import Settings
from persona_store.deals import save_deals
from persona_store.deals_import import DealFileError, read_deals


def _open(settings: Settings) -> Runtime:
    return Runtime.open(settings, seed=False)


def cmd_deals_import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        layout, rows = read_deals(args.file)
    except DealFileError as exc:
        return report_problems(args.file, exc.problems)
    closed = sum(1 for r in rows if r.outcome != "open")
    if args.dry_run:
        print(f"{args.file}: valid {layout} export, {len(rows)} deals, {closed} closed (dry run).")
        return 0
    runtime = _open(settings)
    try:
        result = save_deals(runtime.engine, runtime.default_org_id, rows, now=runtime.clock())
    finally:
        runtime.close()
    print(
        f"{args.file}: {layout} export, {len(rows)} deals ({closed} closed): "
        f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged."
    )
    return 0


def cmd_dashboard_link(args: argparse.Namespace, settings: Settings) -> int:
    runtime = _open(settings)
    try:
        url = asyncio.run(dashboard_url(runtime, runtime.default_org_id, days=args.days))
    finally:
        runtime.close()
    print(url)
    return 0


def cmd_purge_usage(args: argparse.Namespace, settings: Settings) -> int:
    runtime = _open(settings)
    try:
        deleted = purge_now(runtime)
    finally:
        runtime.close()
    print(f"{deleted:,} usage events older than {settings.usage_retention_days} days deleted.")
    return 0


def add_usage_commands(sub: Any) -> None:
    """Add ``deals import``, ``dashboard-link`` and ``purge-usage`` to the CLI."""
    deals = sub.add_parser("deals", help="deal outcomes for outcome correlation")
    deals_sub = deals.add_subparsers(dest="deals_command", metavar="ACTION", required=True)
    p = deals_sub.add_parser(
        "import", help="load outcomes from a HubSpot, Salesforce or plain CSV export"
    )
    p.add_argument("file", type=Path)
    p.add_argument("--dry-run", action="store_true", help="only check the file")
    p.set_defaults(func=cmd_deals_import)

    p = sub.add_parser("dashboard-link", help="print a signed dashboard link (valid 24 hours)")
    p.add_argument("--days", type=int, help="the period the dashboard opens with")
    p.set_defaults(func=cmd_dashboard_link)

    p = sub.add_parser(
        "purge-usage",
        help="delete usage events older than PERSONA_BOT_USAGE_RETENTION_DAYS (default 730)",
    )
    p.set_defaults(func=cmd_purge_usage)
