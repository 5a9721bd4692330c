"""``persona-bot serve`` under observation, for finding what grows during a soak.

    python bench/servers/traced_serve.py OUT_DIR FRAMES serve --host H --port P

Each SIGUSR2 appends a line to ``OUT_DIR/memory.txt``: where the process's memory is, as
far as the process can tell (resident set; Python's allocated blocks and its small-object
arenas; SQLite's own allocator, and its page caches apart; glibc's heap in use and free).
That costs nothing between signals.

With ``FRAMES`` > 0, Python's allocations are also traced that many frames deep, and each
SIGUSR1 takes a snapshot: the first is the baseline (its largest allocation sites go to
``OUT_DIR/baseline.txt``); every later one writes ``OUT_DIR/growth-N.txt``, the allocation
sites that grew most since the baseline, with their tracebacks. Tracing slows every
allocation and costs memory of its own, so RSS figures of a traced run say nothing about the
untraced server; only the growth listings do. The benchmark's ``--tracemalloc DIR`` runs the
server this way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import linecache
import os
import re
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import FrameType

from bot.cli import main as cli_main

TOP = 25
NOISE = (  # the tracing and the listings themselves
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, linecache.__file__),
    tracemalloc.Filter(False, __file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _library(name: str) -> ctypes.CDLL | None:
    path = ctypes.util.find_library(name)
    try:
        return ctypes.CDLL(path) if path else None
    except OSError:
        return None


def pymalloc_mb() -> float:
    """The memory of Python's small-object arenas (what ``sys._debugmallocstats`` prints to
    the standard error, read back from there)."""
    with tempfile.TemporaryFile() as f:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode(errors="replace")
    found = re.search(r"^\d+ arenas \* \d+ bytes/arena\s+=\s+([\d,]+)", text, re.MULTILINE)
    return int(found.group(1).replace(",", "")) / 2**20 if found else -1.0


class Breakdown:
    """One line of where the memory is, per SIGUSR2."""

    def __init__(self, out: Path) -> None:
        self.out = out / "memory.txt"
        self.started = time.monotonic()
        # The same shared libraries the process already uses (dlopen hands back the loaded
        # copy), so their counters are the process's own.
        self.sqlite = _library("sqlite3")
        if self.sqlite is not None:
            self.sqlite.sqlite3_memory_used.restype = ctypes.c_int64
        self.libc = _library("c")
        if self.libc is not None and hasattr(self.libc, "mallinfo2"):
            self.libc.mallinfo2.restype = MallInfo2
        else:
            self.libc = None
        self.out.write_text(
            "seconds rss_mb python_blocks python_arenas_mb sqlite_mb sqlite_pages_mb heap_used_mb "
            "heap_free_mb mmapped_mb\n"
        )

    def write(self, signum: int, frame: FrameType | None) -> None:
        rss = 0.0
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
        sqlite = pages = -1.0
        if self.sqlite is not None:
            sqlite = self.sqlite.sqlite3_memory_used() / 2**20
            now, high = ctypes.c_int64(), ctypes.c_int64()
            # SQLITE_STATUS_PAGECACHE_OVERFLOW: page cache memory taken from the heap
            self.sqlite.sqlite3_status64(2, ctypes.byref(now), ctypes.byref(high), 0)
            pages = now.value / 2**20
        used = free = mapped = -1.0
        if self.libc is not None:
            info = self.libc.mallinfo2()
            used, free, mapped = info.uordblks / 2**20, info.fordblks / 2**20, info.hblkhd / 2**20
        with self.out.open("a") as f:
            f.write(
                f"{time.monotonic() - self.started:.0f} {rss:.1f} {sys.getallocatedblocks()} "
                f"{pymalloc_mb():.1f} "
                f"{sqlite:.2f} {pages:.2f} {used:.1f} {free:.1f} {mapped:.1f}\n"
            )


def _listing(stats: list[tracemalloc.StatisticDiff] | list[tracemalloc.Statistic]) -> str:
    lines: list[str] = []
    for stat in stats:
        if isinstance(stat, tracemalloc.StatisticDiff):
            head = (
                f"{stat.size_diff / 1024:+.1f} KiB ({stat.count_diff:+d} blocks), "
                f"now {stat.size / 1024:.1f} KiB in {stat.count} blocks"
            )
        else:
            head = f"{stat.size / 1024:.1f} KiB in {stat.count} blocks"
        lines.append(head)
        lines.extend(f"    {line}" for line in stat.traceback.format(most_recent_first=True))
    return "\n".join(lines) + "\n"


class Snapshots:
    """The baseline at the first SIGUSR1, what grew since at each later one."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.baseline: tracemalloc.Snapshot | None = None
        self.taken = 0

    def take(self, signum: int, frame: FrameType | None) -> None:
        snapshot = tracemalloc.take_snapshot().filter_traces(NOISE)
        if self.baseline is None:
            self.baseline = snapshot
            top = snapshot.statistics("traceback")[:TOP]
            (self.out / "baseline.txt").write_text(_listing(top))
            return
        self.taken += 1
        diff = snapshot.compare_to(self.baseline, "traceback")
        total = sum(stat.size_diff for stat in diff)
        grown = sorted(diff, key=lambda stat: stat.size_diff, reverse=True)[:TOP]
        summary = (
            f"traced Python memory {total / 2**20:+.2f} MiB since the baseline; "
            f"the {len(grown)} allocation sites that grew most:\n"
        )
        (self.out / f"growth-{self.taken}.txt").write_text(summary + _listing(grown))


def main() -> int:
    out, frames, argv = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGUSR2, Breakdown(out).write)
    if frames > 0:
        tracemalloc.start(frames)
        signal.signal(signal.SIGUSR1, Snapshots(out).take)
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
