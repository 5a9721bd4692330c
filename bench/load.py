"""Load benchmark: persona-bot's request paths against bare aiohttp and the Bolt floor.

    python bench/load.py [--duration 10] [--warmup 2] [--rounds 3] [--connections 16]
                         [--only bare,bolt,slack,teams] [--json]

Each server runs on 127.0.0.1 in its own process, pinned to CPU 0 where the OS allows; the
load generator (wrk when installed, else a built-in aiohttp client) runs on CPU 1. Before
timing, one request is sent and its answer checked. Every target runs ``--rounds`` times in
turn (interleaved, so drift on a shared machine hits all of them alike) and the medians are
reported: requests per second, p50/p99 latency, server CPU per request, and each throughput
as a ratio of bare aiohttp and of the Bolt floor. Absolute numbers drift between machines and
runs; the ratios in one run are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU = 0
LOAD_CPU = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return set()


def pin(cpu: int) -> Callable[[], None] | None:
    if cpu not in cpus():
        return None

    def apply() -> None:
        os.sched_setaffinity(0, {cpu})

    return apply


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (0 where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_http(
    url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback only
                return
        except urllib.error.HTTPError:
            return  # it answered: it is up
        except Exception:
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"the server of {url} exited with {process.returncode}"
                ) from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up within {timeout:.0f} s") from None
            time.sleep(0.1)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Target:
    """One server to measure: how to start it, what to send, how to check the answer."""

    name: str
    title: str
    start: Callable[[int, Path], list[subprocess.Popen[bytes]]]  # -> [server, helpers...]
    request: Callable[[], Request]
    check: Callable[[int, bytes], str | None]  # status, body -> problem or None
    health_path: str = "/healthz"


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_req: float
    errors: int


# load generators -------------------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = {method}
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    'RESULT {{"requests": %d, "seconds": %f, "p50": %f, "p99": %f, "errors": %d}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, errors))
end
"""


def _lua(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def run_wrk(
    url: str, req: Request, seconds: float, connections: int, tmp: Path
) -> dict[str, float]:
    headers = "\n".join(f"wrk.headers[{_lua(k)}] = {_lua(v)}" for k, v in req.headers.items())
    script = tmp / "bench.lua"
    script.write_text(
        WRK_SCRIPT.format(method=_lua(req.method), body=_lua(req.body.decode()), headers=headers)
    )
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script)]
    out = subprocess.run(
        [*cmd, url + req.path], capture_output=True, text=True, check=True, preexec_fn=pin(LOAD_CPU)
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    data = json.loads(line[len("RESULT ") :])
    data["rps"] = data["requests"] / data["seconds"]
    return data


async def _client_load(
    url: str, req: Request, seconds: float, connections: int
) -> dict[str, float]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                started = time.perf_counter()
                async with session.request(
                    req.method, url + req.path, data=req.body, headers=req.headers
                ) as resp:
                    await resp.read()
                    if resp.status >= 400:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
    }


def run_client(url: str, req: Request, seconds: float, connections: int) -> dict[str, float]:
    allowed = cpus()
    if LOAD_CPU in allowed:
        os.sched_setaffinity(0, {LOAD_CPU})
    try:
        return asyncio.run(_client_load(url, req, seconds, connections))
    finally:
        if LOAD_CPU in allowed:
            os.sched_setaffinity(0, allowed)


# measuring -------------------------------------------------------------------------------


def send_once(url: str, req: Request) -> tuple[int, bytes]:
    request = urllib.request.Request(  # noqa: S310 - loopback only
        url + req.path, data=req.body or None, headers=req.headers, method=req.method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def measure(
    target: Target, args: argparse.Namespace, tmp: Path, profile: Path | None = None
) -> Result:
    """Start the target, check one answer, warm up, time it (sampling it into ``profile``)."""
    port = free_port()
    procs = target.start(port, tmp)
    server = procs[0]
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_http(url + target.health_path, process=server)
            status, body = send_once(url, target.request())
            problem = target.check(status, body)
            if problem:
                raise RuntimeError(f"{target.name}: wrong answer before timing: {problem}")
        except Exception:
            for log in sorted(tmp.glob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-20:]
                print(f"--- {log.name}\n" + "\n".join(tail), file=sys.stderr)
            raise
        use_wrk = shutil.which("wrk") is not None and not args.builtin

        def load(seconds: float) -> dict[str, float]:
            if use_wrk:
                return run_wrk(url, target.request(), seconds, args.connections, tmp)
            return run_client(url, target.request(), seconds, args.connections)

        if args.warmup > 0:
            load(args.warmup)
        spy = start_profiler(server.pid, args.duration, profile) if profile else None
        cpu_before = cpu_seconds(server.pid)
        data = load(args.duration)
        cpu = cpu_seconds(server.pid) - cpu_before
        if spy is not None:
            spy.wait(timeout=args.duration + 30)
        return Result(
            rps=data["rps"],
            p50_ms=data["p50"],
            p99_ms=data["p99"],
            cpu_ms_per_req=cpu * 1000 / max(1, data["requests"]),
            errors=int(data["errors"]),
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


# profiles ------------------------------------------------------------------------------------

PROFILE_RATE = 250  # samples per second


def start_profiler(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the server for ``seconds`` into collapsed stacks at ``output``."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen(
        [
            spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
            "--rate", str(PROFILE_RATE), "--format", "raw",
            "--output", str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=pin(LOAD_CPU),
    )  # fmt: skip


def _frame_name(frame: str) -> str:
    """``handle_events (adapters/slack/app.py:181)`` -> ``adapters/slack/app.py:handle_events``
    (py-spy already shortens library paths to the package)."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/"):
        path = path.split(marker, 1)[-1]
    return f"{path}:{name}"


# Waiting, not working: the selector of the event loop, idle pool threads, the usage writer
# between batches.
IDLE_FRAMES = ("selectors.py:", "threading.py:Condition.wait", "queue.py:", "thread.py:_worker")
# Frames on every stack of the event loop, left out of the totals.
PLUMBING = (
    "asyncio/", "threading.py:", "<frozen runpy>:", "bot/cli.py:", "aiohttp/web.py:",
    "aiohttp/web_protocol.py:", "aiohttp/web_app.py:", "aiohttp/web_middlewares.py:",
)  # fmt: skip


def _idle(frame: str) -> bool:
    return any(marker in frame for marker in IDLE_FRAMES)


def summarize_profile(path: Path, top: int = 15) -> str:
    """Where the server's busy samples went (event loop or other threads), then the functions
    with the most samples of their own (self) and below them (total)."""
    own: dict[str, int] = {}
    below: dict[str, int] = {}
    loop = threads = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_frame_name(f) for f in stack.split(";") if " (" in f]
        if not frames or not count.isdigit() or _idle(frames[-1]):
            continue
        samples = int(count)
        if frames[0].startswith("threading.py:"):
            threads += samples
        else:
            loop += samples
        own[frames[-1]] = own.get(frames[-1], 0) + samples
        for name in set(frames):
            if not name.startswith(PLUMBING):
                below[name] = below.get(name, 0) + samples
    busy = loop + threads
    if not busy:
        return f"{path.name}: no samples (is py-spy allowed to attach?)"
    lines = [
        f"{path.name}: {busy} busy samples at {PROFILE_RATE}/s: event loop {loop / busy:.0%}, "
        f"other threads {threads / busy:.0%}"
    ]
    for title, table in (("self", own), ("total", below)):
        lines.append(f"  top {title}:")
        for name, samples in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            lines.append(f"    {samples / busy:6.1%}  {name}")
    return "\n".join(lines)


def python_server(
    *argv: str,
    env: dict[str, str] | None = None,
    cpu: int = SERVER_CPU,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """A Python process of this checkout, pinned to ``cpu``, its output in ``log`` if given."""
    # The caller's Slack, Teams and persona-bot settings must not leak into the servers.
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "PERSONA_BOT_", "MICROSOFT_APP_"))
    }
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, *argv],
            cwd=ROOT,
            env={**inherited, **(env or {}), "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
            preexec_fn=pin(cpu),
        )
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


# targets ---------------------------------------------------------------------------------

SIGNING_SECRET = "bench-signing-secret"


def bare_target() -> Target:
    return Target(
        name="bare",
        title="bare aiohttp, fixed JSON",
        start=lambda port, tmp: [python_server("bench/servers/bare.py", str(port))],
        request=lambda: Request("POST", "/", {"Content-Type": "application/json"}, b"{}"),
        check=lambda status, body: None if status == 200 and b"ok" in body else f"{status}",
        health_path="/",
    )


def slack_headers(body: bytes, content_type: str) -> dict[str, str]:
    """The headers of a request to ``/slack/events``, signed as Slack signs them (v0)."""
    from slack_sdk.signature import SignatureVerifier

    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None  # None only without a signing secret
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }


def slash_command(
    text: str,
    *,
    user_id: str = "UBENCH",
    user_name: str = "bench",
    channel_id: str = "CBENCH",
    response_url: str = "https://hooks.slack.com/commands/TBENCH/1/x",
) -> Request:
    from urllib.parse import urlencode

    body = urlencode(
        {
            "token": "x",
            "team_id": "TBENCH",
            "team_domain": "bench",
            "channel_id": channel_id,
            "channel_name": "general",
            "user_id": user_id,
            "user_name": user_name,
            "command": "/persona",
            "text": text,
            "api_app_id": "ABENCH",
            "response_url": response_url,
            "trigger_id": "1.2.3",
        }
    ).encode()
    headers = slack_headers(body, "application/x-www-form-urlencoded")
    return Request("POST", "/slack/events", headers, body)


def bolt_target() -> Target:
    return Target(
        name="bolt",
        title="slack-bolt AsyncApp acking a constant",
        start=lambda port, tmp: [
            python_server("bench/servers/bolt_floor.py", str(port), SIGNING_SECRET)
        ],
        request=lambda: slash_command("fiona"),
        check=lambda status, body: None if status == 200 and b"ok" in body else f"{status}",
        health_path="/slack/events",
    )


BOT_TOKEN = "xoxb-bench-token"
BENCH_TEAM = "TBENCH"


def serve(port: int, tmp: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``persona-bot serve`` on 127.0.0.1 with its own SQLite database in ``tmp``."""
    return python_server(
        "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
        env={"PERSONA_BOT_DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}", **env},
        log=tmp / "serve.log",
    )  # fmt: skip


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read())


def card_problem(blocks: object, name: str) -> str | None:
    """None when ``blocks`` (Block Kit) start with a header naming ``name``."""
    if not isinstance(blocks, list) or not blocks:
        return "no blocks"
    header = blocks[0]
    text = (header.get("text") or {}).get("text") if isinstance(header, dict) else None
    if header.get("type") != "header" or text != name:
        return f"the first block is not the header {name!r}: {str(header)[:200]}"
    return None


def slack_target() -> Target:
    """A signed ``/persona fiona`` through ``persona-bot serve`` against a fake Web API."""
    api_port = free_port()

    def start(port: int, tmp: Path) -> list[subprocess.Popen[bytes]]:
        fake = python_server(
            "bench/servers/fake_slack.py", str(api_port), BOT_TOKEN, BENCH_TEAM,
            cpu=LOAD_CPU, log=tmp / "fake_slack.log",
        )  # fmt: skip
        wait_http(f"http://127.0.0.1:{api_port}/calls")
        env = {
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": f"http://127.0.0.1:{api_port}/api/",
            # The load sends one signed request over and over: a replay, refused by default.
            "PERSONA_BOT_SLACK_REPLAY_CHECK": "off",
        }
        return [serve(port, tmp, env), fake]

    def check(status: int, body: bytes) -> str | None:
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        try:
            message = json.loads(body)
        except ValueError:
            return f"not JSON: {body[:200]!r}"
        problem = card_problem(message.get("blocks"), "Finance Fiona")
        if problem:
            return problem
        calls = get_json(f"http://127.0.0.1:{api_port}/calls")
        if not isinstance(calls, dict) or calls.get("response_url"):
            return f"the answer went through response_url, not the ack: {calls}"
        return None

    return Target(
        name="slack",
        title="signed /persona fiona through persona-bot serve",
        start=start,
        request=lambda: slash_command("fiona"),
        check=check,
    )


TEAMS_ACTIVITY = {
    "type": "message",
    "id": "bench-activity-1",
    "timestamp": "2026-11-02T09:57:50.123Z",
    "channelId": "emulator",
    "from": {"id": "bench-user-1", "name": "Bench Seller", "role": "user"},
    "conversation": {"id": "bench-conversation-1"},
    "recipient": {"id": "bench-bot", "name": "persona-bot", "role": "bot"},
    "text": "fiona",
    "textFormat": "plain",
    "locale": "en-US",
}
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def teams_target() -> Target:
    """A Teams message through ``/api/messages`` (Emulator mode), the card to a fake
    Bot Connector."""
    connector_port = free_port()
    connector = f"http://127.0.0.1:{connector_port}"

    def start(port: int, tmp: Path) -> list[subprocess.Popen[bytes]]:
        fake = python_server(
            "bench/servers/fake_connector.py", str(connector_port),
            cpu=LOAD_CPU, log=tmp / "fake_connector.log",
        )  # fmt: skip
        wait_http(f"{connector}/last")
        env = {"PERSONA_BOT_TEAMS_ALLOWED_SERVICE_URLS": connector + "/"}
        return [serve(port, tmp, env), fake]

    def request() -> Request:
        body = json.dumps({**TEAMS_ACTIVITY, "serviceUrl": connector + "/"}).encode()
        return Request("POST", "/api/messages", {"Content-Type": "application/json"}, body)

    def check(status: int, body: bytes) -> str | None:
        if status not in (200, 201):
            return f"HTTP {status}: {body[:200]!r}"
        seen = get_json(f"{connector}/last")
        last = seen.get("last") if isinstance(seen, dict) else None
        if not isinstance(last, dict):
            return f"no reply reached the connector: {seen}"
        cards = [
            a.get("content")
            for a in last.get("attachments") or []
            if a.get("contentType") == ADAPTIVE_CARD
        ]
        if not cards or "Finance Fiona" not in json.dumps(cards[0]):
            return f"the reply is not Finance Fiona's Adaptive Card: {str(last)[:300]}"
        return None

    return Target(
        name="teams",
        title="Teams message -> Adaptive Card through /api/messages",
        start=start,
        request=request,
        check=check,
    )


TARGETS: dict[str, Callable[[], Target]] = {
    "bare": bare_target,
    "bolt": bolt_target,
    "slack": slack_target,
    "teams": teams_target,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds timed per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before timing")
    parser.add_argument("--rounds", type=int, default=3, help="0: only --profile")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", default=",".join(TARGETS), help="comma-separated targets")
    parser.add_argument("--builtin", action="store_true", help="use the aiohttp client, not wrk")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="after the rounds, run each target once more under py-spy; write the collapsed "
        "stacks to DIR and print each one's top costs",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown targets: {', '.join(unknown)} (known: {', '.join(TARGETS)})")
    generator = "wrk" if shutil.which("wrk") and not args.builtin else "aiohttp client"
    pinned = "pinned to CPU 0" if SERVER_CPU in cpus() and LOAD_CPU in cpus() else "not pinned"
    print(
        f"load: {generator}, {args.connections} connections, {args.duration:.0f} s "
        f"(+{args.warmup:.0f} s warm-up) x {args.rounds} rounds; server {pinned}",
        file=sys.stderr,
    )
    results: dict[str, list[Result]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmpdir:
        for round_no in range(1, args.rounds + 1):
            for name in names:
                target = TARGETS[name]()
                work = Path(tmpdir) / f"{name}-{round_no}"
                work.mkdir()
                result = measure(target, args, work)
                results[name].append(result)
                print(
                    f"  round {round_no} {name:>6}: {result.rps:9.0f} req/s  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                    f"errors {result.errors}",
                    file=sys.stderr,
                )
        summaries = []
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            for name in names:
                work = Path(tmpdir) / f"{name}-profile"
                work.mkdir()
                stacks = args.profile / f"{name}.txt"
                result = measure(TARGETS[name](), args, work, profile=stacks)
                print(
                    f"  profiled {name:>6}: {result.rps:9.0f} req/s under py-spy",
                    file=sys.stderr,
                )
                summaries.append(summarize_profile(stacks))
    medians = {
        name: Result(
            rps=statistics.median(r.rps for r in rs),
            p50_ms=statistics.median(r.p50_ms for r in rs),
            p99_ms=statistics.median(r.p99_ms for r in rs),
            cpu_ms_per_req=statistics.median(r.cpu_ms_per_req for r in rs),
            errors=sum(r.errors for r in rs),
        )
        for name, rs in results.items()
        if rs
    }
    if medians:
        report(medians, args.json)
    for summary in summaries:
        print(summary)
    return 0


def report(medians: dict[str, Result], as_json: bool) -> None:
    bare = medians.get("bare")
    bolt = medians.get("bolt")
    rows = []
    for name, r in medians.items():
        rows.append(
            {
                "target": name,
                "title": TARGETS[name]().title,
                "rps": round(r.rps, 1),
                "p50_ms": round(r.p50_ms, 2),
                "p99_ms": round(r.p99_ms, 2),
                "cpu_ms_per_req": round(r.cpu_ms_per_req, 3),
                "errors": r.errors,
                "vs_bare": round(r.rps / bare.rps, 4) if bare else None,
                "vs_bolt": round(r.rps / bolt.rps, 4) if bolt else None,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    header = (
        f"{'target':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>10} "
        f"{'errors':>6} {'vs bare':>8} {'vs Bolt':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        vs_bare = f"{row['vs_bare']:.1%}" if row["vs_bare"] is not None else "-"
        vs_bolt = f"{row['vs_bolt']:.1%}" if row["vs_bolt"] is not None else "-"
        print(
            f"{row['target']:<8} {row['rps']:>9.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['cpu_ms_per_req']:>10.3f} {row['errors']:>6} {vs_bare:>8} {vs_bolt:>8}"
        )


if __name__ == "__main__":
    sys.exit(main())
