"""A private, throwaway PostgreSQL server that a test may stop and start at will.

Tests that play a real database outage must not touch the shared server other people use, so
this builds a cluster of its own with the installed server binaries (``initdb``, ``pg_ctl``):
trust authentication, a free port on 127.0.0.1, its Unix socket directory, data and log in
one temporary directory, durability switched off (it lives for one test). PostgreSQL refuses
to run as root, so when the tests run as root the binaries run as the unprivileged
``postgres`` OS user, in a temporary directory that user owns (pytest's own temporary
directories are private to root and cannot be traversed by it).

``PgCluster.unavailable()`` says why no cluster can be made here (no server binaries, or
root without an unprivileged user), for a clear skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SERVER_USER = "postgres"
BINARIES = ("initdb", "pg_ctl", "postgres")
TIMEOUT = 30  # seconds pg_ctl waits for the server to start or stop


def _version(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def server_bindir() -> Path | None:
    """The directory of the PostgreSQL server binaries: ``pg_config --bindir``, else the
    newest /usr/lib/postgresql/*/bin, else wherever ``pg_ctl`` is on the PATH."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            done = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
            )
            candidates.append(done.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(str(Path(pg_ctl).resolve().parent))
    for candidate in candidates:
        if candidate and all((Path(candidate) / name).is_file() for name in BINARIES):
            return Path(candidate)
    return None


def server_user() -> pwd.struct_passwd | None:
    """The OS user to run the server as: None to run it as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(SERVER_USER)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """``cluster = PgCluster.create(tmp_path)``; ``cluster.url``; ``stop()``/``start()``;
    ``destroy()`` stops it (immediately) and removes every file."""

    def __init__(self, bindir: Path, root: Path, user: pwd.struct_passwd | None) -> None:
        self.bindir = bindir
        self.root = root
        self.user = user
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "server.log"
        self.port = free_port()
        self.running = False

    @staticmethod
    def unavailable() -> str | None:
        """Why no private cluster can run on this machine, or None."""
        if server_bindir() is None:
            return (
                "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found through "
                "pg_config --bindir, /usr/lib/postgresql/*/bin or the PATH"
            )
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError:
                return (
                    f"running as root, and PostgreSQL refuses root: there is no unprivileged "
                    f"'{SERVER_USER}' OS user to run a private server as"
                )
        return None

    @classmethod
    def create(cls, tmp_path: Path) -> PgCluster:
        """Initialise and start a cluster in a fresh directory (under ``tmp_path`` when we
        run unprivileged, else a temporary directory the server's user owns)."""
        bindir = server_bindir()
        if bindir is None:
            raise RuntimeError(cls.unavailable())
        user = server_user()
        if user is None:
            root = Path(tempfile.mkdtemp(prefix="pg-", dir=tmp_path))
        else:
            root = Path(tempfile.mkdtemp(prefix="persona-bot-pg-"))
            os.chown(root, user.pw_uid, user.pw_gid)
        cluster = cls(bindir, root, user)
        try:
            cluster._init()
            cluster.start()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.bindir}:/usr/bin:/bin",
            "LC_ALL": "C",
            "LANG": "C",
            "HOME": str(self.root),
        }
        user = self.user
        done = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT + 15,
            check=False,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,  # none of root's groups either
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{args[0]} {args[1:]} failed ({done.returncode}): {done.stderr.strip()}\n"
                f"{self.log_tail()}"
            )
        return done

    def _init(self) -> None:
        self._run(
            "initdb",
            "--pgdata", str(self.data),
            "--username", "postgres",
            "--auth", "trust",
            "--encoding", "UTF8",
            "--locale", "C",
            "--no-sync",
        )  # fmt: skip
        self._mkdir(self.sockets)
        settings = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.sockets}'",
            "max_connections": "50",
            "shared_buffers": "16MB",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# a throwaway test cluster\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def _mkdir(self, path: Path) -> None:
        path.mkdir(mode=0o700)
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w",
                  "-t", str(TIMEOUT))  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back and disconnect every session) and wait."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", str(TIMEOUT))
        self.running = False

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def destroy(self) -> None:
        if self.running:
            done = self._run(
                "pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", check=False
            )
            self.running = done.returncode != 0
        if not self.running:
            shutil.rmtree(self.root, ignore_errors=True)
