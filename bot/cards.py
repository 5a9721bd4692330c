"""Neutral replies for personas: the card, the list, suggestions. Platform renderers take it
from here (Block Kit, Adaptive Cards, plain text)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.model import Block, Button, Buttons, Context, Fields, Header, Image, Reply, Text
from persona_store.records import IntRange, PersonaSpec, StoredPersona

SECTION_TITLES = {
    "demographic": "Demographic",
    "firmographic": "Firmographic",
    "behavioral": "Behavioral",
    "psychographic": "Psychographic",
}
FIELD_LABELS = {
    "job_titles": "Job titles",
    "seniority": "Seniority",
    "experience_years": "Experience",
    "age": "Age",
    "education": "Education",
    "locations": "Locations",
    "industries": "Industries",
    "employees": "Employees",
    "annual_revenue_usd": "Annual revenue",
    "regions": "Regions",
    "stages": "Stages",
    "channels": "Channels",
    "content": "Content",
    "tools": "Tools",
    "triggers": "Buying triggers",
    "buying_process": "Buying process",
    "values": "Values",
    "motivations": "Motivations",
    "attitudes": "Attitudes",
    "interests": "Interests",
}


def money(value: float) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"${value / limit:.3g}{suffix}"
    return f"${value:,.0f}"


def format_range(rng: IntRange, *, unit: str = "", is_money: bool = False) -> str:
    def show(v: int) -> str:
        return money(v) if is_money else f"{v:,}"

    if rng.min is not None and rng.max is not None:
        text = f"{show(rng.min)}–{show(rng.max)}"
    elif rng.min is not None:
        text = f"{show(rng.min)}+"
    elif rng.max is not None:
        text = f"up to {show(rng.max)}"
    else:
        return ""
    return f"{text} {unit}".strip()


def _section_fields(spec: PersonaSpec, section: str) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for name, value in getattr(spec, section).to_dict().items():
        label = FIELD_LABELS.get(name, name.replace("_", " ").capitalize())
        if isinstance(value, list):
            shown = ", ".join(value)
        elif isinstance(value, dict):
            unit = "years" if name in ("age", "experience_years") else ""
            shown = format_range(
                IntRange.from_dict(value) or IntRange(), unit=unit, is_money=name.endswith("_usd")
            )
        else:
            shown = str(value)
        if shown:
            pairs.append((label, shown))
    return tuple(pairs)


def card_key(persona: StoredPersona, now: datetime, *, can_review: bool) -> tuple[object, ...]:
    """What ``persona_card(persona, now, can_review=...)`` depends on: two calls with the same
    key (in one catalog version) give equal cards."""
    days = None if persona.last_reviewed_at is None else (now - persona.last_reviewed_at).days
    return ("card", persona.key, can_review, days)


def reviewed_text(persona: StoredPersona, now: datetime) -> str:
    if persona.last_reviewed_at is None:
        return "never reviewed"
    days = (now - persona.last_reviewed_at).days
    ago = "today" if days <= 0 else ("yesterday" if days == 1 else f"{days} days ago")
    return f"last reviewed {persona.last_reviewed_at:%Y-%m-%d} ({ago})"


def persona_card(
    persona: StoredPersona, now: datetime, *, buttons: bool = True, can_review: bool = False
) -> Reply:
    """The rich card of one persona: every data type, goals, pains, objections, owner.
    ``can_review`` (the viewer owns it or is an admin) adds "Mark reviewed" and "Edit"."""
    spec = persona.spec
    blocks: list[Block] = [Header(spec.name)]
    if spec.photo_url:
        blocks.append(Image(spec.photo_url, f"Photo of {spec.name}"))
    blocks.append(Text(spec.summary, title=spec.role))
    if spec.background:
        blocks.append(Text(spec.background, title="Story"))
    for section, title in SECTION_TITLES.items():
        pairs = _section_fields(spec, section)
        if pairs:
            blocks.append(Fields(pairs, title=title))
    for title, items in (
        ("Goals", spec.goals),
        ("Pain points", spec.pain_points),
        ("Objections", spec.objections),
    ):
        if items:
            blocks.append(Text(title=title, items=tuple(items)))
    owner = f"Owner: {spec.owner}" if spec.owner else "No owner"
    blocks.append(Context(f"{owner} · {reviewed_text(persona, now)} · key: {spec.key}"))
    if buttons:
        blocks.append(
            Buttons(
                (
                    Button("👍 Helpful", "rate", f"{spec.key} up"),
                    Button("👎 Not helpful", "rate", f"{spec.key} down"),
                    *((Button("✅ Mark reviewed", "review", spec.key),) if can_review else ()),
                    *((Button("✏️ Edit", "edit", spec.key),) if can_review else ()),
                )
            )
        )
    return Reply(
        summary=f"{spec.name}: {spec.role}",
        blocks=tuple(blocks),
        kind="card",
        persona_key=spec.key,
    )


def persona_list(personas: Sequence[StoredPersona], now: datetime) -> Reply:
    lines = tuple(f"{p.name} ({p.key}): {p.spec.role}" for p in personas)
    blocks: list[Block] = [
        Header(f"{len(personas)} persona{'s' if len(personas) != 1 else ''}"),
        Text(items=lines),
    ]
    if personas:
        blocks.append(Buttons(tuple(Button(p.name, "lookup", p.key) for p in personas[:5])))
    blocks.append(Context("Look one up with `/persona NAME`, for example `/persona fiona`."))
    return Reply(summary=f"{len(personas)} personas", blocks=tuple(blocks), kind="list")


def suggestions(message: str, personas: Sequence[StoredPersona]) -> Reply:
    return Reply(
        summary=message,
        blocks=(
            Text(message),
            Buttons(tuple(Button(p.name, "lookup", p.key) for p in personas)),
        ),
        kind="suggest",
        data={"suggestions": [p.key for p in personas]},
    )
