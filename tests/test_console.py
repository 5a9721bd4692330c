"""persona-bot chat: the terminal conversation through the same router."""

from __future__ import annotations

import io
import subprocess
import sys

from adapters.console import run_chat
from bot.router import Router
from bot.runtime import Runtime


async def test_a_terminal_conversation_with_buttons(runtime: Runtime, router: Router) -> None:
    stdin = io.StringIO("fiona\n\n2\nfit VP Finance at a 400-person SaaS company\nquit\nlist\n")
    stdout = io.StringIO()
    assert await run_chat(runtime, router, stdin, stdout) == 0
    out = stdout.getvalue()
    assert "Finance Fiona\n=============" in out and "[1] 👍 Helpful" in out
    assert "Thanks for rating Finance Fiona" in out  # "2" pressed the second button
    assert "Which persona fits this deal?" in out
    assert "4 personas" not in out  # nothing after quit is read


def test_persona_bot_chat_answers_in_a_real_process(sqlite_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--db", sqlite_url, "chat"],
        input="finanse fiona\nhelp\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Finance Fiona" in done.stdout and "Pain points" in done.stdout
    assert "/persona fit" in done.stdout  # help lists the verbs
    assert "Traceback" not in done.stderr
