"""``persona-bot teams-package``: the zip people upload to Teams (Apps > Manage your apps >
Upload an app), made from ``manifests/teams/`` with the bot's app id filled in.

The manifest is checked before the zip is written (required fields, lengths, https links,
GUIDs, scopes and command lists), so a package that Teams would reject is never produced.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.settings import Settings

MANIFEST_DIR = Path(__file__).resolve().parents[2] / "manifests" / "teams"
PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
SUPPORTED_VERSIONS = ("1.16", "1.17", "1.19", "1.20", "1.21", "1.22")
SCOPES = {"personal", "team", "groupChat"}
ICON_SIZES = {"color": (192, 192), "outline": (32, 32)}
ZIP_TIME = (2026, 1, 1, 0, 0, 0)  # fixed, so the same input gives the same zip


class PackageError(ValueError):
    """The manifest or the icons would not be accepted by Teams."""


def _https(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("https://") and len(value) <= 2048


def _text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, or None when the bytes are not one."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def manifest_problems(manifest: Mapping[str, Any]) -> list[str]:
    """Everything in a Teams app manifest that Teams would reject (the checks that matter)."""
    problems: list[str] = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    version = manifest.get("manifestVersion")
    need(version in SUPPORTED_VERSIONS, f"manifestVersion must be one of {SUPPORTED_VERSIONS}")
    need(
        isinstance(manifest.get("$schema"), str) and f"/v{version}/" in manifest["$schema"],
        "$schema must be the schema of the manifestVersion",
    )
    need(
        isinstance(manifest.get("version"), str) and bool(SEMVER.match(manifest["version"])),
        "version must be like 1.0.0",
    )
    need(
        isinstance(manifest.get("id"), str) and bool(GUID.match(manifest["id"])),
        "id must be a GUID",
    )
    developer = manifest.get("developer") or {}
    need(_text(developer.get("name"), 32), "developer.name is required (at most 32 characters)")
    for link in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        need(_https(developer.get(link)), f"developer.{link} must be an https URL")
    name = manifest.get("name") or {}
    need(_text(name.get("short"), 30), "name.short is required (at most 30 characters)")
    need(
        name.get("full") is None or _text(name.get("full"), 100),
        "name.full: at most 100 characters",
    )
    description = manifest.get("description") or {}
    need(_text(description.get("short"), 80), "description.short is required (at most 80)")
    need(_text(description.get("full"), 4000), "description.full is required (at most 4000)")
    icons = manifest.get("icons") or {}
    for icon in ICON_SIZES:
        need(_text(icons.get(icon), 2048), f"icons.{icon} is required")
    need(
        isinstance(manifest.get("accentColor"), str)
        and bool(re.match(r"^#[0-9a-fA-F]{6}$", manifest["accentColor"])),
        "accentColor must be like #2E5AAC",
    )
    bots = manifest.get("bots")
    need(isinstance(bots, list) and len(bots) == 1, "bots must hold exactly one bot")
    for bot in bots if isinstance(bots, list) else []:
        need(
            isinstance(bot.get("botId"), str) and bool(GUID.match(bot["botId"])),
            "bots[0].botId must be the bot's app id (a GUID)",
        )
        scopes = bot.get("scopes") or []
        need(set(scopes) == SCOPES, f"bots[0].scopes must be {sorted(SCOPES)}")
        for i, command_list in enumerate(bot.get("commandLists") or []):
            commands = command_list.get("commands") or []
            need(0 < len(commands) <= 10, f"commandLists[{i}] holds 1 to 10 commands")
            need(set(command_list.get("scopes") or []) <= SCOPES, f"commandLists[{i}].scopes")
            titles = [c.get("title") for c in commands]
            need(len(set(titles)) == len(titles), f"commandLists[{i}] repeats a command")
            for c in commands:
                need(_text(c.get("title"), 32), f"command {c.get('title')!r}: title up to 32")
                need(
                    _text(c.get("description"), 128),
                    f"command {c.get('title')!r}: description up to 128 characters",
                )
        need(bool(bot.get("commandLists")), "bots[0].commandLists is required")
    return problems


def build_manifest(template: Mapping[str, Any], app_id: str) -> dict[str, Any]:
    """The manifest with the bot's app id as the app id and the bot id."""
    if not GUID.match(app_id):
        raise PackageError(
            f"the app id must be the bot's Microsoft app id (a GUID), not {app_id!r}"
        )
    manifest = copy.deepcopy(dict(template))
    manifest["id"] = app_id.lower()
    for bot in manifest.get("bots") or []:
        bot["botId"] = app_id.lower()
    return manifest


def write_package(app_id: str, output: Path, manifest_dir: Path = MANIFEST_DIR) -> Path:
    """Write the Teams app zip (manifest.json and the two icons) to ``output``."""
    source = manifest_dir / "manifest.json"
    if not source.is_file():
        raise PackageError(f"{source} not found: run from a source checkout or pass --manifest-dir")
    manifest = build_manifest(json.loads(source.read_text(encoding="utf-8")), app_id)
    problems = manifest_problems(manifest)
    icons: dict[str, bytes] = {}
    for icon, size in ICON_SIZES.items():
        path = manifest_dir / str(manifest.get("icons", {}).get(icon, ""))
        data = path.read_bytes() if path.is_file() else b""
        if png_size(data) != size:
            problems.append(f"icons.{icon} must be a {size[0]}x{size[1]} PNG ({path.name})")
        icons[path.name] = data
    if problems:
        raise PackageError("; ".join(problems))
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        entries = [("manifest.json", json.dumps(manifest, indent=2).encode()), *icons.items()]
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return output


def cmd_teams_package(args: argparse.Namespace, settings: Settings) -> int:
    app_id = args.app_id or settings.microsoft_app_id
    if not app_id:
        print(
            "persona-bot teams-package: give --app-id (the bot's Microsoft app id)", file=sys.stderr
        )
        return 2
    try:
        path = write_package(app_id, Path(args.output), Path(args.manifest_dir))
    except PackageError as exc:
        print(f"persona-bot teams-package: {exc}", file=sys.stderr)
        return 2
    print(f"{path}: upload it in Teams (Apps > Manage your apps > Upload an app).")
    return 0


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "teams-package", help="write the Teams app package (zip) to upload to Teams"
    )
    p.add_argument("--app-id", help="the bot's Microsoft app id (default: $MICROSOFT_APP_ID)")
    p.add_argument("--output", "-o", default="persona-bot-teams.zip", help="zip file to write")
    p.add_argument(
        "--manifest-dir", default=str(MANIFEST_DIR), help="folder with manifest.json and icons"
    )
    p.set_defaults(func=cmd_teams_package)
