"""The Teams app package: a valid manifest, valid icons, and ``persona-bot teams-package``."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from adapters.teams.package import MANIFEST_DIR, build_manifest, manifest_problems, png_size
from bot.cli import main

APP = "1D9F5A40-5C6E-4C3B-8F3A-2B7E9C0D4E55"


def template() -> dict[str, Any]:
    return json.loads((MANIFEST_DIR / "manifest.json").read_text(encoding="utf-8"))


def decode_png(data: bytes) -> tuple[int, int, list[list[tuple[int, ...]]]]:
    """Width, height and RGBA rows of an 8-bit RGBA PNG (all five row filters)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, chunk = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert (depth, color) == (8, 6), "icons are 8-bit RGBA"
    raw, stride, rows, previous = zlib.decompress(idat), width * 4, [], bytes(width * 4)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - 4] if i >= 4 else 0
            up, corner = previous[i], previous[i - 4] if i >= 4 else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                best = min(
                    (abs(p - left), 0, left), (abs(p - up), 1, up), (abs(p - corner), 2, corner)
                )
                line[i] = (line[i] + best[2]) & 255
        previous = bytes(line)
        rows.append([tuple(line[x : x + 4]) for x in range(0, stride, 4)])
    return width, height, rows


def test_the_committed_manifest_is_valid() -> None:
    manifest = template()
    assert manifest_problems(manifest) == []
    assert float(manifest["manifestVersion"]) >= 1.16
    [bot] = manifest["bots"]
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    titles = {c["title"] for lst in bot["commandLists"] for c in lst["commands"]}
    assert {"help", "fit", "stats"} <= titles


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("name", "short"), "x" * 31, "name.short"),
        (("developer", "privacyUrl"), "http://example.com/privacy", "privacyUrl"),
        (("id",), "not-a-guid", "id must be a GUID"),
        (("manifestVersion",), "1.5", "manifestVersion"),
        (("accentColor",), "blue", "accentColor"),
        (("description", "short"), "", "description.short"),
    ],
)
def test_manifest_problems_are_found(path: tuple[str, ...], value: str, problem: str) -> None:
    manifest = template()
    target = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert any(problem in p for p in manifest_problems(manifest))


def test_bots_need_all_three_scopes_and_short_commands() -> None:
    manifest = template()
    manifest["bots"][0]["scopes"] = ["personal"]
    manifest["bots"][0]["commandLists"][0]["commands"].append(
        {"title": "x" * 33, "description": "d"}
    )
    problems = manifest_problems(manifest)
    assert any("scopes" in p for p in problems) and any("title up to 32" in p for p in problems)


def test_icons_are_what_teams_asks_for() -> None:
    width, height, rows = decode_png((MANIFEST_DIR / "color.png").read_bytes())
    assert (width, height) == (192, 192)
    assert len({px for row in rows for px in row}) > 2  # a picture, not a blank square
    width, height, rows = decode_png((MANIFEST_DIR / "outline.png").read_bytes())
    assert (width, height) == (32, 32)
    pixels = [px for row in rows for px in row]
    # White on transparent: every pixel is white (at any opacity) or fully transparent.
    assert all(px[:3] == (255, 255, 255) or px[3] == 0 for px in pixels)
    assert any(px[3] == 0 for px in pixels) and any(px[3] == 255 for px in pixels)


def test_teams_package_writes_the_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out" / "persona-bot.zip"
    code = main(
        ["teams-package", "--app-id", APP, "-o", str(output)], environ={}, configure_logging=False
    )
    assert code == 0
    assert str(output) in capsys.readouterr().out
    with zipfile.ZipFile(output) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        assert png_size(archive.read("color.png")) == (192, 192)
        assert png_size(archive.read("outline.png")) == (32, 32)
    assert manifest["id"] == APP.lower() and manifest["bots"][0]["botId"] == APP.lower()
    assert manifest_problems(manifest) == []
    first = output.read_bytes()
    main(["teams-package", "--app-id", APP, "-o", str(output)], environ={}, configure_logging=False)
    assert output.read_bytes() == first  # reproducible


def test_teams_package_uses_the_configured_app_id(tmp_path: Path) -> None:
    output = tmp_path / "p.zip"
    code = main(
        ["teams-package", "-o", str(output)],
        environ={"MICROSOFT_APP_ID": APP},
        configure_logging=False,
    )
    assert code == 0 and output.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--app-id", "not-a-guid"], "GUID"),
        ([], "--app-id"),
        (["--app-id", APP, "--manifest-dir", "/nonexistent"], "manifest.json"),
    ],
)
def test_teams_package_explains_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = main(
        ["teams-package", *args, "-o", str(tmp_path / "p.zip")],
        environ={},
        configure_logging=False,
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "p.zip").exists()


def test_build_manifest_rejects_a_bad_id() -> None:
    with pytest.raises(ValueError, match="GUID"):
        build_manifest(template(), "28:not-a-guid")
