"""Accuracy floors of the matcher on the development set and the held-out sets."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def _bench() -> ModuleType:
    path = ROOT / "bench" / "matcher_eval.py"
    spec = importlib.util.spec_from_file_location("matcher_eval", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("matcher_eval", module)
    spec.loader.exec_module(module)
    return module


def test_dev_set_meets_the_acceptance_floor() -> None:
    report = _bench().evaluate(DATA / "personas_dev.yaml", DATA / "deals_dev.yaml")
    assert report.total == 70
    assert report.accuracy >= 0.90, report.misses
    assert report.nulls_forced <= 2, report.misses


@pytest.mark.parametrize("company", ["payroll", "iiot"])
def test_held_out_sets_meet_a_lower_floor(company: str) -> None:
    report = _bench().evaluate(
        DATA / f"heldout_{company}_personas.yaml", DATA / f"heldout_{company}_deals.yaml"
    )
    assert report.total >= 25
    assert report.accuracy >= 0.85, report.misses
    assert report.nulls_forced <= 2, report.misses
