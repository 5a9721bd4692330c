"""Accuracy floors of the matcher on the development set and the held-out sets.

The acceptance bar for any persona set is top-1 accuracy of at least 90% with at most two
deals that fit no persona forced onto one. The development set, which the matcher was tuned
on, is held to 97%.
"""

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


def test_dev_set_meets_its_floor() -> None:
    report = _bench().evaluate(DATA / "personas_dev.yaml", DATA / "deals_dev.yaml")
    assert report.total == 70
    assert report.accuracy >= 0.97, report.misses
    assert report.nulls_forced <= 2, report.misses


# payroll and iiot were written by the matcher's first author; clm (contract management)
# and awareness (security awareness training) were written before the rules for function
# families, sub-functions, industry mismatch and partner cues were changed, then used to
# check those changes; construction was written after them and measured once (87.5%) before
# its vocabulary gaps were filled.
@pytest.mark.parametrize("company", ["payroll", "iiot", "clm", "awareness", "construction"])
def test_held_out_sets_meet_the_acceptance_floor(company: str) -> None:
    report = _bench().evaluate(
        DATA / f"heldout_{company}_personas.yaml", DATA / f"heldout_{company}_deals.yaml"
    )
    assert report.total >= 30
    assert report.accuracy >= 0.90, report.misses
    assert report.nulls_forced <= 2, report.misses
