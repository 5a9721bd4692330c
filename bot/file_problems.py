"""How the command line reports an invalid input file (personas, deals): every problem on a
line of its own as ``FILE:LINE: message``, then a count, and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class FileProblem(Protocol):
    def format(self, filename: str) -> str: ...


def report_problems(path: Path, problems: Sequence[FileProblem]) -> int:
    """Print every problem of an input file as ``FILE:LINE: message``; the exit code 2."""
    for problem in problems:
        print(problem.format(str(path)), file=sys.stderr)
    count = len(problems)
    print(
        f"{path}: {count} problem{'s' if count != 1 else ''}; nothing was imported.",
        file=sys.stderr,
    )
    return 2
