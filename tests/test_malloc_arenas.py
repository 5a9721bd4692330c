"""``serve`` and ``scheduler`` cap glibc's malloc arenas (PERSONA_BOT_MALLOC_ARENAS, default 2);
a value that cannot work stops them with a clear message before anything starts."""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import pytest

from bot import malloc
from bot.cli import main
from bot.settings import Settings, SettingsError


def _glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and bool(ctypes.CDLL(None).gnu_get_libc_version)
    except (OSError, AttributeError):
        return False


def test_two_arenas_unless_configured() -> None:
    assert malloc.arenas_setting(Settings.from_env({})) == 2
    assert malloc.arenas_setting(Settings.from_env({"PERSONA_BOT_MALLOC_ARENAS": "0"})) == 0
    assert malloc.arenas_setting(Settings.from_env({"PERSONA_BOT_MALLOC_ARENAS": " 8 "})) == 8


@pytest.mark.parametrize("raw", ["two", "-1", "65", "2.5"])
def test_a_setting_that_cannot_work_is_refused(raw: str) -> None:
    settings = Settings.from_env({"PERSONA_BOT_MALLOC_ARENAS": raw})
    with pytest.raises(SettingsError, match=r"PERSONA_BOT_MALLOC_ARENAS must be .* 0 .* 64"):
        malloc.arenas_setting(settings)


def test_zero_leaves_the_c_library_alone() -> None:
    assert malloc.limit_arenas(0) is False


@pytest.mark.skipif(not _glibc(), reason="only glibc's malloc has arenas to cap")
def test_glibc_takes_the_cap() -> None:
    assert malloc.limit_arenas(2) is True


@pytest.mark.parametrize("command", ["serve", "scheduler"])
def test_serve_and_scheduler_stop_on_a_bad_value_before_opening_anything(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "never.db"
    environ = {"PERSONA_BOT_MALLOC_ARENAS": "lots"}
    code = main(["--db", f"sqlite:///{db}", command], environ, configure_logging=False)
    assert code == 2
    assert "PERSONA_BOT_MALLOC_ARENAS must be a whole number" in capsys.readouterr().err
    assert not db.exists()
