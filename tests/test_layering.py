"""Dependencies point down: adapters -> bot -> persona_store; scheduler -> bot, persona_store.

bot/ never imports a chat SDK or the adapters/scheduler packages; persona_store/ imports
nothing of the others. This reads the imports of every file, so a shortcut fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "persona_store": {"bot", "adapters", "scheduler", "slack_bolt", "slack_sdk", "botbuilder"},
    "bot": {"adapters", "scheduler", "slack_bolt", "slack_sdk", "botbuilder", "botframework"},
    "scheduler": {"adapters", "slack_bolt", "slack_sdk", "botbuilder", "botframework"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_its_layer_allows(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no files under {package}/"
    offenders = {
        str(f.relative_to(ROOT)): sorted(imported_roots(f) & FORBIDDEN[package]) for f in files
    }
    assert {f: bad for f, bad in offenders.items() if bad} == {}
