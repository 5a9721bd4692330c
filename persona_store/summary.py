"""The usage summary managers read: are the personas used, do they help, what do people say.

``summarize(engine, org_id, start, end, now)`` answers, for one organization and the period
``[start, end)``: lookups, fits and unique users per persona with the trend against the
previous period of the same length; usage by platform and by channel; adoption (the share of
active bot users who used any persona); the knowledge gaps (searches that found nothing and
fits with no persona, grouped by similar text); personas nobody used; feedback per persona;
review status; lookups and adoption per week; and the outcome comparison of
``persona_store.outcomes``. The same ``Summary`` feeds ``/persona stats``, the weekly digest,
the dashboard and ``persona-bot stats --json``.

People are counted per platform: a Slack user id and a Teams user id are two people to the
bot, because nothing links them. Every usage query is a range scan of
``ix_usage_event_summary`` (organization, epoch-ms timestamp, then every column the summary
groups by), so none of them reads the table rows; only the knowledge-gap query visits rows,
and only those that matched nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import BigInteger, Connection, Engine, and_, case, func, literal_column, select

from persona_store.models import Feedback, Persona, UsageEvent
from persona_store.outcomes import OutcomeReport, outcome_report

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday, so Monday 1969-12-29 is three days before: shifting by three
# days makes integer weeks start on Mondays.
WEEK_SHIFT_MS = 3 * DAY_MS
# Commands in which a person used a persona (a card, a fit, "this one fits").
USE_COMMANDS = ("lookup", "fit", "confirm")
GAP_COMMANDS = ("lookup", "fit")
MAX_GAP_TEXTS = 500  # distinct unmatched texts considered for grouping, most frequent first
MAX_GAPS = 15
GAP_SIMILARITY = 80  # rapidfuzz token_sort_ratio at or above which two texts are one gap
MAX_CHANNELS = 10
LATEST_COMMENTS = 3
_DEAL_PREFIX = re.compile(
    r"^\s*(?:deal\s+)?(?:[A-Za-z0-9#][\w./#-]{0,40}\d[\w./#-]{0,40})\s*[:—–]\s*", re.IGNORECASE
)
_NOT_WORD = re.compile(r"[^\w$%+.-]+")


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def week_number(moment: datetime) -> int:
    return (to_ms(moment) + WEEK_SHIFT_MS) // WEEK_MS


def week_start(week: int) -> date:
    """The Monday (UTC) that starts integer week ``week``."""
    return datetime.fromtimestamp((week * WEEK_MS - WEEK_SHIFT_MS) / 1000, UTC).date()


def _trend(current: int, previous: int) -> float | None:
    """Percent change against the previous period; None when there was nothing before."""
    if previous == 0:
        return None
    return round(100.0 * (current - previous) / previous, 1)


@dataclass(frozen=True)
class PersonaUsage:
    key: str
    name: str
    lookups: int
    fits: int
    users: int
    previous_lookups: int
    archived: bool = False

    @property
    def trend(self) -> float | None:
        return _trend(self.lookups, self.previous_lookups)


@dataclass(frozen=True)
class Slice:
    """Usage of one platform or one channel."""

    platform: str
    channel: str | None
    events: int
    users: int | None = None  # counted per platform only: distinct counts are the costly part


@dataclass(frozen=True)
class Gap:
    """A group of similar texts that found no persona: something people need and miss."""

    kind: str  # "search" (a lookup that found nothing) or "fit" (no persona fits)
    text: str  # the most frequent wording
    count: int
    variants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Comment:
    text: str
    user_id: str
    platform: str
    created_at: datetime


@dataclass(frozen=True)
class PersonaFeedback:
    key: str
    name: str
    up: int
    down: int
    comments: int
    latest: tuple[Comment, ...] = ()

    @property
    def score(self) -> int:
        """Thumbs up minus thumbs down."""
        return self.up - self.down


@dataclass(frozen=True)
class ReviewStatus:
    key: str
    name: str
    owner: str | None
    last_reviewed_at: datetime | None
    due_at: datetime | None  # None: never reviewed, due now
    overdue_days: int  # 0 when not overdue

    @property
    def overdue(self) -> bool:
        return self.due_at is None or self.overdue_days > 0


@dataclass(frozen=True)
class Week:
    start: date
    lookups: dict[str, int]  # persona key -> lookups that week
    users: int  # people who used the bot that week
    persona_users: int  # of them, people who used a persona

    @property
    def adoption(self) -> float | None:
        return self.persona_users / self.users if self.users else None


@dataclass(frozen=True)
class Summary:
    org_id: int
    start: datetime
    end: datetime
    generated_at: datetime
    events: int
    previous_events: int
    users: int
    persona_users: int
    by_command: dict[str, int]
    personas: tuple[PersonaUsage, ...]
    platforms: tuple[Slice, ...]
    channels: tuple[Slice, ...]
    gaps: tuple[Gap, ...]
    unmatched_searches: int
    unmatched_fits: int
    unused: tuple[PersonaUsage, ...]
    feedback: tuple[PersonaFeedback, ...]
    reviews: tuple[ReviewStatus, ...]
    weeks: tuple[Week, ...]
    outcomes: OutcomeReport
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def days(self) -> int:
        return max(1, round((self.end - self.start) / timedelta(days=1)))

    @property
    def adoption(self) -> float | None:
        return self.persona_users / self.users if self.users else None

    @property
    def overdue(self) -> tuple[ReviewStatus, ...]:
        return tuple(r for r in self.reviews if r.overdue)

    @property
    def lookups(self) -> int:
        return sum(p.lookups for p in self.personas)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types only: what ``persona-bot stats --json`` prints."""
        return {
            "org_id": self.org_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": self.days,
            "generated_at": self.generated_at.isoformat(),
            "events": self.events,
            "previous_events": self.previous_events,
            "users": self.users,
            "persona_users": self.persona_users,
            "adoption": self.adoption,
            "by_command": dict(self.by_command),
            "personas": [
                {
                    "key": p.key,
                    "name": p.name,
                    "lookups": p.lookups,
                    "fits": p.fits,
                    "users": p.users,
                    "previous_lookups": p.previous_lookups,
                    "trend_pct": p.trend,
                    "archived": p.archived,
                }
                for p in self.personas
            ],
            "platforms": [
                {"platform": s.platform, "events": s.events, "users": s.users}
                for s in self.platforms
            ],
            "channels": [
                {"platform": s.platform, "channel": s.channel, "events": s.events}
                for s in self.channels
            ],
            "knowledge_gaps": {
                "unmatched_searches": self.unmatched_searches,
                "unmatched_fits": self.unmatched_fits,
                "groups": [
                    {"kind": g.kind, "text": g.text, "count": g.count, "variants": list(g.variants)}
                    for g in self.gaps
                ],
            },
            "unused": [p.key for p in self.unused],
            "feedback": [
                {
                    "key": f.key,
                    "name": f.name,
                    "up": f.up,
                    "down": f.down,
                    "score": f.score,
                    "comments": f.comments,
                    "latest": [
                        {
                            "text": c.text,
                            "user_id": c.user_id,
                            "platform": c.platform,
                            "created_at": c.created_at.isoformat(),
                        }
                        for c in f.latest
                    ],
                }
                for f in self.feedback
            ],
            "reviews_overdue": [
                {
                    "key": r.key,
                    "name": r.name,
                    "owner": r.owner,
                    "overdue_days": r.overdue_days,
                    "last_reviewed_at": r.last_reviewed_at.isoformat()
                    if r.last_reviewed_at
                    else None,
                }
                for r in self.overdue
            ],
            "weeks": [
                {
                    "start": w.start.isoformat(),
                    "lookups": dict(w.lookups),
                    "users": w.users,
                    "persona_users": w.persona_users,
                    "adoption": w.adoption,
                }
                for w in self.weeks
            ],
            "outcomes": self.outcomes.to_json(),
        }


# knowledge gaps --------------------------------------------------------------------------


def normalise_gap_text(text: str, kind: str) -> str:
    text = text.strip().lower()
    if kind == "fit":
        text = _DEAL_PREFIX.sub("", text, count=1)
    return " ".join(_NOT_WORD.sub(" ", text).split())


def group_gaps(
    texts: Sequence[tuple[str, str, int]],
    *,
    similarity: int = GAP_SIMILARITY,
    limit: int = MAX_GAPS,
    max_texts: int = MAX_GAP_TEXTS,
) -> tuple[Gap, ...]:
    """Group ``(kind, text, count)`` rows by similar wording, biggest groups first.

    Greedy and bounded: texts are taken most frequent first (at most ``max_texts``), and each
    joins the first existing group of its kind whose leading wording is similar enough, so the
    cost is at most ``max_texts`` x groups comparisons, whatever the history holds.
    """
    ordered = sorted(texts, key=lambda row: (-row[2], row[1]))[:max_texts]
    groups: dict[str, list[list[Any]]] = {}  # kind -> [[text, count, {variant: count}], ...]
    for kind, raw, count in ordered:
        norm = normalise_gap_text(raw, kind)
        if not norm:
            continue
        kind_groups = groups.setdefault(kind, [])
        found = process.extractOne(
            norm,
            [g[0] for g in kind_groups],
            scorer=fuzz.token_sort_ratio,
            score_cutoff=similarity,
        )
        if found is None:
            kind_groups.append([norm, count, {norm: count}])
        else:
            group = kind_groups[found[2]]
            group[1] += count
            group[2][norm] = group[2].get(norm, 0) + count
    gaps = [
        Gap(
            kind,
            text,
            int(total),
            tuple(v for v, _ in sorted(variants.items(), key=lambda kv: (-kv[1], kv[0]))[:5]),
        )
        for kind, kind_groups in groups.items()
        for text, total, variants in kind_groups
    ]
    gaps.sort(key=lambda g: (-g.count, g.kind, g.text))
    return tuple(gaps[:limit])


# queries ---------------------------------------------------------------------------------


def _in_range(org_id: int, start_ms: int, end_ms: int) -> Any:
    return and_(UsageEvent.org_id == org_id, UsageEvent.ts >= start_ms, UsageEvent.ts < end_ms)


def _persona_counts(
    conn: Connection, org_id: int, start_ms: int, end_ms: int
) -> dict[int, tuple[int, int, int]]:
    """persona id -> (lookups, fits, unique users) in the range."""
    is_lookup = case((UsageEvent.command == "lookup", 1), else_=0)
    rows = conn.execute(
        select(
            UsageEvent.persona_id,
            func.sum(is_lookup),
            func.count() - func.sum(is_lookup),
            func.count(func.distinct(UsageEvent.user_id)),
        )
        .where(
            _in_range(org_id, start_ms, end_ms),
            UsageEvent.persona_id.is_not(None),
            UsageEvent.command.in_(USE_COMMANDS),
        )
        .group_by(UsageEvent.persona_id)
    ).all()
    return {int(pid): (int(lk or 0), int(ft or 0), int(us)) for pid, lk, ft, us in rows}


def _previous_counts(
    conn: Connection, org_id: int, start_ms: int, end_ms: int
) -> tuple[dict[int, int], int]:
    """Lookups per persona id, and all events, in the range (one scan for both)."""
    rows = conn.execute(
        select(
            UsageEvent.persona_id,
            func.sum(case((UsageEvent.command == "lookup", 1), else_=0)),
            func.count(),
        )
        .where(_in_range(org_id, start_ms, end_ms))
        .group_by(UsageEvent.persona_id)
    ).all()
    lookups = {int(pid): int(n) for pid, n, _ in rows if pid is not None and n}
    return lookups, sum(int(total) for _, _, total in rows)


def _persona_use() -> Any:
    return and_(UsageEvent.persona_id.is_not(None), UsageEvent.command.in_(USE_COMMANDS))


def summarize(
    engine: Engine, org_id: int, start: datetime, end: datetime, now: datetime | None = None
) -> Summary:
    """The whole summary of one organization for ``[start, end)``."""
    now = now or datetime.now(UTC)
    start_ms, end_ms = to_ms(start), to_ms(end)
    previous_start_ms = start_ms - (end_ms - start_ms)
    in_range = _in_range(org_id, start_ms, end_ms)
    with engine.connect() as conn:
        # A read-only transaction: on SQLite it must not take the write lock (see db.py).
        conn.execution_options(read_only=True)
        persona_rows = conn.execute(
            select(
                Persona.id,
                Persona.key,
                Persona.name,
                Persona.archived,
                Persona.owner,
                Persona.last_reviewed_at,
                Persona.review_every_days,
            ).where(Persona.org_id == org_id)
        ).all()
        current = _persona_counts(conn, org_id, start_ms, end_ms)
        previous, previous_events = _previous_counts(conn, org_id, previous_start_ms, start_ms)
        # One scan for every additive count: per command, unmatched, platform and channel.
        slice_rows = conn.execute(
            select(
                UsageEvent.command,
                UsageEvent.matched,
                UsageEvent.platform,
                UsageEvent.channel,
                func.count(),
            )
            .where(in_range)
            .group_by(
                UsageEvent.command, UsageEvent.matched, UsageEvent.platform, UsageEvent.channel
            )
        ).all()
        # People are counted per platform (a user id means nothing across platforms), so the
        # totals are the sums and one scan serves both.
        user_rows = conn.execute(
            select(
                UsageEvent.platform,
                func.count(func.distinct(UsageEvent.user_id)),
                func.count(func.distinct(case((_persona_use(), UsageEvent.user_id)))),
            )
            .where(in_range)
            .group_by(UsageEvent.platform)
        ).all()
        gap_text = func.lower(UsageEvent.query)
        gap_rows = conn.execute(
            select(UsageEvent.command, gap_text, func.count())
            .where(
                in_range,
                UsageEvent.command.in_(GAP_COMMANDS),
                UsageEvent.matched.is_(False),
                UsageEvent.query.is_not(None),
            )
            .group_by(UsageEvent.command, gap_text)
            .order_by(func.count().desc())
            .limit(MAX_GAP_TEXTS)
        ).all()
        # Inline constants: PostgreSQL matches GROUP BY to the select list by text, and two
        # sets of bind parameters would make the same expression look different to it.
        week = (UsageEvent.ts + literal_column(str(WEEK_SHIFT_MS), BigInteger)) // literal_column(
            str(WEEK_MS), BigInteger
        )
        weekly_lookups = conn.execute(
            select(week, UsageEvent.persona_id, func.count())
            .where(in_range, UsageEvent.command == "lookup", UsageEvent.persona_id.is_not(None))
            .group_by(week, UsageEvent.persona_id)
        ).all()
        weekly_users = conn.execute(
            select(
                week,
                func.count(func.distinct(UsageEvent.user_id)),
                func.count(func.distinct(case((_persona_use(), UsageEvent.user_id)))),
            )
            .where(in_range)
            .group_by(week)
        ).all()
        feedback_rows = conn.execute(
            select(
                Feedback.persona_id,
                Feedback.rating,
                Feedback.comment,
                Feedback.user_id,
                Feedback.platform,
                Feedback.created_at,
            )
            .where(
                Feedback.org_id == org_id, Feedback.created_at >= start, Feedback.created_at < end
            )
            .order_by(Feedback.created_at.desc(), Feedback.id.desc())
        ).all()

    by_command: dict[str, int] = {}
    unmatched: dict[str, int] = {}
    platform_events: dict[str, int] = {}
    channel_events: dict[tuple[str, str], int] = {}
    for command, matched, platform, channel, n in slice_rows:
        by_command[command] = by_command.get(command, 0) + n
        if command in GAP_COMMANDS and not matched:
            unmatched[command] = unmatched.get(command, 0) + n
        platform_events[platform] = platform_events.get(platform, 0) + n
        if channel is not None:
            channel_events[(platform, channel)] = channel_events.get((platform, channel), 0) + n
    platform_users = {str(p): (int(u), int(pu)) for p, u, pu in user_rows}
    users = sum(u for u, _ in platform_users.values())
    persona_users = sum(pu for _, pu in platform_users.values())
    platforms = tuple(
        Slice(p, None, n, platform_users.get(p, (0, 0))[0])
        for p, n in sorted(platform_events.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    channels = tuple(
        Slice(p, c, n)
        for (p, c), n in sorted(channel_events.items(), key=lambda kv: (-kv[1], kv[0]))[
            :MAX_CHANNELS
        ]
    )
    names = {int(r.id): r for r in persona_rows}
    personas: list[PersonaUsage] = []
    unused: list[PersonaUsage] = []
    for row in persona_rows:
        lookups, fits, people = current.get(row.id, (0, 0, 0))
        usage = PersonaUsage(
            row.key, row.name, lookups, fits, people, previous.get(row.id, 0), bool(row.archived)
        )
        if lookups or fits or usage.previous_lookups:
            personas.append(usage)
        if not row.archived and not (lookups or fits):
            unused.append(usage)
    personas.sort(key=lambda p: (-p.lookups, -p.fits, p.name))
    unused.sort(key=lambda p: p.name)

    reviews = []
    for row in persona_rows:
        if row.archived:
            continue
        reviewed = row.last_reviewed_at
        if reviewed is not None and reviewed.tzinfo is None:
            reviewed = reviewed.replace(tzinfo=UTC)
        due = reviewed + timedelta(days=row.review_every_days) if reviewed else None
        overdue_days = (now - due).days if due is not None and due <= now else 0
        if due is not None and due <= now:
            overdue_days = max(overdue_days, 1)
        reviews.append(ReviewStatus(row.key, row.name, row.owner, reviewed, due, overdue_days))
    reviews.sort(key=lambda r: (not r.overdue, -r.overdue_days, r.name))

    feedback: dict[int, dict[str, Any]] = {}
    for pid, rating, comment, user_id, platform, created_at in feedback_rows:
        entry = feedback.setdefault(int(pid), {"up": 0, "down": 0, "comments": 0, "latest": []})
        if rating > 0:
            entry["up"] += 1
        elif rating < 0:
            entry["down"] += 1
        if comment:
            entry["comments"] += 1
            if len(entry["latest"]) < LATEST_COMMENTS:
                when = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
                entry["latest"].append(Comment(comment, user_id, platform, when))
    feedback_list = [
        PersonaFeedback(
            names[pid].key, names[pid].name, e["up"], e["down"], e["comments"], tuple(e["latest"])
        )
        for pid, e in feedback.items()
        if pid in names
    ]
    feedback_list.sort(key=lambda f: (-(f.up + f.down + f.comments), f.name))

    weeks: dict[int, dict[str, Any]] = {
        w: {"lookups": {}, "users": 0, "persona_users": 0}
        for w in range(
            (start_ms + WEEK_SHIFT_MS) // WEEK_MS, (end_ms - 1 + WEEK_SHIFT_MS) // WEEK_MS + 1
        )
    }
    for week_no, persona_id, n in weekly_lookups:
        if persona_id is not None and persona_id in names and int(week_no) in weeks:
            weeks[int(week_no)]["lookups"][names[int(persona_id)].key] = int(n)
    for w, u, pu in weekly_users:
        if int(w) in weeks:
            weeks[int(w)]["users"], weeks[int(w)]["persona_users"] = int(u), int(pu)

    return Summary(
        org_id=org_id,
        start=start,
        end=end,
        generated_at=now,
        events=sum(by_command.values()),
        previous_events=int(previous_events),
        users=int(users),
        persona_users=int(persona_users),
        by_command=dict(sorted(by_command.items(), key=lambda kv: (-kv[1], kv[0]))),
        personas=tuple(personas),
        platforms=platforms,
        channels=channels,
        gaps=group_gaps(
            [("search" if c == "lookup" else "fit", str(t), int(n)) for c, t, n in gap_rows]
        ),
        unmatched_searches=unmatched.get("lookup", 0),
        unmatched_fits=unmatched.get("fit", 0),
        unused=tuple(unused),
        feedback=tuple(feedback_list),
        reviews=tuple(reviews),
        weeks=tuple(
            Week(week_start(w), dict(v["lookups"]), v["users"], v["persona_users"])
            for w, v in sorted(weeks.items())
        ),
        outcomes=outcome_report(engine, org_id, start, end),
    )


def summarize_days(engine: Engine, org_id: int, days: int, now: datetime | None = None) -> Summary:
    """The summary of the last ``days`` days, up to and including ``now``."""
    now = now or datetime.now(UTC)
    # The end is exclusive: an event recorded in the very millisecond of ``now`` belongs in.
    end = now + timedelta(milliseconds=1)
    return summarize(engine, org_id, end - timedelta(days=days), end, now)
