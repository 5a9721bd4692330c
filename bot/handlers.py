"""Handlers of the ``/persona`` verbs: plain coroutines from a Turn to a Reply.

They are the same for every platform and are tested without any. ``default_router`` wires
them to their verbs; later capabilities add or replace routes on the same router.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot import cards, messages
from bot.dashboard import dashboard_handler
from bot.deals import deal_handler
from bot.editor import archive_handler, edit_handler, new_handler, save_handler
from bot.errors import CommandError, PermissionDenied
from bot.fit import confirm_handler, fit_handler
from bot.grammar import VERBS, close_verb
from bot.model import Block, Context, Header, Reply, Text
from bot.permissions import can_change
from bot.resolve import resolve_persona, split_name
from bot.router import Router, Turn
from bot.runtime import Runtime
from bot.summaries import stats_handler
from persona_store.health import MAX_PRIMARY, UNUSED_DAYS, assess
from persona_store.outbox import delivery_problems
from persona_store.store import Revision
from persona_store.usage import last_used_ms

MAX_FEEDBACK = 2000


async def help_handler(turn: Turn) -> Reply:
    router = turn.router
    lines = tuple(
        f"/persona {'NAME' if verb == 'lookup' else verb}: {VERBS[verb]}"
        for verb in router.advertised
        if verb in VERBS
    )
    return Reply(
        summary="persona-bot commands",
        blocks=(
            Header("persona-bot"),
            Text("Your customer personas, where you work.", items=lines),
            Context("Names can be partial or misspelled: `/persona fiona`, `/persona finanse`."),
        ),
        kind="help",
    )


LOOKUP_DEAL = re.compile(r"\s+(?:for|deal)\s+(?P<id>[A-Za-z0-9._/#-]*\d[A-Za-z0-9._/#-]*)\s*$")


async def lookup_handler(turn: Turn) -> Reply:
    """``/persona NAME`` (optionally ``NAME for D-1042`` to count it as used on a deal)."""
    query = turn.command.args
    if not query:
        return await help_handler(turn)
    deal = LOOKUP_DEAL.search(query)
    deal_id = deal.group("id") if deal else None
    if deal:
        query = query[: deal.start()].strip()
    catalog = await turn.catalog()
    if not catalog.personas:
        raise CommandError(messages.NO_PERSONAS)
    result = catalog.index.lookup(query)
    turn.usage.query = query
    turn.usage.score = round(result.score, 1)
    if result.persona is not None:
        turn.usage.persona_id = result.persona.id
        turn.usage.matched = True
        if deal_id:
            turn.usage.deal_id = deal_id
            await turn.runtime.db(
                turn.runtime.store.link_deal,
                turn.org_id,
                deal_id,
                result.persona.key,
                source="lookup",
                user_id=turn.user.id,
            )
        persona, now = result.persona, turn.runtime.clock()
        can_review = can_change(turn.user, turn.role, persona)
        # The same card object for every lookup of this persona: renderers memoize on it.
        return catalog.memo(
            cards.card_key(persona, now, can_review=can_review),
            lambda: cards.persona_card(persona, now, can_review=can_review),
        )
    if result.suggestions:
        return cards.suggestions(
            messages.did_you_mean(query, [p.name for p in result.suggestions]),
            result.suggestions,
        )
    first_word = query.split()[0] if query.split() else query
    verb = close_verb(first_word, extra_verbs=turn.router.verbs)
    return Reply(
        summary=messages.no_match(query, verb),
        blocks=(Text(messages.no_match(query, verb)), Context(messages.LIST_HINT)),
        kind="suggest",
    )


async def list_handler(turn: Turn) -> Reply:
    catalog = await turn.catalog()
    if not catalog.personas:
        raise CommandError(messages.NO_PERSONAS)
    return cards.persona_list(catalog.personas, turn.runtime.clock())


def describe_change(field: str, change: list[object]) -> str:
    old, new = change
    label = field.replace("_", " ").replace(".", " ")

    def short(value: object) -> str:
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        elif isinstance(value, dict):
            value = "–".join(str(value.get(k, "")) for k in ("min", "max"))
        text = str(value)
        return text if len(text) <= 60 else text[:59] + "…"

    if old in (None, [], {}, ""):
        return f"{label} set to {short(new)}"
    if new in (None, [], {}, ""):
        return f"{label} removed"
    return f"{label}: {short(old)} → {short(new)}"


def history_line(rev: Revision) -> str:
    when = f"{rev.created_at:%Y-%m-%d %H:%M} UTC"
    head = f"#{rev.number} {when} by {rev.author}: {rev.action}"
    if rev.action in ("updated", "created") and rev.changes:
        if rev.action == "created":
            return head
        shown = [describe_change(f, c) for f, c in list(rev.changes.items())[:4]]
        more = len(rev.changes) - len(shown)
        return head + " (" + "; ".join(shown) + (f"; and {more} more" if more > 0 else "") + ")"
    return head + (f" ({rev.note})" if rev.note else "")


async def history_handler(turn: Turn) -> Reply:
    if not turn.command.args:
        raise CommandError(messages.needs_argument("history", "fiona"))
    persona = await resolve_persona(turn, turn.command.args)
    turn.usage.persona_id, turn.usage.matched = persona.id, True
    revisions = await turn.runtime.db(turn.runtime.store.history, turn.org_id, persona.key)
    lines = tuple(history_line(r) for r in revisions)
    return Reply(
        summary=f"History of {persona.name}",
        blocks=(
            Header(f"History of {persona.name}"),
            Text(items=lines) if lines else Text("No changes recorded."),
            Context(f"Newest first; {len(lines)} shown."),
        ),
        kind="history",
        persona_key=persona.key,
    )


async def health_handler(turn: Turn) -> Reply:
    runtime = turn.runtime
    catalog = await turn.catalog()
    used = await runtime.db(last_used_ms, runtime.engine, turn.org_id)
    last_used = {pid: datetime.fromtimestamp(ts / 1000, UTC) for pid, ts in used.items()}
    deliveries = await runtime.db(delivery_problems, runtime.engine, turn.org_id, runtime.clock())
    report = assess(catalog.personas, last_used, runtime.clock(), deliveries)
    blocks: list[Block] = [Header("Persona programme health")]
    if not report.personas:
        blocks.append(Text(messages.NO_PERSONAS))
        return Reply(summary="No personas", blocks=tuple(blocks), kind="health")
    count_line = f"{report.count} active personas"
    if report.too_many:
        count_line += (
            f": more than {MAX_PRIMARY} primary personas is more than people remember."
            " Merge or demote the least distinct ones."
        )
    else:
        count_line += f" (at most {MAX_PRIMARY} is healthy)."
    blocks.append(Text(count_line, title="⚠️ Too many personas" if report.too_many else "✅ Count"))
    completeness = []
    for p in report.personas:
        note = f"{p.name}: {p.completeness}% of the four data types"
        if p.demographics_only:
            note += " — demographics only: add firmographic, behavioral and psychographic data"
        elif p.completeness < 100:
            missing = [
                t
                for t in ("demographic", "firmographic", "behavioral", "psychographic")
                if t not in p.data_types
            ]
            note += f" (missing {', '.join(missing)})"
        completeness.append(note)
    blocks.append(Text(title="Completeness", items=tuple(completeness)))
    overdue = tuple(f"{p.name}: review overdue by {p.overdue_days} days" for p in report.overdue)
    blocks.append(
        Text(title="⚠️ Reviews overdue", items=overdue)
        if overdue
        else Text("Every persona was reviewed within its cadence.", title="✅ Reviews")
    )
    unused = tuple(
        f"{p.name}: "
        + (f"last looked up {p.last_used_at:%Y-%m-%d}" if p.last_used_at else "never looked up")
        for p in report.unused
    )
    blocks.append(
        Text(title=f"⚠️ Not used in {UNUSED_DAYS} days", items=unused)
        if unused
        else Text(f"Every persona was looked up in the last {UNUSED_DAYS} days.", title="✅ Usage")
    )
    if report.deliveries:
        states = {"uncertain": "may not have arrived", "alerted": "recipient unreachable"}
        lines = tuple(
            f"{d.label} to {d.recipient}: {states.get(d.state, d.state)}"
            + (f" ({d.error})" if d.error else "")
            + f" [row {d.row_id}]"
            for d in report.deliveries
        )
        blocks.append(Text(title="⚠️ Nudges and digests not delivered", items=lines))
    blocks.append(Context(f"{report.problems} problem(s) found."))
    return Reply(
        summary=f"Persona health: {report.problems} problem(s)",
        blocks=tuple(blocks),
        kind="health",
        data={"problems": report.problems, "undelivered": len(report.deliveries)},
    )


async def feedback_handler(turn: Turn) -> Reply:
    persona, text = await split_name(turn, turn.command.args)
    if not text.strip():
        raise CommandError(
            f"What would you like to say about {persona.name}? "
            f"For example `/persona feedback {persona.key} the objections are out of date`."
        )
    if len(text) > MAX_FEEDBACK:
        raise CommandError(f"Feedback is limited to {MAX_FEEDBACK:,} characters.")
    turn.usage.persona_id, turn.usage.matched = persona.id, True
    command = turn.command
    await turn.runtime.db(
        turn.runtime.store.add_feedback,
        turn.org_id,
        persona.key,
        platform=command.platform,
        user_id=command.user.id,
        comment=text.strip(),
    )
    return Reply.text(f"Thanks! Your feedback on {persona.name} was passed to its owner.")


async def rate_handler(turn: Turn) -> Reply:
    key, _, vote = turn.command.args.partition(" ")
    vote = vote.strip().lower()
    if vote not in ("up", "down"):
        raise CommandError("A rating is `up` or `down`.")
    catalog = await turn.catalog()
    persona = catalog.get(key)
    if persona is None:
        raise CommandError(messages.no_match(key), hint=messages.LIST_HINT)
    turn.usage.persona_id, turn.usage.matched = persona.id, True
    await turn.runtime.db(
        turn.runtime.store.add_feedback,
        turn.org_id,
        persona.key,
        platform=turn.command.platform,
        user_id=turn.command.user.id,
        rating=1 if vote == "up" else -1,
    )
    thanks = "glad it helped" if vote == "up" else "the owner will see it"
    return Reply.text(f"Thanks for rating {persona.name}: {thanks}.")


async def review_handler(turn: Turn) -> Reply:
    if not turn.command.args:
        raise CommandError(messages.needs_argument("review", "fiona"))
    persona = await resolve_persona(turn, turn.command.args)
    if not can_change(turn.user, turn.role, persona):
        raise PermissionDenied(
            messages.not_allowed(f"mark {persona.name} reviewed", "its owner and admins")
        )
    turn.usage.persona_id, turn.usage.matched = persona.id, True
    runtime = turn.runtime
    updated = await runtime.db(
        runtime.store.mark_reviewed,
        turn.org_id,
        persona.key,
        turn.user.label,
        now=runtime.clock(),
    )
    runtime.catalogs.invalidate(turn.org_id)
    due = updated.spec.review_every_days
    return Reply.text(f"{persona.name} is marked reviewed. The next review is due in {due} days.")


def default_router(runtime: Runtime) -> Router:
    router = Router(runtime)
    router.add("lookup", lookup_handler)
    router.add("list", list_handler)
    router.add("fit", fit_handler)
    router.add("feedback", feedback_handler)
    router.add("stats", stats_handler)
    router.add("dashboard", dashboard_handler)
    router.add("deal", deal_handler)
    router.add("review", review_handler)
    router.add("health", health_handler)
    router.add("history", history_handler)
    router.add("edit", edit_handler)
    router.add("new", new_handler)
    router.add("archive", archive_handler)
    router.add("save", save_handler, advertise=False)
    router.add("help", help_handler)
    router.add("rate", rate_handler, advertise=False)
    router.add("confirm", confirm_handler, advertise=False)
    return router
