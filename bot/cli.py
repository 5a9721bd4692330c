"""The ``persona-bot`` command line: serve, chat, import, export, lookup, fit, stats, migrate.

Settings are read once from the environment here and passed down. Exit codes: 0 success,
1 failure (the database cannot be reached, a command failed), 2 invalid input or usage
(an invalid persona file changes nothing and exits 2).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.extensions import Extension, add_all_commands, configure, load_extensions
from bot.file_problems import report_problems
from bot.handlers import default_router
from bot.logs import setup_logging
from bot.model import Command, ConversationRef, Reply, UserRef
from bot.permissions import terminal_user
from bot.plaintext import render_text
from bot.router import Router
from bot.runtime import Runtime
from bot.settings import Settings, SettingsError, url_without_password
from bot.usage_cli import add_usage_commands
from persona_store import migrate as migrations
from persona_store.schema import PersonaFileError, dump_personas, load_persona_file

log = logging.getLogger("persona_bot")


def safe_url(url: str) -> str:
    """The database URL without its password, for messages."""
    return url_without_password(url)


def open_runtime(settings: Settings, *, seed: bool = False) -> Runtime:
    return Runtime.open(settings, seed=seed and settings.load_samples)


def build_router(runtime: Runtime, extensions: Sequence[Extension]) -> Router:
    router = default_router(runtime)
    configure(router, extensions)
    return router


def cli_user() -> UserRef:
    return terminal_user("cli")


async def run_command(router: Router, text: str, verb: str | None = None) -> Reply:
    conversation = ConversationRef(platform="cli", workspace="", channel="terminal")
    command = router.command_from_text(text, cli_user(), conversation)
    if verb is not None:
        command = Command(command.user, conversation, verb, text, text)
    return await router.dispatch(command)


def print_reply(reply: Reply) -> None:
    print(render_text(reply, numbered_buttons=False)[0])


# commands -------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from bot import malloc
    from bot.web import PLATFORMS, create_app, freeze_startup_heap

    malloc.apply(settings)  # before any database thread starts
    extensions = args.extensions
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    # Extensions decide by the real bind address (Teams' Emulator mode is loopback-only).
    settings = dataclasses.replace(settings, host=host, port=port)
    runtime = open_runtime(settings, seed=True)
    try:
        router = build_router(runtime, extensions)
        app = create_app(runtime, router, extensions)
        app.on_startup.append(freeze_startup_heap)  # last: after the extensions' start-up
        platforms = app[PLATFORMS]
        log.info(
            "persona-bot serving on http://%s:%d (%s); database %s",
            host,
            port,
            ", ".join(platforms) if platforms else "no chat platform configured",
            safe_url(settings.database_url),
        )
        web.run_app(app, host=host, port=port, print=None, handle_signals=True, shutdown_timeout=10)
    finally:
        runtime.close()
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    chats = [e for e in args.extensions if e.chat is not None]
    if not chats:
        print("persona-bot chat needs the console adapter, which is not installed.")
        return 1
    runtime = open_runtime(settings, seed=True)
    try:
        router = build_router(runtime, args.extensions)
        chat = chats[0].chat
        assert chat is not None
        return asyncio.run(chat(runtime, router, sys.stdin, sys.stdout))
    finally:
        runtime.close()


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        specs = load_persona_file(args.file)
    except PersonaFileError as exc:
        return report_problems(args.file, exc.problems)
    if args.dry_run:
        print(f"{args.file}: valid, {len(specs)} personas (dry run: nothing imported).")
        return 0
    runtime = open_runtime(settings)
    try:
        result = runtime.store.import_personas(
            runtime.default_org_id, specs, f"{cli_user().label} (import)", replace=args.replace
        )
    finally:
        runtime.close()
    parts = [
        f"{len(result.created)} created",
        f"{len(result.updated)} updated",
        f"{len(result.unchanged)} unchanged",
    ]
    if result.restored:
        parts.append(f"{len(result.restored)} restored")
    if args.replace:
        parts.append(f"{len(result.archived)} archived")
    print(f"{args.file}: {', '.join(parts)}.")
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    runtime = open_runtime(settings)
    try:
        personas = runtime.store.list_personas(runtime.default_org_id)
    finally:
        runtime.close()
    text = dump_personas([p.spec for p in personas], args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"{len(personas)} personas written to {args.output}.", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_lookup(args: argparse.Namespace, settings: Settings) -> int:
    name = " ".join(args.name)
    runtime = open_runtime(settings, seed=True)
    try:
        router = build_router(runtime, args.extensions)
        reply = asyncio.run(run_command(router, name, verb="lookup"))
        if args.json:
            persona = runtime.store.get_persona(runtime.default_org_id, reply.persona_key or "")
            suggestions = reply.data.get("suggestions", [])
            print(
                json.dumps(
                    {
                        "match": reply.persona_key,
                        "persona": persona.spec.to_dict() if persona else None,
                        "suggestions": suggestions,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            print_reply(reply)
    finally:
        runtime.close()
    return 0 if reply.persona_key else 1


def cmd_fit(args: argparse.Namespace, settings: Settings) -> int:
    text = " ".join(args.text)
    fields = {
        name: str(value)
        for name, value in (
            ("industry", args.industry),
            ("employees", args.employees),
            ("revenue_usd", args.revenue),
            ("region", args.region),
            ("title", args.title),
            ("stage", args.stage),
        )
        if value is not None
    }
    runtime = open_runtime(settings, seed=True)
    try:
        router = build_router(runtime, args.extensions)
        conversation = ConversationRef(platform="cli", workspace="", channel="terminal")
        command = Command(cli_user(), conversation, "fit", text, text, "form", fields)
        reply = asyncio.run(router.dispatch(command))
    finally:
        runtime.close()
    if reply.kind != "fit":
        print_reply(reply)
        return 2
    if args.json:
        fit = reply.data["fit"]
        assert isinstance(fit, dict)
        print(json.dumps(fit, ensure_ascii=False))
    else:
        print_reply(reply)
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    runtime = open_runtime(settings)
    try:
        router = build_router(runtime, args.extensions)
        reply = asyncio.run(run_command(router, str(args.days), verb="stats"))
    finally:
        runtime.close()
    if reply.kind == "error":
        print_reply(reply)
        return 1
    if args.json:
        print(json.dumps({"days": args.days, **reply.data}, ensure_ascii=False, default=str))
    else:
        print_reply(reply)
    return 0


def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    runtime = open_runtime(settings)
    try:
        router = build_router(runtime, args.extensions)
        reply = asyncio.run(run_command(router, "", verb="health"))
    finally:
        runtime.close()
    print_reply(reply)
    return 0 if reply.kind == "health" else 1


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    runtime = open_runtime(settings)
    try:
        router = build_router(runtime, args.extensions)
        reply = asyncio.run(run_command(router, " ".join(args.name), verb="history"))
    finally:
        runtime.close()
    print_reply(reply)
    return 0 if reply.kind == "history" else 1


def cmd_orgs(args: argparse.Namespace, settings: Settings) -> int:
    runtime = open_runtime(settings)
    try:
        orgs = runtime.store.list_orgs()
    finally:
        runtime.close()
    if args.json:
        print(json.dumps(orgs, ensure_ascii=False))
        return 0
    for org in orgs:
        where = ", ".join(org["workspaces"]) or "this install (terminal and home workspaces)"
        print(f"{org['slug']:<32} {org['personas']:>3} personas  {org['name']}  [{where}]")
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from persona_store.db import create_db_engine

    engine = create_db_engine(settings.database_url)
    try:
        before = migrations.current_revision(engine)
        if args.check:
            head = migrations.head_revision()
            print(f"database at {before or 'nothing'}; newest is {head}")
            return 0 if before == head else 1
        migrations.upgrade(engine)
        after = migrations.current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        print(f"{safe_url(settings.database_url)}: schema already up to date ({after}).")
    else:
        print(f"{safe_url(settings.database_url)}: migrated {before or 'empty'} -> {after}.")
    return 0


# parser ---------------------------------------------------------------------------------


def build_parser(extensions: Sequence[Extension]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="persona-bot",
        description="Customer personas where people work: Slack, Microsoft Teams, terminal.",
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="SQLAlchemy database URL (default: $PERSONA_BOT_DATABASE_URL, "
        "else persona-bot.db in the working directory)",
    )
    parser.add_argument(
        "--org",
        metavar="SLUG",
        help="act for this organization (see `persona-bot orgs`; default: $PERSONA_BOT_ORG, "
        "else the install's own organization)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("serve", help="run the web app: Slack, Teams, health, metrics")
    p.add_argument("--host", help="bind address (default: $PERSONA_BOT_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: $PERSONA_BOT_PORT or 3978)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("chat", help="talk to the bot in this terminal (no credentials needed)")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("import", help="validate and load personas from a YAML or JSON file")
    p.add_argument("file", type=Path)
    p.add_argument(
        "--replace", action="store_true", help="archive personas that are not in the file"
    )
    p.add_argument("--dry-run", action="store_true", help="only validate the file")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="write all personas in the persona file format")
    p.add_argument("--format", choices=["yaml", "json"], default="yaml")
    p.add_argument("--output", "-o", help="file to write (default: standard output)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("lookup", help="what /persona NAME answers")
    p.add_argument("name", nargs="+")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_lookup)

    p = sub.add_parser("fit", help="rank personas for a deal: which persona fits?")
    p.add_argument("text", nargs="*", help="what you know about the deal, in your own words")
    p.add_argument("--industry")
    p.add_argument("--employees", type=int, metavar="N", help="head count")
    p.add_argument("--revenue", type=int, metavar="N", help="annual revenue in USD")
    p.add_argument("--region")
    p.add_argument("--title", help="the buyer's job title")
    p.add_argument("--stage", help="funding stage, e.g. Series B")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("stats", help="the usage summary managers read")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("health", help="check for the classic persona failures")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("history", help="the last changes to a persona")
    p.add_argument("name", nargs="+")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("orgs", help="list organizations (one per Slack workspace or Teams tenant)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_orgs)

    p = sub.add_parser("migrate", help="bring the database schema up to date")
    p.add_argument("--check", action="store_true", help="only tell whether it is up to date")
    p.set_defaults(func=cmd_migrate)

    add_usage_commands(sub)
    add_all_commands(sub, extensions)
    return parser


def main(
    argv: Sequence[str] | None = None,
    environ: dict[str, str] | None = None,
    *,
    configure_logging: bool = True,
) -> int:
    """Run one command; tests pass ``environ`` and keep their own logging."""
    environ = dict(os.environ if environ is None else environ)
    extensions = load_extensions()
    parser = build_parser(extensions)
    args = parser.parse_args(argv)
    args.extensions = extensions
    try:
        settings = Settings.from_env(environ, database_url=args.db, org_slug=args.org)
    except SettingsError as exc:
        print(f"persona-bot: {exc}", file=sys.stderr)
        return 2
    # The terminal chat is a conversation: only warnings interrupt it.
    level = "WARNING" if args.command == "chat" and args.log_level == "INFO" else args.log_level
    if configure_logging:
        setup_logging(level, settings.secrets)
    try:
        result: Any = args.func(args, settings)
    except SettingsError as exc:
        print(f"persona-bot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            print(
                f"persona-bot: cannot use the database {safe_url(settings.database_url)}: "
                f"{str(exc.orig).splitlines()[0] if exc.orig else exc}",
                file=sys.stderr,
            )
            return 1
        raise
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
