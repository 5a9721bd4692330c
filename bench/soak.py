"""Soak benchmark: a sales floor's traffic for minutes on end, watching the server's memory.

    python bench/soak.py [--minutes 10] [--rate 20] [--concurrency 8] [--sample-every 10]
                         [--db URL] [--json] [--memory-log DIR] [--tracemalloc DIR]

It starts a real ``persona-bot serve`` on 127.0.0.1 (SQLite in a temporary folder, or a
fresh schema of the PostgreSQL database ``--db`` names, dropped afterwards), with Slack's
single-workspace credentials pointed at the load benchmark's fake Web API and Teams in
Emulator mode pointed at its fake Bot Connector (``bench/servers/``), and the scheduler
ticking every second. The database starts as a bot in use has it: four personas and
``--history`` usage events of the last 90 days. A bounded number of clients then send
mixed traffic at a steady, moderate rate: signed slash commands (lookups, typos and misses
included, fits with deal notes, stats as an admin, list, help, history), clicks on the
buttons of the answers (thumbs up, thumbs down with its comment form, share, "This one
fits", mark reviewed), Teams messages and Teams card submissions. Personas fall due for
review throughout the run, so the scheduler keeps queueing nudges and escalations (and this
week's digests, once), delivering them to both fakes, where the soak presses "Still
accurate" as their owner would.

Every answer is checked: HTTP status, then the content of its kind (the persona's card, the
fit card, the thanks for a rating, the modal a thumbs down opens, ...), including answers
that arrive later through ``response_url`` or at the fake Bot Connector; every nudge,
escalation, digest and alert that fell due must be queued, and every one sent must arrive
exactly once. At the end the server's own counters (commands that failed) and its log
(errors, tracebacks) count too.

Meanwhile the server's resident memory (VmRSS of it and any children), open file
descriptors and database size are sampled. The report: a table over time, requests and
errors by kind, and a verdict. After the warm-up (the first 20% of the run, at most two
minutes) memory is judged by least-squares lines through the samples: the slope in MB per
minute over the whole measured part, and the growth over its second half. Memory is
flat when the second half grows by less than ``FLAT_MB`` (see there for why). The exit
code is 1 on any error or memory that is not flat.

To find what grows: ``--memory-log DIR`` writes, at every sample, where the server's memory
is (Python's objects and arenas, SQLite, the C heap in use and free) to DIR/memory.txt;
``--tracemalloc DIR`` also traces Python's allocations and writes the sites that grew most
between the end of the warm-up and the end of the run (slow: use ``--rate 5``). Both run the
server under ``bench/servers/traced_serve.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the bench and bot packages importable
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import yaml  # noqa: E402

from adapters.slack.texts import WORKING  # noqa: E402
from bench import load  # noqa: E402
from bench.servers.fake_slack import USER_EMAIL, USER_ID  # noqa: E402

DATA = ROOT / "tests" / "data"
PERSONAS = DATA / "personas_dev.yaml"  # four personas of an observability company
DEALS = DATA / "deals_dev.yaml"  # real-looking deal notes written for them

# Memory is flat when the line through the second half of the measured samples rises by less
# than this. A settled server still moves a few MB without leaking: SQLite's statement caches
# (up to 128 prepared statements on each of five pooled connections) fill as new statements
# come up, and the C heap's free lists shift; second halves of ten-minute runs whose Python
# objects stayed level rose by +1 MB (PostgreSQL) to +3.4 MB (SQLite). A leak of 1.5 KB per
# request at the default 20 requests a second (1.8 MB a minute, 7 MB over the four minutes of
# the second half) fails; a leak much below 1 KB per request needs a longer run to show.
FLAT_MB = 5.0
MIN_JUDGED = 60.0  # seconds after the warm-up below which memory is not judged at all
TICK_SECONDS = 1.0
TRACE_FRAMES = 12
HISTORY = 100_000
ANSWER_TIMEOUT = 10.0  # for answers that arrive later (response_url, the fake connector)
DELIVERY_GRACE = 30.0  # after the traffic, for the last nudges to arrive

ADMIN = USER_ID  # the admin, and the Slack user that owns USER_EMAIL
SELLERS = ("U0SOAK01", "U0SOAK02", "U0SOAK03", "U0SOAK04", "U0SOAK05")
SLACK_USERS = (ADMIN, *SELLERS)
SLACK_OWNERS = ("U0OWNER01", "U0OWNER02")
TEAMS_USERS = tuple(f"soak-teams-{i}" for i in range(1, 7))
NOBODY = "nobody@soak.example"  # an owner no platform knows: the admins get an alert
CHANNEL = "CBENCH"

# (query, the persona it must find, or None when it must find none)
LOOKUPS: tuple[tuple[str, str | None], ...] = (
    ("Platform Priya", "platform-priya"),
    ("priya", "platform-priya"),
    ("platfrom priya", "platform-priya"),
    ("plaform pria", "platform-priya"),
    ("omar", "oncall-omar"),
    ("oncall omr", "oncall-omar"),
    ("on-cal omar", "oncall-omar"),
    ("carla", "compliance-carla"),
    ("complience carla", "compliance-carla"),
    ("compliance karla", "compliance-carla"),
    ("sam", "startup-sam"),
    ("strtup sam", "startup-sam"),
    ("startup sma", "startup-sam"),
    ("pirate pete", None),
    ("quantum banker", None),
)

# The traffic mix: relative weights of what one request of the steady stream is.
MIX: dict[str, int] = {
    "slack_lookup": 18,
    "slack_fit": 10,
    "slack_stats": 3,
    "slack_list": 3,
    "slack_help": 2,
    "slack_history": 3,
    "slack_rate_up": 5,
    "slack_rate_down": 3,  # and its comment form (slack_feedback)
    "slack_share": 4,
    "slack_confirm": 4,
    "slack_review": 2,
    "teams_lookup": 12,
    "teams_fit": 8,
    "teams_rate": 5,
    "teams_confirm": 3,
    "teams_review": 1,
}
# Requests that follow from others: the comment form after a thumbs down, and the owners
# pressing "Still accurate" (or an admin "Mark reviewed") on what the scheduler delivered.
FOLLOW_UPS = ("slack_feedback", "slack_nudge_review", "teams_nudge_review")
KINDS = (*MIX, *FOLLOW_UPS)

NUDGE = re.compile(r"^Time to review (?P<name>.+)$")
ESCALATION = re.compile(r"^(?P<name>.+) is \d+ days overdue for review$")
ALERT = re.compile(r"^The review nudge for (?P<name>.+) could not be delivered$")
DIGEST = re.compile(r"^Persona digest")


class Problem(Exception):
    """An answer that is not what its kind of request must get."""


# the database --------------------------------------------------------------------------


@dataclass
class Database:
    """Where the server keeps its data: a temporary SQLite file, or a PostgreSQL schema of
    its own (created here, dropped by ``close``)."""

    url: str
    label: str
    sqlite_path: Path | None = None
    admin_url: str | None = None
    schema: str | None = None

    @classmethod
    def create(cls, db: str | None, tmp: Path) -> Database:
        if not db or db.startswith("sqlite"):
            path = tmp / "soak.db"
            if db:
                from sqlalchemy.engine import make_url

                path = Path(make_url(db).database or path)
            return cls(f"sqlite:///{path}", "SQLite", sqlite_path=path)
        from sqlalchemy import create_engine, text

        schema = f"soak_{uuid.uuid4().hex[:12]}"
        engine = create_engine(db, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        finally:
            engine.dispose()
        separator = "&" if "?" in db else "?"
        url = f"{db}{separator}options={quote(f'-csearch_path={schema}')}"
        return cls(url, f"PostgreSQL (schema {schema})", admin_url=db, schema=schema)

    def size_bytes(self) -> int:
        if self.sqlite_path is not None:
            files = [Path(f"{self.sqlite_path}{suffix}") for suffix in ("", "-wal", "-shm")]
            return sum(f.stat().st_size for f in files if f.exists())
        from sqlalchemy import create_engine, text

        assert self.admin_url is not None
        engine = create_engine(self.admin_url)
        try:
            with engine.connect() as conn:
                size = conn.execute(
                    text(
                        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = :schema AND c.relkind IN ('r', 'm')"
                    ),
                    {"schema": self.schema},
                ).scalar_one()
        finally:
            engine.dispose()
        return int(size)

    def close(self) -> None:
        if self.schema is None or self.admin_url is None:
            return
        from sqlalchemy import create_engine, text

        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        finally:
            engine.dispose()


# what the soak loads ---------------------------------------------------------------------


@dataclass(frozen=True)
class Scheduled:
    """A persona that falls due for review during the run, and what that must deliver."""

    key: str
    name: str
    owner: str
    due_at: datetime  # its nudge (or, for NOBODY, the admins' alert) is due from here
    escalate_at: datetime | None = None  # when its 14-days-overdue escalation is due

    @property
    def late(self) -> bool:
        return self.escalate_at is not None


def plan_reviews(now: datetime, seconds: float, every: float) -> list[Scheduled]:
    """Personas due at once (one per kind of owner, one whose escalation is due too), then
    one more every ``every`` seconds until shortly before the end; every fourth of those has
    had its nudge long ago and now reaches 14 days overdue (an escalation to the admins)."""
    day, fortnight = timedelta(days=1), timedelta(days=14)
    plan = [
        Scheduled("due-slack-id", "Due Slack Id", SLACK_OWNERS[0], now - day),
        Scheduled("due-slack-email", "Due Slack Email", USER_EMAIL, now - day),
        Scheduled("due-teams", "Due Teams", TEAMS_USERS[0], now - day),
        Scheduled("due-nobody", "Due Nobody", NOBODY, now - day),
        Scheduled("late-000", "Late 000", SLACK_OWNERS[1], now - fortnight - day, now - day),
    ]
    owners = (SLACK_OWNERS[0], USER_EMAIL, TEAMS_USERS[1], SLACK_OWNERS[1], TEAMS_USERS[2])
    count = int(max(0.0, seconds - 3 * TICK_SECONDS - 2) // every)
    for i in range(1, count + 1):
        at = now + timedelta(seconds=i * every)
        owner = owners[i % len(owners)]
        if i % 4 == 0:
            plan.append(Scheduled(f"late-{i:03d}", f"Late {i:03d}", owner, at - fortnight, at))
        else:
            plan.append(Scheduled(f"due-{i:03d}", f"Due {i:03d}", owner, at))
    return plan


def seed_catalog(url: str, now: datetime, history: int, seed: int) -> dict[str, str]:
    """The dev personas (owned by USER_EMAIL, so that the soak's people may review them) in a
    fresh database whose organization is 100 days old (so this week's digest is due), with
    ``history`` usage events spread over the last 90 days: the database of a bot in use."""
    from sqlalchemy import insert, update

    from bot.runtime import Runtime
    from bot.settings import Settings
    from persona_store.models import Organization, UsageEvent
    from persona_store.schema import load_persona_file
    from persona_store.summary import to_ms

    specs = [replace(spec, owner=USER_EMAIL) for spec in load_persona_file(PERSONAS)]
    runtime = Runtime.open(Settings.from_env({}, database_url=url), seed=False)
    try:
        org = runtime.default_org_id
        runtime.store.import_personas(org, specs, "soak (dev personas)")
        with runtime.engine.begin() as conn:
            conn.execute(
                update(Organization)
                .where(Organization.id == org)
                .values(created_at=now - timedelta(days=100))
            )
        ids = [p.id for p in runtime.store.list_personas(org)]
        rng = random.Random(seed)
        commands = ["lookup"] * 14 + ["fit"] * 4 + ["list", "stats", "feedback", "confirm"]
        end = to_ms(now)
        start = end - 90 * 86_400_000
        people = [f"U0HIST{i:03d}" for i in range(60)]

        def event() -> dict[str, Any]:
            command = rng.choice(commands)
            persona = rng.choice(ids) if command != "list" and rng.random() < 0.85 else None
            query = rng.choice(LOOKUPS)[0] if command in ("lookup", "fit") else None
            return {
                "org_id": org,
                "ts": rng.randrange(start, end),
                "platform": rng.choice(("slack", "slack", "teams")),
                "user_id": rng.choice(people),
                "channel": f"C0HIST{rng.randrange(12)}",
                "command": command,
                "persona_id": persona,
                "query": query,
                "matched": persona is not None,
                "score": rng.random() * 100,
                "latency_ms": rng.random() * 20,
            }

        for done in range(0, history, 5000):
            with runtime.engine.begin() as conn:
                conn.execute(
                    insert(UsageEvent), [event() for _ in range(min(5000, history - done))]
                )
    finally:
        runtime.close()
    return {spec.key: spec.name for spec in specs}


def seed_reviews(url: str, plan: list[Scheduled]) -> None:
    """Load the planned personas as if each had last been reviewed 90 days before it falls
    due: what an operator's import of an old persona file would look like."""
    from bot.runtime import Runtime
    from bot.settings import Settings
    from persona_store.records import Firmographic, IntRange, PersonaSpec

    runtime = Runtime.open(
        Settings.from_env({}, database_url=url), run_migrations=False, seed=False
    )
    try:
        for item in plan:
            spec = PersonaSpec(
                key=item.key,
                name=item.name,
                role="Buyer whose profile is due for its quarterly review",
                summary="Runs fleet maintenance for a regional logistics firm.",
                owner=item.owner,
                review_every_days=90,
                firmographic=Firmographic(industries=("Logistics",), employees=IntRange(20, 80)),
            )
            runtime.store.import_personas(
                runtime.default_org_id,
                [spec],
                "soak (reviews)",
                now=item.due_at - timedelta(days=90),
            )
    finally:
        runtime.close()


def deal_notes() -> list[str]:
    deals = yaml.safe_load(DEALS.read_text())["deals"]
    return [str(deal["text"]) for deal in deals]


# the server process ----------------------------------------------------------------------


def processes(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


@dataclass
class Sample:
    t: float  # seconds since the traffic started
    warmup: bool
    rss_mb: float
    fds: int
    db_mb: float
    requests: int
    errors: int


def take_sample(pid: int, t: float, warmup: bool, db: Database, done: int, bad: int) -> Sample:
    pids = processes(pid)
    return Sample(
        t=t,
        warmup=warmup,
        rss_mb=sum(rss_kb(p) for p in pids) / 1024,
        fds=sum(fd_count(p) for p in pids),
        db_mb=db.size_bytes() / 1e6,
        requests=done,
        errors=bad,
    )


# the traffic -----------------------------------------------------------------------------


@dataclass
class KindStats:
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the first few, for the report


def header(blocks: object) -> str | None:
    """The text of a Block Kit message's first block, when it is a header."""
    if isinstance(blocks, list) and blocks and isinstance(blocks[0], dict):
        first = blocks[0]
        if first.get("type") == "header":
            return str((first.get("text") or {}).get("text", ""))
    return None


def slack_buttons(blocks: object) -> list[dict[str, Any]]:
    elements: list[dict[str, Any]] = []
    for block in blocks if isinstance(blocks, list) else []:
        if isinstance(block, dict) and block.get("type") == "actions":
            elements.extend(e for e in block.get("elements", []) if isinstance(e, dict))
    return elements


def verb_of(element: dict[str, Any]) -> str:
    """``pb:rate:0`` -> ``rate``; the adapter's own actions (``pbx:share``) keep their name."""
    action = str(element.get("action_id", ""))
    return action.split(":")[1] if action.count(":") == 2 else action


def teams_actions(node: object) -> Iterator[dict[str, Any]]:
    """The data of every Action.Submit in an Adaptive Card (inside show-cards too)."""
    if isinstance(node, dict):
        if node.get("type") == "Action.Submit" and isinstance(node.get("data"), dict):
            yield node["data"]
        for value in node.values():
            yield from teams_actions(value)
    elif isinstance(node, list):
        for value in node:
            yield from teams_actions(value)


class Soak:
    """The clients, the checks and the tallies of one run."""

    def __init__(
        self,
        server: str,
        slack_api: str,
        connector: str,
        names: dict[str, str],
        plan: list[Scheduled],
        rng: random.Random,
    ) -> None:
        self.server = server
        self.slack_api = slack_api
        self.connector = connector
        self.names = names  # the dev personas: key -> name
        self.plan = {item.name: item for item in plan}
        self.rng = rng
        self.notes = deal_notes()
        self.stats: dict[str, KindStats] = {kind: KindStats() for kind in KINDS}
        self.ids = itertools.count(1)
        self.session: aiohttp.ClientSession | None = None
        self.slack_cards: dict[str, list[dict[str, Any]]] = {}  # persona key -> its buttons
        self.slack_fits: deque[dict[str, Any]] = deque(maxlen=32)  # "This one fits" buttons
        self.teams_cards: dict[str, list[dict[str, Any]]] = {}
        self.teams_fits: deque[dict[str, Any]] = deque(maxlen=32)
        self.delivered: Counter[tuple[str, str]] = Counter()  # (kind, name) -> times
        self.delivered_via: Counter[str] = Counter()
        self.other_deliveries: list[str] = []
        self.slow_acks = 0
        self.skipped = 0  # requests the pacer could not start: every client was busy
        self.follow_ups: set[asyncio.Task[None]] = set()
        self.abort = asyncio.Event()  # the server died: stop sending

    # bookkeeping ---------------------------------------------------------------------

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.stats.values())

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.stats.values())

    def fail(self, kind: str, problem: str) -> None:
        stats = self.stats.setdefault(kind, KindStats())
        stats.errors += 1
        if len(stats.problems) < 5:
            stats.problems.append(problem[:300])

    async def measure(self, kind: str, work: Awaitable[None]) -> None:
        stats = self.stats[kind]
        stats.requests += 1
        started = time.perf_counter()
        try:
            await work
        except Problem as exc:
            self.fail(kind, str(exc))
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
            self.fail(kind, f"{type(exc).__name__}: {exc}")
        stats.latencies.append(time.perf_counter() - started)

    # HTTP ----------------------------------------------------------------------------

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        assert self.session is not None
        async with self.session.post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.read()

    async def get_json(self, url: str) -> Any:
        assert self.session is not None
        async with self.session.get(url) as resp:
            if resp.status != 200:
                raise Problem(f"GET {url}: HTTP {resp.status}")
            return await resp.json()

    async def get_text(self, url: str) -> str:
        assert self.session is not None
        async with self.session.get(url) as resp:
            return await resp.text()

    async def take(self, base: str, box: str, key: str) -> list[Any]:
        """What the bot sent under ``key`` to a fake, waiting for it up to ANSWER_TIMEOUT."""
        found = await self.get_json(f"{base}/take/{box}/{key}?timeout={ANSWER_TIMEOUT}")
        return found if isinstance(found, list) else []

    # Slack ---------------------------------------------------------------------------

    def response_url(self, key: str) -> str:
        return f"{self.slack_api.removesuffix('/api')}/response/{key}"

    async def slash(self, text: str, user: str) -> dict[str, Any]:
        """``/persona TEXT`` as ``user``; the answer (from the ack, or from response_url when
        the ack said it is working on it)."""
        key = f"slash-{next(self.ids)}"
        request = load.slash_command(
            text, user_id=user, user_name=user.lower(), response_url=self.response_url(key)
        )
        status, body = await self.post(self.server + request.path, request.body, request.headers)
        if status != 200:
            raise Problem(f"/persona {text}: HTTP {status}: {body[:200]!r}")
        try:
            message = json.loads(body)
        except ValueError:
            raise Problem(f"/persona {text}: the ack is not JSON: {body[:200]!r}") from None
        if message.get("text") == WORKING:
            self.slow_acks += 1
            later = await self.take(self.slack_api_root, "response", key)
            if not later:
                raise Problem(f"/persona {text}: 'working on it', then nothing")
            message = later[-1]
        if not isinstance(message, dict):
            raise Problem(f"/persona {text}: the answer is not a message: {message!r}"[:300])
        return message

    @property
    def slack_api_root(self) -> str:
        return self.slack_api.removesuffix("/api")

    def _payload(self, user: str, channel: str, trigger: str, key: str) -> dict[str, Any]:
        return {
            "user": {
                "id": user,
                "username": user.lower(),
                "name": user.lower(),
                "team_id": "TBENCH",
            },
            "api_app_id": "ABENCH",
            "token": "x",
            "trigger_id": trigger,
            "team": {"id": "TBENCH", "domain": "bench"},
            "enterprise": None,
            "is_enterprise_install": False,
            "response_url": self.response_url(key),
            "channel": {"id": channel, "name": "general" if channel == CHANNEL else "dm"},
        }

    async def slack_interaction(self, payload: dict[str, Any]) -> bytes:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        headers = load.slack_headers(body, "application/x-www-form-urlencoded")
        status, answer = await self.post(self.server + "/slack/events", body, headers)
        if status != 200:
            raise Problem(f"{payload['type']}: HTTP {status}: {answer[:200]!r}")
        return answer

    async def click(
        self, user: str, element: dict[str, Any], *, channel: str = CHANNEL
    ) -> tuple[str, str]:
        """Press a button of a message; the keys its answers arrive under (response_url,
        trigger id)."""
        n = next(self.ids)
        key, trigger = f"click-{n}", f"{n}.{n}.soak"
        payload = {
            "type": "block_actions",
            **self._payload(user, channel, trigger, key),
            "container": {
                "type": "message",
                "message_ts": f"1700000000.{n:06d}",
                "channel_id": channel,
                "is_ephemeral": channel == CHANNEL,
            },
            "state": {"values": {}},
            "actions": [
                {
                    "action_id": element["action_id"],
                    "block_id": "soak",
                    "text": element.get("text") or {"type": "plain_text", "text": "?"},
                    "value": element.get("value", ""),
                    "type": "button",
                    "action_ts": f"1700000000.{n:06d}",
                }
            ],
        }
        answer = await self.slack_interaction(payload)
        if answer.strip():
            raise Problem(f"a click must be acked with an empty body, not {answer[:200]!r}")
        return key, trigger

    async def click_answer(
        self, user: str, element: dict[str, Any], *, channel: str = CHANNEL
    ) -> dict[str, Any]:
        key, _ = await self.click(user, element, channel=channel)
        answers = await self.take(self.slack_api_root, "response", key)
        if not answers:
            raise Problem(
                f"no answer to the click on {element.get('action_id')} within {ANSWER_TIMEOUT:g} s"
            )
        answer = answers[-1]
        if not isinstance(answer, dict):
            raise Problem(f"the answer to a click is not a message: {answer!r}"[:300])
        return answer

    def slack_user(self) -> str:
        return self.rng.choice(SLACK_USERS)

    def card_check(self, message: dict[str, Any], key: str) -> None:
        name = self.names[key]
        if header(message.get("blocks")) != name:
            raise Problem(f"expected {name}'s card, got {str(message)[:200]}")

    async def slack_lookup_once(self, query: str, expected: str | None, user: str) -> None:
        message = await self.slash(query, user)
        if expected is None:
            if "No persona matches" not in str(message.get("text")):
                raise Problem(f"/persona {query}: expected no match, got {str(message)[:200]}")
            return
        self.card_check(message, expected)
        self.slack_cards[expected] = slack_buttons(message.get("blocks"))

    async def slack_lookup(self) -> None:
        query, expected = self.rng.choice(LOOKUPS)
        await self.measure(
            "slack_lookup", self.slack_lookup_once(query, expected, self.slack_user())
        )

    async def slack_card(self, verb: str, suffix: str = "") -> tuple[str, dict[str, Any]]:
        """A button of a persona card seen before (looking one up first when none was)."""
        keys = [
            key
            for key, buttons in self.slack_cards.items()
            if any(verb_of(b) == verb and str(b.get("value", "")).endswith(suffix) for b in buttons)
        ]
        if not keys:
            key = self.rng.choice(sorted(self.names))
            await self.measure(
                "slack_lookup", self.slack_lookup_once(self.names[key], key, self.slack_user())
            )
            keys = [key] if key in self.slack_cards else []
        if not keys:
            raise Problem(f"no persona card with a {verb} button")
        key = self.rng.choice(keys)
        for button in self.slack_cards[key]:
            if verb_of(button) == verb and str(button.get("value", "")).endswith(suffix):
                return key, button
        raise Problem(f"{key}'s card has no {verb} button")

    async def slack_fit_once(self, note: str | None = None) -> None:
        note = note or self.rng.choice(self.notes)
        deal = f"S-{next(self.ids)}" if self.rng.random() < 0.5 else None
        text = f"fit {deal}: {note}" if deal else f"fit {note}"
        message = await self.slash(text, self.slack_user())
        if header(message.get("blocks")) != "Which persona fits this deal?":
            raise Problem(f"expected the fit card, got {str(message)[:200]}")
        for button in slack_buttons(message.get("blocks")):
            if verb_of(button) == "confirm":
                self.slack_fits.append(button)

    async def slack_fit(self) -> None:
        await self.measure("slack_fit", self.slack_fit_once())

    async def slack_stats(self) -> None:
        async def run() -> None:
            days = self.rng.choice(("", " 7", " 30"))
            message = await self.slash(f"stats{days}", ADMIN)
            if not str(header(message.get("blocks"))).startswith("Persona usage, last"):
                raise Problem(f"expected the usage summary, got {str(message)[:200]}")

        await self.measure("slack_stats", run())

    async def slack_list(self) -> None:
        async def run() -> None:
            message = await self.slash("list", self.slack_user())
            if not re.fullmatch(r"\d+ personas?", str(header(message.get("blocks")))):
                raise Problem(f"expected the persona list, got {str(message)[:200]}")

        await self.measure("slack_list", run())

    async def slack_help(self) -> None:
        async def run() -> None:
            message = await self.slash("help", self.slack_user())
            if header(message.get("blocks")) != "persona-bot":
                raise Problem(f"expected the help, got {str(message)[:200]}")

        await self.measure("slack_help", run())

    async def slack_history(self) -> None:
        async def run() -> None:
            key = self.rng.choice(sorted(self.names))
            message = await self.slash(f"history {key}", self.slack_user())
            if header(message.get("blocks")) != f"History of {self.names[key]}":
                raise Problem(f"expected {key}'s history, got {str(message)[:200]}")

        await self.measure("slack_history", run())

    async def slack_rate_up(self) -> None:
        key, button = await self.slack_card("rate", " up")

        async def run() -> None:
            answer = await self.click_answer(self.slack_user(), button)
            expected = f"Thanks for rating {self.names[key]}: glad it helped"
            if expected not in str(answer.get("text")):
                raise Problem(f"expected {expected!r}, got {str(answer)[:200]}")

        await self.measure("slack_rate_up", run())

    async def slack_rate_down(self) -> None:
        key, button = await self.slack_card("rate", " down")
        user = self.slack_user()
        opened: list[dict[str, Any]] = []

        async def run() -> None:
            _, trigger = await self.click(user, button)
            views = await self.take(self.slack_api_root, "view", trigger)
            view = views[-1] if views else None
            if not isinstance(view, dict) or view.get("callback_id") != "pb_feedback":
                raise Problem(f"a thumbs down must open the comment form, got {views!r}"[:300])
            opened.append(view)

        await self.measure("slack_rate_down", run())
        if opened:
            await self.measure("slack_feedback", self.slack_feedback_once(user, key, opened[0]))

    async def slack_feedback_once(self, user: str, key: str, view: dict[str, Any]) -> None:
        n = next(self.ids)
        comment = f"The objections need an update ({n})"
        payload = {
            "type": "view_submission",
            **self._payload(user, CHANNEL, f"{n}.{n}.soak", f"view-{n}"),
            "view": {
                "id": f"V{n}",
                "team_id": "TBENCH",
                "type": "modal",
                "blocks": view.get("blocks", []),
                "private_metadata": view.get("private_metadata", ""),
                "callback_id": view.get("callback_id"),
                "state": {
                    "values": {
                        "comment": {"comment": {"type": "plain_text_input", "value": comment}}
                    }
                },
                "hash": f"{n}.soak",
                "title": view.get("title"),
                "root_view_id": f"V{n}",
                "app_id": "ABENCH",
                "bot_id": "BBOT",
            },
            "response_urls": [],
        }
        del payload["response_url"], payload["channel"]
        answer = await self.slack_interaction(payload)
        expected = f"Your feedback on {self.names[key]} was passed to its owner"
        if expected not in answer.decode("utf-8", "replace"):
            raise Problem(f"expected {expected!r} in the updated form, got {answer[:300]!r}")

    async def slack_share(self) -> None:
        key, button = await self.slack_card("pbx:share")

        async def run() -> None:
            answer = await self.click_answer(self.slack_user(), button)
            if answer.get("response_type") != "in_channel":
                raise Problem(f"a shared card must be visible in the channel: {str(answer)[:200]}")
            self.card_check(answer, key)

        await self.measure("slack_share", run())

    async def slack_confirm(self) -> None:
        if not self.slack_fits:  # a fit of the clearest deal note first
            await self.measure("slack_fit", self.slack_fit_once(self.notes[0]))
        if not self.slack_fits:
            raise Problem("no 'This one fits' button after a fit of a clear deal")

        async def run() -> None:
            button = self.rng.choice(self.slack_fits)
            deal, _, key = str(button.get("value", "")).partition(" ")
            answer = await self.click_answer(self.slack_user(), button)
            name = self.names.get(key) or key
            expected = f"Noted: {name} fits" + (f" deal {deal}" if deal != "-" else "")
            if expected not in str(answer.get("text")):
                raise Problem(f"expected {expected!r}, got {str(answer)[:200]}")

        await self.measure("slack_confirm", run())

    async def slack_review(self) -> None:
        key, button = await self.slack_card("review")

        async def run() -> None:
            answer = await self.click_answer(ADMIN, button)
            expected = f"{self.names[key]} is marked reviewed"
            if expected not in str(answer.get("text")):
                raise Problem(f"expected {expected!r}, got {str(answer)[:200]}")

        await self.measure("slack_review", run())

    # Teams ---------------------------------------------------------------------------

    async def teams_turn(
        self, user: int, *, text: str | None = None, value: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One activity from Teams user ``user`` in their personal chat; the bot's reply as
        it reached the fake Bot Connector."""
        activity_id = f"soak-{next(self.ids)}"
        activity: dict[str, Any] = {
            **load.TEAMS_ACTIVITY,
            "id": activity_id,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "from": {"id": TEAMS_USERS[user], "name": f"Soak Seller {user}", "role": "user"},
            "conversation": {"id": f"soak-conversation-{user}", "conversationType": "personal"},
            "serviceUrl": self.connector + "/",
        }
        if value is not None:
            activity.pop("text", None)
            activity["value"] = value
        else:
            activity["text"] = text
        body = json.dumps(activity).encode()
        status, answer = await self.post(
            self.server + "/api/messages", body, {"Content-Type": "application/json"}
        )
        if status not in (200, 201):
            raise Problem(f"Teams activity: HTTP {status}: {answer[:200]!r}")
        replies = await self.take(self.connector, "replies", activity_id)
        messages = [r for r in replies if isinstance(r, dict) and r.get("type") == "message"]
        if not messages:
            raise Problem(f"no reply to the Teams activity reached the connector ({text or value})")
        return messages[-1]

    def teams_user(self) -> int:
        return self.rng.randrange(len(TEAMS_USERS))

    async def teams_lookup_once(self, query: str, expected: str | None, user: int) -> None:
        reply = await self.teams_turn(user, text=query)
        summary = str(reply.get("summary"))
        if expected is None:
            if "No persona matches" not in summary:
                raise Problem(f"{query}: expected no match, got {summary!r}")
            return
        if not summary.startswith(f"{self.names[expected]}:"):
            raise Problem(f"{query}: expected {self.names[expected]}'s card, got {summary!r}")
        self.teams_cards[expected] = list(teams_actions(reply.get("attachments")))

    async def teams_lookup(self) -> None:
        query, expected = self.rng.choice(LOOKUPS)
        await self.measure(
            "teams_lookup", self.teams_lookup_once(query, expected, self.teams_user())
        )

    async def teams_fit_once(self, note: str | None = None) -> None:
        note = note or self.rng.choice(self.notes)
        deal = f"T-{next(self.ids)}" if self.rng.random() < 0.5 else None
        reply = await self.teams_turn(
            self.teams_user(), text=f"fit {deal}: {note}" if deal else f"fit {note}"
        )
        summary = str(reply.get("summary"))
        if not summary.startswith(("Best fit:", "No persona fits")):
            raise Problem(f"expected a fit card, got {summary!r}")
        self.teams_fits.extend(
            data
            for data in teams_actions(reply.get("attachments"))
            if data.get("verb") == "confirm"
        )

    async def teams_fit(self) -> None:
        await self.measure("teams_fit", self.teams_fit_once())

    async def teams_card(self, verb: str, suffix: str = "") -> tuple[str, dict[str, Any]]:
        def matching(key: str) -> list[dict[str, Any]]:
            return [
                d
                for d in self.teams_cards.get(key, [])
                if d.get("verb") == verb and str(d.get("args", "")).endswith(suffix)
            ]

        keys = [key for key in self.teams_cards if matching(key)]
        if not keys:
            key = self.rng.choice(sorted(self.names))
            await self.measure(
                "teams_lookup", self.teams_lookup_once(self.names[key], key, self.teams_user())
            )
            keys = [key] if matching(key) else []
        if not keys:
            raise Problem(f"no Teams persona card with a {verb} action")
        key = self.rng.choice(keys)
        return key, self.rng.choice(matching(key))

    async def teams_rate(self) -> None:
        up = self.rng.random() < 0.6
        key, data = await self.teams_card("rate", " up" if up else " down")

        async def run() -> None:
            value = dict(data)
            name = self.names[key]
            if up:
                expected = f"Thanks for rating {name}: glad it helped"
            else:
                value["comment"] = f"Missing the buying committee ({next(self.ids)})"
                expected = f"Your feedback on {name} was passed to its owner"
            reply = await self.teams_turn(self.teams_user(), value=value)
            if expected not in str(reply.get("summary")):
                raise Problem(f"expected {expected!r}, got {reply.get('summary')!r}")

        await self.measure("teams_rate", run())

    async def teams_confirm(self) -> None:
        if not self.teams_fits:  # a fit of the clearest deal note first
            await self.measure("teams_fit", self.teams_fit_once(self.notes[0]))
        if not self.teams_fits:
            raise Problem("no 'This one fits' action after a fit of a clear deal")

        async def run() -> None:
            data = self.rng.choice(self.teams_fits)
            deal, _, key = str(data.get("args", "")).partition(" ")
            reply = await self.teams_turn(self.teams_user(), value=dict(data))
            expected = f"Noted: {self.names.get(key) or key} fits" + (
                f" deal {deal}" if deal != "-" else ""
            )
            if expected not in str(reply.get("summary")):
                raise Problem(f"expected {expected!r}, got {reply.get('summary')!r}")

        await self.measure("teams_confirm", run())

    async def teams_review(self) -> None:
        key, data = await self.teams_card("review")

        async def run() -> None:
            reply = await self.teams_turn(self.teams_user(), value=dict(data))
            expected = f"{self.names[key]} is marked reviewed"
            if expected not in str(reply.get("summary")):
                raise Problem(f"expected {expected!r}, got {reply.get('summary')!r}")

        await self.measure("teams_review", run())

    # what the scheduler delivers -------------------------------------------------------

    def classify(self, summary: str) -> tuple[str, str]:
        for kind, pattern in (("nudge", NUDGE), ("escalation", ESCALATION), ("alert", ALERT)):
            found = pattern.match(summary)
            if found:
                return kind, found.group("name")
        if DIGEST.match(summary):
            return "digest", ""
        return "other", summary

    async def collect_deliveries(self) -> None:
        """Take what the scheduler delivered to the fakes since the last look; press "Still
        accurate" (or "Mark reviewed") where its recipient would."""
        posts = await self.get_json(f"{self.slack_api_root}/drain/posts")
        for post in posts:
            kind, name = self.classify(str(post.get("text", "")).replace("&amp;", "&"))
            self.record_delivery(kind, name, "slack", post.get("text"))
            review = [b for b in slack_buttons(post.get("blocks")) if verb_of(b) == "review"]
            if review and self.wants_review(kind, name):
                user = str(post.get("channel"))
                self.follow_up(
                    self.measure(
                        "slack_nudge_review",
                        self.nudge_review_slack(user, review[0]),
                    )
                )
        for activity in await self.get_json(f"{self.connector}/drain/proactive"):
            kind, name = self.classify(str(activity.get("summary", "")))
            self.record_delivery(kind, name, "teams", activity.get("summary"))
            review = [
                d for d in teams_actions(activity.get("attachments")) if d.get("verb") == "review"
            ]
            recipient = str((activity.get("recipient") or {}).get("id", ""))
            if review and recipient in TEAMS_USERS and self.wants_review(kind, name):
                self.follow_up(
                    self.measure(
                        "teams_nudge_review",
                        self.nudge_review_teams(TEAMS_USERS.index(recipient), review[0]),
                    )
                )

    def record_delivery(self, kind: str, name: str, platform: str, summary: object) -> None:
        self.delivered[(kind, name)] += 1
        self.delivered_via[platform] += 1
        if kind == "other" and len(self.other_deliveries) < 10:
            self.other_deliveries.append(f"{platform}: {summary}")

    def wants_review(self, kind: str, name: str) -> bool:
        """An owner reviews their nudge at once, except the late personas' owners (whose
        escalation is the point); admins review what they are escalated or alerted."""
        item = self.plan.get(name)
        if item is None:
            return False
        return kind in ("escalation", "alert") or (kind == "nudge" and not item.late)

    def follow_up(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.follow_ups.add(task)
        task.add_done_callback(self.follow_ups.discard)

    async def nudge_review_slack(self, user: str, button: dict[str, Any]) -> None:
        answer = await self.click_answer(user, button, channel=f"D{user}")
        if "is marked reviewed" not in str(answer.get("text")):
            raise Problem(f"'Still accurate' as {user}: got {str(answer)[:200]}")

    async def nudge_review_teams(self, user: int, data: dict[str, Any]) -> None:
        reply = await self.teams_turn(user, value=dict(data))
        if "is marked reviewed" not in str(reply.get("summary")):
            raise Problem(f"'Still accurate' as {TEAMS_USERS[user]}: got {reply.get('summary')!r}")

    def check_deliveries(self, rows: list[Any], until: datetime) -> list[str]:
        """Compare the server's outbox with what reached the fakes: every planned persona
        due by ``until`` was queued (its nudge, its escalation when that was due, this
        week's two digests), every row is finished (sent, cancelled because the persona was
        reviewed first, or alerted about), and every sent row arrived exactly once."""
        names = {"review": "nudge", "escalation": "escalation", "alert": "alert"}
        queued: Counter[tuple[str, str]] = Counter()
        sent: Counter[tuple[str, str]] = Counter()
        problems = []
        for row in rows:
            kind = names.get(row.kind, row.kind)
            key = (kind, "" if kind == "digest" else str(row.payload.get("persona_name", "")))
            queued[key] += 1
            if row.state == "sent":
                sent[key] += 1
            elif row.state not in ("cancelled", "alerted"):
                problems.append(f"{row.label} is {row.state} ({row.last_error or 'no error'})")
        due: Counter[tuple[str, str]] = Counter({("digest", ""): 2})  # the admin, the manager
        for item in self.plan.values():
            if item.due_at <= until:
                due[("nudge", item.name)] = 1
            if item.owner == NOBODY and item.due_at <= until:
                due[("alert", item.name)] = 1
            if item.escalate_at is not None and item.escalate_at <= until:
                due[("escalation", item.name)] = 1
        for (kind, name), times in sorted(due.items()):
            if queued[(kind, name)] != times:
                problems.append(f"{kind} {name}: queued {queued[(kind, name)]} times, not {times}")
        for key in sorted(set(sent) | set(self.delivered)):
            if sent[key] != self.delivered[key]:
                problems.append(
                    f"{key[0]} {key[1]}: sent {sent[key]} times, arrived {self.delivered[key]}"
                )
        return problems

    # the steady stream -----------------------------------------------------------------

    def action(self, kind: str) -> Callable[[], Awaitable[None]]:
        method: Callable[[], Awaitable[None]] = getattr(self, kind)
        return method

    async def run_traffic(self, seconds: float, rate: float, concurrency: int) -> None:
        """``rate`` requests a second for ``seconds``, run by ``concurrency`` clients; a
        request whose moment comes while every client is busy is skipped (and counted)."""
        loop = asyncio.get_running_loop()
        kinds, weights = list(MIX), list(MIX.values())
        first = self.rng.sample(kinds, len(kinds))
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=concurrency)

        async def client() -> None:
            while (kind := await queue.get()) is not None:
                try:
                    await self.action(kind)()
                except Problem as exc:  # the request it needed first failed
                    self.fail(kind, str(exc))
                    self.stats[kind].requests += 1

        clients = [asyncio.create_task(client()) for _ in range(concurrency)]
        start = loop.time()
        for n in itertools.count():
            at = start + n / rate
            if at >= start + seconds or self.abort.is_set():
                break
            await asyncio.sleep(max(0.0, at - loop.time()))
            # One of every kind first (in random order), so that even a short run has each.
            if n < len(first):
                await queue.put(first[n])
                continue
            try:
                queue.put_nowait(self.rng.choices(kinds, weights)[0])
            except asyncio.QueueFull:
                self.skipped += 1
        for _ in clients:
            await queue.put(None)
        await asyncio.gather(*clients)


# the run ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """Everything the report shows."""

    settings: dict[str, Any]
    samples: list[Sample]
    stats: dict[str, KindStats]
    deliveries: dict[str, Any]
    server: dict[str, Any]
    problems: list[str]  # errors outside the per-kind tallies
    skipped: int
    slow_acks: int
    growth: str | None = None  # the tracemalloc listing, with --tracemalloc

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.stats.values()) + len(self.problems)


def outbox_rows(url: str) -> list[Any]:
    from persona_store import outbox
    from persona_store.db import create_db_engine

    engine = create_db_engine(url)
    try:
        return outbox.rows(engine)
    finally:
        engine.dispose()


def metric_values(text: str) -> dict[str, float]:
    """Prometheus text as {name{labels}: value}, label sets kept as written."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    return values


def command_outcomes(metrics: dict[str, float]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for name, value in metrics.items():
        found = re.match(r'persona_bot_commands_total\{.*outcome="(?P<outcome>[a-z_]+)"', name)
        if found:
            outcomes[found.group("outcome")] += int(value)
    return outcomes


def log_problems(log: Path) -> tuple[list[str], int]:
    """The server log's error lines (and tracebacks), and how many warnings it has."""
    errors, warnings = [], 0
    for line in log.read_text(errors="replace").splitlines():
        if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"):
            errors.append(line[:300])
        elif " WARNING " in line:
            warnings += 1
    return errors, warnings


def start_server(
    port: int, tmp: Path, env: dict[str, str], observe: Path | None, frames: int
) -> subprocess.Popen[bytes]:
    """``persona-bot serve``; under ``bench/servers/traced_serve.py`` when ``observe``
    names a folder for its memory breakdowns (and, with ``frames``, tracemalloc listings)."""
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    if observe is None:
        argv = ["-m", "bot.cli", *serve]
    else:
        argv = ["bench/servers/traced_serve.py", str(observe), str(frames), *serve]
    return load.python_server(*argv, env=env, log=tmp / "serve.log")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(args: argparse.Namespace, tmp: Path, db: Database) -> Outcome:
    seconds = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else min(120.0, seconds * 0.2)
    every = args.sample_every or max(0.5, min(10.0, seconds / 20))
    nudge_every = min(args.nudge_every, max(1.0, (seconds - 5) / 4))
    api_port, connector_port, port = free_port(), free_port(), free_port()
    slack_api = f"http://127.0.0.1:{api_port}/api"
    connector = f"http://127.0.0.1:{connector_port}"
    server_url = f"http://127.0.0.1:{port}"
    fakes = [
        load.python_server(
            "bench/servers/fake_slack.py", str(api_port), load.BOT_TOKEN, load.BENCH_TEAM,
            cpu=load.LOAD_CPU, log=tmp / "fake_slack.log",
        ),
        load.python_server(
            "bench/servers/fake_connector.py", str(connector_port),
            cpu=load.LOAD_CPU, log=tmp / "fake_connector.log",
        ),
    ]  # fmt: skip
    server: subprocess.Popen[bytes] | None = None
    try:
        await asyncio.to_thread(load.wait_http, f"http://127.0.0.1:{api_port}/calls")
        await asyncio.to_thread(load.wait_http, f"{connector}/last")
        now = datetime.now(UTC)
        names = await asyncio.to_thread(seed_catalog, db.url, now, args.history, args.seed)
        env = {
            "PERSONA_BOT_DATABASE_URL": db.url,
            "PERSONA_BOT_SAMPLE_PERSONAS": "0",
            "SLACK_SIGNING_SECRET": load.SIGNING_SECRET,
            "SLACK_BOT_TOKEN": load.BOT_TOKEN,
            "SLACK_API_URL": slack_api + "/",
            "PERSONA_BOT_TEAMS_ALLOWED_SERVICE_URLS": connector + "/",
            "PERSONA_BOT_ADMINS": ADMIN,
            "PERSONA_BOT_MANAGERS": USER_EMAIL,
            "PERSONA_BOT_TIMEZONE": "UTC",
            # This week's digest is due from midnight today, in a 100-day-old organization.
            "PERSONA_BOT_DIGEST_DAY": now.strftime("%a").lower(),
            "PERSONA_BOT_DIGEST_HOUR": "0",
            "PERSONA_BOT_SCHEDULER_TICK_SECONDS": str(TICK_SECONDS),
            "PERSONA_BOT_OUTBOX_POLL_SECONDS": "1",
        }
        observe = args.tracemalloc or args.memory_log
        server = start_server(port, tmp, env, observe, TRACE_FRAMES if args.tracemalloc else 0)
        await asyncio.to_thread(load.wait_http, server_url + "/healthz", 60.0, server)
        rng = random.Random(args.seed)
        soak = Soak(server_url, slack_api, connector, names, [], rng)
        connector_limit = aiohttp.TCPConnector(limit=args.concurrency * 2 + 8)
        async with aiohttp.ClientSession(
            connector=connector_limit, timeout=aiohttp.ClientTimeout(total=60)
        ) as session:
            soak.session = session
            # Every Teams user says hello first, so that the bot can reach them later.
            for user in range(len(TEAMS_USERS)):
                await soak.measure(
                    "teams_lookup", soak.teams_lookup_once("priya", "platform-priya", user)
                )
            plan = plan_reviews(datetime.now(UTC), seconds, nudge_every)
            await asyncio.to_thread(seed_reviews, db.url, plan)
            soak.plan = {item.name: item for item in plan}
            return await drive(args, soak, server, db, tmp, seconds, warmup, every, plan)
    finally:
        procs = [p for p in (server, *fakes) if p is not None]
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def settings(args: argparse.Namespace, warmup: float, every: float, db: Database) -> dict[str, Any]:
    return {
        "minutes": args.minutes,
        "rate": args.rate,
        "concurrency": args.concurrency,
        "warmup_s": warmup,
        "sample_every_s": every,
        "tick_s": TICK_SECONDS,
        "database": db.label,
        "flat_mb": FLAT_MB,
        "tracemalloc": args.tracemalloc is not None,
    }


async def drive(
    args: argparse.Namespace,
    soak: Soak,
    server: subprocess.Popen[bytes],
    db: Database,
    tmp: Path,
    seconds: float,
    warmup: float,
    every: float,
    plan: list[Scheduled],
) -> Outcome:
    loop = asyncio.get_running_loop()
    samples: list[Sample] = []
    start = loop.time()
    stop = asyncio.Event()
    traced = args.tracemalloc is not None
    observed = traced or args.memory_log is not None

    async def sampler() -> None:
        marked = False
        for n in itertools.count():
            at = start + n * every
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, at - loop.time()))
            if stop.is_set():
                return
            if server.poll() is not None:
                soak.abort.set()
                return
            t = loop.time() - start
            sample = await asyncio.to_thread(
                take_sample, server.pid, t, t < warmup, db, soak.requests, soak.errors
            )
            samples.append(sample)
            if observed:
                server.send_signal(signal.SIGUSR2)  # a line of memory.txt
            if not args.json:
                print(row(sample), file=sys.stderr, flush=True)
            if traced and not marked and t >= warmup:
                marked = True
                server.send_signal(signal.SIGUSR1)  # the baseline snapshot

    async def watcher() -> None:
        while not stop.is_set():
            await soak.collect_deliveries()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    if not args.json:
        print(header_row(), file=sys.stderr, flush=True)
    tasks = [asyncio.create_task(sampler()), asyncio.create_task(watcher())]
    await soak.run_traffic(seconds, args.rate, args.concurrency)
    traffic_end = datetime.now(UTC)
    final = await asyncio.to_thread(
        take_sample, server.pid, loop.time() - start, False, db, soak.requests, soak.errors
    )
    stop.set()
    await asyncio.gather(*tasks)
    samples.append(final)
    if not args.json:
        print(row(final), file=sys.stderr, flush=True)
    if server.poll() is not None:
        problems = [f"server: exited with code {server.returncode} during the run"]
        problems += [f"server log: {line}" for line in log_problems(tmp / "serve.log")[0][:10]]
        return Outcome(
            settings(args, warmup, every, db), samples, soak.stats, {}, {}, problems, 0, 0
        )
    growth = None
    if traced:
        server.send_signal(signal.SIGUSR1)
        growth = await asyncio.to_thread(
            read_when_written, args.tracemalloc / "growth-1.txt", 120.0
        )

    # The last nudges: everything due by the end of the traffic arrives, and is reviewed.
    deadline = loop.time() + DELIVERY_GRACE
    while True:
        await soak.collect_deliveries()
        rows = await asyncio.to_thread(outbox_rows, db.url)
        missing = soak.check_deliveries(rows, traffic_end)
        if not missing or loop.time() > deadline:
            break
        await asyncio.sleep(0.5)
    while soak.follow_ups:
        await asyncio.gather(*soak.follow_ups)
    states = Counter(row.state for row in rows)
    metrics = metric_values(await soak.get_text(soak.server + "/metrics"))
    calls = await soak.get_json(f"{soak.slack_api_root}/calls")
    held = {
        "slack": await soak.get_json(f"{soak.slack_api_root}/held"),
        "connector": await soak.get_json(f"{soak.connector}/held"),
    }
    problems = [f"scheduler: {p}" for p in missing]
    outcomes = command_outcomes(metrics)
    for outcome in ("error", "unavailable", "refused"):
        if outcomes.get(outcome):
            problems.append(f"server: {outcomes[outcome]} commands ended '{outcome}'")
    for state in ("failed", "uncertain"):
        value = int(metrics.get(f"persona_bot_outbox_{state}_total", 0))
        if value:
            problems.append(f"scheduler: {value} outbox rows {state}")
    for side, counts in held.items():
        if counts.get("dropped") or counts.get("posts_dropped") or counts.get("proactive_dropped"):
            problems.append(f"the fake {side} dropped messages nobody read: {counts}")

    server.terminate()
    try:
        code = await asyncio.to_thread(server.wait, 30)
    except subprocess.TimeoutExpired:
        server.kill()
        code = None
    if code != 0:
        problems.append(f"server: exit code {code} after SIGTERM")
    log_errors, log_warnings = log_problems(tmp / "serve.log")
    problems.extend(f"server log: {line}" for line in log_errors[:10])
    if len(log_errors) > 10:
        problems.append(f"server log: {len(log_errors) - 10} more error lines")
    kinds = Counter(kind for kind, _ in soak.delivered.elements())
    return Outcome(
        settings=settings(args, warmup, every, db),
        samples=samples,
        stats=soak.stats,
        deliveries={
            "by_kind": dict(kinds),
            "by_platform": dict(soak.delivered_via),
            "planned_personas": len(plan),
            "ticks": int(metrics.get("persona_bot_scheduler_ticks_total", 0)),
            "outbox": dict(states),
            "other": soak.other_deliveries,
            "slack_calls": calls,
        },
        server={
            "commands": dict(outcomes),
            "log_warnings": log_warnings,
            "log_errors": len(log_errors),
            "exit_code": code,
        },
        problems=problems,
        skipped=soak.skipped,
        slow_acks=soak.slow_acks,
        growth=growth,
    )


def read_when_written(path: Path, within: float) -> str | None:
    """The text of a file another process is about to write (None if it does not)."""
    deadline = time.monotonic() + within
    size = -1
    while time.monotonic() < deadline:
        now = path.stat().st_size if path.exists() else 0
        if now and now == size:  # written, and no longer growing
            return path.read_text()
        size = now
        time.sleep(0.5)
    return None


# the verdict -----------------------------------------------------------------------------


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points (0 for fewer than two)."""
    if len(points) < 2:
        return 0.0
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


@dataclass
class Memory:
    judged: bool
    start_mb: float
    middle_mb: float
    end_mb: float
    slope_mb_per_min: float
    second_half_mb: float
    flat: bool
    fds: tuple[int, int]
    db_mb: tuple[float, float]

    def describe(self) -> str:
        if not self.judged:
            return "not judged: the run after the warm-up is too short (at least 60 s needed)"
        word = "flat" if self.flat else "GROWING"
        return (
            f"{word}: second half {self.second_half_mb:+.1f} MB "
            f"(flat below {FLAT_MB:g} MB); slope {self.slope_mb_per_min:+.2f} MB/min"
        )


def judge(samples: list[Sample]) -> Memory:
    post = [s for s in samples if not s.warmup] or samples
    t0, t1 = post[0].t, post[-1].t
    middle_t = (t0 + t1) / 2
    middle = min(post, key=lambda s: abs(s.t - middle_t))
    second = [s for s in post if s.t >= middle_t]
    per_min = slope([(s.t / 60, s.rss_mb) for s in post])
    second_half = slope([(s.t / 60, s.rss_mb) for s in second]) * (t1 - middle_t) / 60
    judged = t1 - t0 >= MIN_JUDGED and len(second) >= 3
    return Memory(
        judged=judged,
        start_mb=post[0].rss_mb,
        middle_mb=middle.rss_mb,
        end_mb=post[-1].rss_mb,
        slope_mb_per_min=per_min,
        second_half_mb=second_half,
        flat=second_half < FLAT_MB,
        fds=(post[0].fds, post[-1].fds),
        db_mb=(post[0].db_mb, post[-1].db_mb),
    )


def passed(outcome: Outcome, memory: Memory) -> bool:
    return outcome.errors == 0 and (memory.flat or not memory.judged)


# the report ------------------------------------------------------------------------------


def header_row() -> str:
    return (
        f"{'time':>6} {'phase':<8} {'RSS MB':>8} {'fds':>5} {'DB MB':>7} {'requests':>9} "
        f"{'errors':>6}"
    )


def row(sample: Sample) -> str:
    minutes, secs = divmod(round(sample.t), 60)
    return (
        f"{minutes:>3}:{secs:02d} {'warm-up' if sample.warmup else 'measure':<8} "
        f"{sample.rss_mb:>8.1f} {sample.fds:>5} {sample.db_mb:>7.2f} {sample.requests:>9} "
        f"{sample.errors:>6}"
    )


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(len(ordered) * share) - 1)]


def as_json(outcome: Outcome, memory: Memory) -> dict[str, Any]:
    return {
        "settings": outcome.settings,
        "passed": passed(outcome, memory),
        "errors": outcome.errors,
        "requests": {
            kind: {
                "requests": s.requests,
                "errors": s.errors,
                "p50_ms": round(percentile(s.latencies, 0.5) * 1000, 2),
                "p99_ms": round(percentile(s.latencies, 0.99) * 1000, 2),
                "problems": s.problems,
            }
            for kind, s in outcome.stats.items()
        },
        "problems": outcome.problems,
        "skipped": outcome.skipped,
        "slow_acks": outcome.slow_acks,
        "deliveries": outcome.deliveries,
        "server": outcome.server,
        "memory": {
            "judged": memory.judged,
            "flat": memory.flat,
            "start_mb": round(memory.start_mb, 2),
            "middle_mb": round(memory.middle_mb, 2),
            "end_mb": round(memory.end_mb, 2),
            "slope_mb_per_min": round(memory.slope_mb_per_min, 3),
            "second_half_mb": round(memory.second_half_mb, 2),
            "fds": list(memory.fds),
            "db_mb": [round(v, 2) for v in memory.db_mb],
        },
        "samples": [
            {
                "t": round(s.t, 1),
                "warmup": s.warmup,
                "rss_mb": round(s.rss_mb, 2),
                "fds": s.fds,
                "db_mb": round(s.db_mb, 3),
                "requests": s.requests,
                "errors": s.errors,
            }
            for s in outcome.samples
        ],
        "tracemalloc_growth": outcome.growth,
    }


def report(outcome: Outcome, memory: Memory) -> str:
    s = outcome.settings
    total = sum(k.requests for k in outcome.stats.values())
    lines = [
        f"soak: {s['minutes']:g} min, {s['rate']:g} req/s from {s['concurrency']} clients, "
        f"{s['database']}, scheduler tick {s['tick_s']:g} s; warm-up {s['warmup_s']:.0f} s, "
        f"a sample every {s['sample_every_s']:g} s",
        "",
        header_row(),
        *(row(sample) for sample in outcome.samples),
        "",
        f"{'kind':<20} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8}",
    ]
    for kind, k in outcome.stats.items():
        p50, p99 = percentile(k.latencies, 0.5) * 1000, percentile(k.latencies, 0.99) * 1000
        lines.append(f"{kind:<20} {k.requests:>8} {k.errors:>6} {p50:>8.1f} {p99:>8.1f}")
    lines.append(f"{'all':<20} {total:>8} {sum(k.errors for k in outcome.stats.values()):>6}")
    d, server = outcome.deliveries, outcome.server
    lines.append("")
    if d:  # not when the server died
        by_kind = ", ".join(f"{v} {k}" for k, v in sorted(d["by_kind"].items())) or "nothing"
        by_platform = ", ".join(f"{k} {v}" for k, v in sorted(d["by_platform"].items())) or "-"
        lines.append(
            f"scheduler: {d['ticks']} ticks; delivered {by_kind} ({by_platform}); outbox rows "
            + ", ".join(f"{v} {k}" for k, v in sorted(d["outbox"].items()))
        )
    if server:
        lines.append(
            f"server: commands {dict(sorted(server['commands'].items()))}; log "
            f"{server['log_errors']} errors, {server['log_warnings']} warnings; "
            f"exit code {server['exit_code']}"
        )
    if outcome.skipped or outcome.slow_acks:
        lines.append(
            f"pacing: {outcome.skipped} requests skipped (every client busy), "
            f"{outcome.slow_acks} slash commands answered late through response_url"
        )
    for kind, k in outcome.stats.items():
        lines.extend(f"error {kind}: {p}" for p in k.problems)
    lines.extend(f"error {p}" for p in outcome.problems)
    lines += [
        f"memory: RSS {memory.start_mb:.1f} MB after the warm-up, {memory.middle_mb:.1f} MB in "
        f"the middle, {memory.end_mb:.1f} MB at the end; {memory.describe()}",
        f"fds {memory.fds[0]} -> {memory.fds[1]}; database {memory.db_mb[0]:.2f} -> "
        f"{memory.db_mb[1]:.2f} MB",
    ]
    if outcome.growth:
        lines += ["", "tracemalloc: grown most since the end of the warm-up", outcome.growth]
    verdict = "PASS" if passed(outcome, memory) else "FAIL"
    lines.append(
        f"verdict: {verdict} ({outcome.errors} errors in {total} requests; memory "
        f"{'flat' if memory.flat else 'growing'}{'' if memory.judged else ', not judged'})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the traffic")
    parser.add_argument("--rate", type=float, default=20.0, help="requests a second")
    parser.add_argument("--concurrency", type=int, default=8, help="clients at most at once")
    parser.add_argument(
        "--sample-every",
        type=float,
        default=None,
        help="seconds (default: 10, less for short runs)",
    )
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds (default: 20%% of the run, at most 120)"
    )
    parser.add_argument(
        "--nudge-every", type=float, default=10.0, help="seconds between personas falling due"
    )
    parser.add_argument(
        "--history",
        type=int,
        default=HISTORY,
        help=f"usage events of the last 90 days to start with (default {HISTORY:,})",
    )
    parser.add_argument("--db", help="PostgreSQL URL (a schema of its own is used and dropped)")
    parser.add_argument("--seed", type=int, default=1, help="of the traffic's random choices")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--logs", type=Path, metavar="DIR", help="keep the server's and the fakes' logs in DIR"
    )
    parser.add_argument(
        "--memory-log",
        type=Path,
        metavar="DIR",
        help="at every sample, write where the server's memory is (Python, SQLite, heap) to "
        "DIR/memory.txt",
    )
    parser.add_argument(
        "--tracemalloc",
        type=Path,
        metavar="DIR",
        help="trace the server's allocations and write what grew after the warm-up to DIR",
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.concurrency < 1:
        parser.error("--minutes and --rate must be positive, --concurrency at least 1")
    for name in ("tracemalloc", "memory_log"):
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).resolve())
    with tempfile.TemporaryDirectory(prefix="soak-") as tmpdir:
        tmp = Path(tmpdir)
        db = Database.create(args.db, tmp)
        try:
            outcome = asyncio.run(run(args, tmp, db))
        except Exception:
            for log in sorted(tmp.glob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-20:]
                print(f"--- {log.name}\n" + "\n".join(tail), file=sys.stderr)
            raise
        finally:
            db.close()
            if args.logs is not None:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in tmp.glob("*.log"):
                    shutil.copy(log, args.logs / log.name)
    memory = judge(outcome.samples)
    if args.json:
        print(json.dumps(as_json(outcome, memory), indent=2))
    else:
        print(report(outcome, memory))
    return 0 if passed(outcome, memory) else 1


if __name__ == "__main__":
    sys.exit(main())
