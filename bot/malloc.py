"""Fewer C heap arenas for the long-running processes (``serve``, ``scheduler``).

glibc's malloc gives threads that allocate at the same time arenas of their own (up to
eight per core) and keeps what a thread frees for its own arena. Database work runs in eight
threads, and SQLite's temporary memory for a usage summary (a few MB per query) lifted each
thread's arena to a high-water mark of its own: in ``bench/soak.py`` the resident memory of
``persona-bot serve`` on SQLite rose in steps for as long as it ran, 46 MB of it free heap
after 25 minutes, while Python's own objects stayed level. With two arenas the free heap
stays near 12 MB and the steps are gone. Python objects are not affected (pymalloc keeps its
own arenas), nor is throughput, which the event loop's one thread bounds.

``PERSONA_BOT_MALLOC_ARENAS`` sets the number (default 2); 0 leaves the C library's default
(and a ``MALLOC_ARENA_MAX`` set in the environment) alone. Other C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)

DEFAULT_ARENAS = 2
SETTING = "PERSONA_BOT_MALLOC_ARENAS"
M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h


def arenas_setting(settings: Settings) -> int:
    raw = settings.extra.get(SETTING, "").strip()
    if not raw:
        return DEFAULT_ARENAS
    if not raw.isdigit() or not 0 <= int(raw) <= 64:
        raise SettingsError(
            f"{SETTING} must be a whole number from 0 (the C library's default) to 64, not {raw!r}"
        )
    return int(raw)


def limit_arenas(arenas: int) -> bool:
    """Cap the arenas glibc creates from now on (call it before starting threads); False
    when nothing was changed: ``arenas`` is 0, or the C library is not glibc."""
    if arenas <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it (musl has mallopt too)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(M_ARENA_MAX, arenas) != 1:
        log.warning("glibc refused to limit its malloc arenas to %d", arenas)
        return False
    return True


def apply(settings: Settings) -> None:
    """Cap the arenas as configured (``serve`` and ``scheduler`` call it first)."""
    arenas = arenas_setting(settings)
    if limit_arenas(arenas):
        log.debug("malloc arenas limited to %d", arenas)
