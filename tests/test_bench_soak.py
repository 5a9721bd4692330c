"""bench/soak.py works end to end in a few seconds: a real ``persona-bot serve`` behind the
benchmark's fake Slack Web API and Bot Connector answers every kind of request correctly and
the scheduler's nudges reach both fakes (memory is not judged on so short a run; timing is
never asserted). Its memory verdict is checked on made-up samples."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_soak", ROOT / "bench" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_soak", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_short_soak_exercises_every_kind_without_errors() -> None:
    soak = _load()
    run = subprocess.run(
        [sys.executable, "bench/soak.py", "--minutes", "0.1", "--history", "2000", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["passed"] and result["errors"] == 0, result["problems"]
    requests = result["requests"]
    assert set(requests) == set(soak.KINDS)
    for kind, tally in requests.items():
        assert tally["requests"] >= 1 and tally["errors"] == 0, (kind, tally)
    deliveries = result["deliveries"]
    # Nudges went out through both platforms; the digests and the alert about an owner no
    # platform knows, once each; the outbox agrees with what reached the fakes.
    assert deliveries["by_platform"]["slack"] >= 1 and deliveries["by_platform"]["teams"] >= 1
    assert deliveries["by_kind"]["nudge"] >= 4 and deliveries["by_kind"]["escalation"] >= 1
    assert deliveries["by_kind"]["digest"] == 2 and deliveries["by_kind"]["alert"] == 1
    assert deliveries["ticks"] >= 2
    assert set(deliveries["outbox"]) <= {"sent", "alerted", "cancelled"}
    assert result["server"]["log_errors"] == 0 and result["server"]["exit_code"] == 0
    assert result["memory"]["judged"] is False  # far too short to judge


def _samples(soak: ModuleType, rss: list[float], warmup: int = 2) -> list[object]:
    return [
        soak.Sample(
            t=i * 10.0, warmup=i < warmup, rss_mb=mb, fds=30, db_mb=1.0, requests=0, errors=0
        )
        for i, mb in enumerate(rss)
    ]


def test_memory_that_keeps_growing_is_not_flat() -> None:
    soak = _load()
    # A warm-up that grows fast, then 1 MB every 10 s: 6 MB over the last minute.
    memory = soak.judge(_samples(soak, [100.0, 130.0, *(140.0 + i for i in range(13))]))
    assert memory.judged and not memory.flat
    assert memory.slope_mb_per_min == pytest.approx(6.0)
    assert memory.second_half_mb == pytest.approx(6.0)
    assert "GROWING" in memory.describe()


def test_memory_that_wobbles_around_a_level_is_flat() -> None:
    soak = _load()
    wobble = [150.0, 151.5, 149.0, 150.5, 151.0, 149.5, 150.0, 151.0, 149.0, 150.5, 150.0, 151.0]
    memory = soak.judge(_samples(soak, [100.0, 140.0, *wobble]))
    assert memory.judged and memory.flat
    assert memory.start_mb == 150.0 and memory.end_mb == 151.0
    assert abs(memory.second_half_mb) < soak.FLAT_MB


def test_a_run_too_short_is_not_judged() -> None:
    soak = _load()
    memory = soak.judge(_samples(soak, [100.0, 120.0, 140.0, 160.0]))
    assert not memory.judged
    assert "not judged" in memory.describe()
