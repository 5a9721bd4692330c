"""bench/load.py works end to end on its yardstick (timing is never asserted: the machine is
shared), and its profile summary reads py-spy's collapsed stacks."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_load", module)
    spec.loader.exec_module(module)
    return module


def _bare_row(out: str) -> list[str]:
    [row] = [line.split() for line in out.splitlines() if line.startswith("bare ")]
    return row


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_one_short_round_of_the_bare_yardstick_with_wrk(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--duration", "1", "--warmup", "0", "--rounds", "1", "--only", "bare"]
    assert _load().main(args) == 0
    out = capsys.readouterr()
    row = _bare_row(out.out)
    assert float(row[1]) > 0 and row[5] == "0" and row[6] == "100.0%", out.out
    assert "load: wrk, 16 connections" in out.err


def test_one_short_round_with_the_built_in_client(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--duration", "1", "--warmup", "0", "--rounds", "1", "--only", "bare", "--builtin"]
    assert _load().main(args) == 0
    out = capsys.readouterr()
    assert float(_bare_row(out.out)[1]) > 0, out.out
    assert "load: aiohttp client" in out.err


def test_unknown_targets_are_refused() -> None:
    with pytest.raises(SystemExit):
        _load().main(["--only", "bare,nonesuch"])


def test_profile_summary_splits_busy_samples_and_ranks_functions(tmp_path: Path) -> None:
    stacks = tmp_path / "slack.txt"
    loop = "run_forever (asyncio/base_events.py:607);Handle._run (asyncio/events.py:80)"
    stacks.write_text(
        f"{loop};handle_events (adapters/slack/app.py:181);dumps (json/__init__.py:231) 30\n"
        f"{loop};handle_events (adapters/slack/app.py:181) 10\n"
        f"{loop};select (selectors.py:468) 500\n"
        "Thread.run (threading.py:982);_write (persona_store/usage.py:148) 10\n"
    )
    summary = _load().summarize_profile(stacks)
    assert "50 busy samples" in summary and "event loop 80%, other threads 20%" in summary
    self_part, total_part = summary.split("top total:")
    assert self_part.index("json/__init__.py:dumps") < self_part.index("adapters/slack/app.py")
    assert "80.0%  adapters/slack/app.py:handle_events" in total_part
    assert "selectors" not in summary  # waiting is not work
