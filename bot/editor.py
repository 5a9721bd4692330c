"""Editing personas where people work: the neutral editor form and its handlers.

``/persona edit NAME`` (owners and admins) and ``/persona new`` (admins) answer with a ``Form``
pre-filled with the current version; Slack shows it as a modal, Teams as a card with inputs.
Submitting dispatches ``save`` with the form's values. Validation is the persona file
validator itself (same rules, same messages), mapped back onto the form's fields; nothing is
saved until everything is valid. The form carries the revision it was opened at, so a save
over somebody else's newer change is refused with "reload" (optimistic locking), never
silently overwriting it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot import cards, messages
from bot.errors import CommandError, PermissionDenied
from bot.model import Button, Buttons, Context, Form, FormField, Reply, Text
from bot.permissions import Role, can_change
from bot.resolve import resolve_persona
from bot.router import Turn
from persona_store.records import PersonaSpec, StoredPersona
from persona_store.schema import Problem, validate_persona_mapping
from persona_store.store import StaleRevision

LINES_HINT = "One per line."


@dataclass(frozen=True)
class _Input:
    path: str  # dotted path in the persona mapping; ranges end in .min / .max
    label: str
    kind: str = "text"
    section: str | None = None
    hint: str | None = None


def _range(path: str, label: str, unit: str = "") -> tuple[_Input, _Input]:
    suffix = f" ({unit})" if unit else ""
    return (
        _Input(f"{path}.min", f"{label}: from{suffix}", "number"),
        _Input(f"{path}.max", f"{label}: to{suffix}", "number"),
    )


INPUTS: tuple[_Input, ...] = (
    _Input("role", "Role (one line)", section="Profile"),
    _Input("summary", "Summary", "textarea"),
    _Input("background", "Story", "textarea"),
    _Input("photo_url", "Photo URL (https)"),
    _Input("owner", "Owner (email or user id)", hint="Who reviews this persona."),
    _Input("review_every_days", "Review every N days", "number"),
    _Input("demographic.job_titles", "Job titles", "lines", "Demographic", LINES_HINT),
    _Input("demographic.seniority", "Seniority", "lines"),
    *_range("demographic.experience_years", "Experience", "years"),
    *_range("demographic.age", "Age", "years"),
    _Input("demographic.education", "Education", "lines"),
    _Input("demographic.locations", "Locations", "lines"),
    _Input("firmographic.industries", "Industries", "lines", "Firmographic", LINES_HINT),
    *_range("firmographic.employees", "Employees"),
    *_range("firmographic.annual_revenue_usd", "Annual revenue", "USD"),
    _Input("firmographic.regions", "Regions", "lines"),
    _Input("firmographic.stages", "Stages", "lines"),
    _Input("behavioral.channels", "Channels", "lines", "Behavioral", LINES_HINT),
    _Input("behavioral.content", "Content", "lines"),
    _Input("behavioral.tools", "Tools", "lines"),
    _Input("behavioral.triggers", "Buying triggers", "lines"),
    _Input("behavioral.buying_process", "Buying process", "textarea"),
    _Input("psychographic.values", "Values", "lines", "Psychographic", LINES_HINT),
    _Input("psychographic.motivations", "Motivations", "lines"),
    _Input("psychographic.attitudes", "Attitudes", "lines"),
    _Input("psychographic.interests", "Interests", "lines"),
    _Input("goals", "Goals", "lines", "Goals, pains and objections", LINES_HINT),
    _Input("pain_points", "Pain points", "lines"),
    _Input("objections", "Objections", "lines"),
    _Input("keywords", "Keywords", "lines"),
)
NEW_INPUTS = (
    _Input("key", "Key (a-z, 0-9 and -, e.g. finance-fiona)", section="New persona"),
    _Input("name", "Name"),
)
NOTIFY_FIELD = "notify"
# Inputs a platform could not show (a value longer than its input or card holds), as a
# comma-separated list: they are kept as the persona has them, never emptied.
UNSHOWN_FIELD = "unshown"
REQUIRED = {"key", "name", "role", "summary"}
_INDEX = re.compile(r"\[\d+\]$")
FORM_DAMAGED = "This editor can no longer be read. Nothing was saved: open the editor again."


def _get(mapping: Mapping[str, Any], path: str) -> Any:
    value: Any = mapping
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "\n".join(str(v) for v in value)
    return str(value)


def persona_form(
    spec: PersonaSpec | None,
    *,
    revision: int,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> Form:
    """The editor, pre-filled from ``spec`` (or from submitted ``values`` after an error)."""
    current = spec.to_dict() if spec else {}
    inputs = INPUTS if spec else (*NEW_INPUTS, *INPUTS)
    fields = []
    for item in inputs:
        shown = values.get(item.path, "") if values is not None else _show(_get(current, item.path))
        fields.append(
            FormField(
                name=item.path,
                label=item.label,
                kind=item.kind,  # type: ignore[arg-type]
                value=shown,
                required=item.path in REQUIRED,
                hint=item.hint,
                section=item.section,
            )
        )
    notify = (values or {}).get(NOTIFY_FIELD, "yes")
    fields.append(
        FormField(
            name=NOTIFY_FIELD,
            label="Tell people who looked this persona up in the last 30 days what changed",
            kind="choice",
            value=notify,
            choices=(("yes", "Yes, send a change note"), ("no", "No")),
            section="After saving",
        )
    )
    title = f"Edit {spec.name}" if spec else "New persona"
    state = {"mode": "edit" if spec else "new", "revision": str(revision)}
    if spec:
        state["key"] = spec.key
    return Form(
        title=title[:24],
        submit_verb="save",
        submit_label="Save",
        fields=tuple(fields),
        state=state,
        errors=dict(errors or {}),
        intro=f"Editing revision {revision}." if spec else None,
    )


def mapping_from_form(values: Mapping[str, str], base: PersonaSpec | None) -> dict[str, Any]:
    """The persona mapping a submitted form describes (empty inputs mean "not set")."""
    data: dict[str, Any] = {}
    if base is not None:
        data["key"], data["name"] = base.key, base.name
    kinds = {i.path: i.kind for i in (*NEW_INPUTS, *INPUTS)}
    for path, kind in kinds.items():
        if path not in values:
            continue
        raw = values[path].strip()
        if not raw:
            continue
        value: Any = raw
        if kind == "lines":
            value = [line.strip() for line in raw.splitlines() if line.strip()]
        elif kind == "number":
            cleaned = raw.replace(",", "").replace("_", "")
            # More digits than Python converts (4,300) stay text: the validator refuses them.
            value = int(cleaned) if re.fullmatch(r"-?\d{1,4000}", cleaned) else raw
        target = data
        parts = path.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return data


def field_errors(problems: tuple[Problem, ...], form_fields: set[str]) -> dict[str, str]:
    """Attach each validator problem to the form input it is about."""
    errors: dict[str, str] = {}
    fallback = "role" if "role" in form_fields else next(iter(sorted(form_fields)))
    for problem in problems:
        path = _INDEX.sub("", problem.field)
        name = next((c for c in (path, f"{path}.min", f"{path}.max") if c in form_fields), fallback)
        message = problem.message
        errors[name] = f"{errors[name]}; {message}" if name in errors else message
    return errors


def _can_edit(turn: Turn, persona: StoredPersona, action: str = "edit") -> None:
    if not can_change(turn.user, turn.role, persona):
        raise PermissionDenied(
            messages.not_allowed(f"{action} {persona.name}", "its owner and admins"),
            hint=f"Suggest a change with `/persona feedback {persona.key} ...` instead.",
        )


async def edit_handler(turn: Turn) -> Reply:
    if not turn.command.args:
        raise CommandError(messages.needs_argument("edit", "fiona"))
    persona = await resolve_persona(turn, turn.command.args)
    _can_edit(turn, persona)
    turn.usage.persona_id, turn.usage.matched = persona.id, True
    form = persona_form(persona.spec, revision=persona.revision)
    return Reply(
        summary=f"Editing {persona.name}",
        blocks=(Text(f"The editor for {persona.name} is open."),),
        kind="form",
        persona_key=persona.key,
        form=form,
    )


async def new_handler(turn: Turn) -> Reply:
    if turn.role is not Role.ADMIN:
        raise PermissionDenied(messages.not_allowed("create personas", "admins"))
    return Reply(
        summary="New persona",
        blocks=(Text("The editor for a new persona is open."),),
        kind="form",
        form=persona_form(None, revision=0),
    )


async def save_handler(turn: Turn) -> Reply:
    """A submitted editor: validate like the importer, check the revision, save."""
    values = dict(turn.command.fields)
    mode = values.get("mode", "edit")
    try:
        revision = int(values.get("revision", "0") or 0)
    except ValueError:  # the hidden state came back damaged: the form cannot be trusted
        raise CommandError(FORM_DAMAGED) from None
    catalog = await turn.catalog()
    runtime = turn.runtime
    base: StoredPersona | None = None
    if mode == "edit":
        key = values.get("key", "")
        base = catalog.get(key) or await runtime.db(runtime.store.get_persona, turn.org_id, key)
        if base is None:
            raise CommandError(messages.no_match(key), hint=messages.LIST_HINT)
        _can_edit(turn, base)
    elif turn.role is not Role.ADMIN:
        raise PermissionDenied(messages.not_allowed("create personas", "admins"))
    _restore_unshown(values, base)
    spec, problems = validate_persona_mapping(
        mapping_from_form(values, base.spec if base else None)
    )
    if mode == "new" and spec is not None and catalog.get(spec.key) is not None:
        problems = (Problem(0, "key", f"a persona with key '{spec.key}' already exists"),)
        spec = None
    if spec is None:
        form = persona_form(base.spec if base else None, revision=revision, values=values)
        errors = field_errors(problems, {f.name for f in form.fields})
        form = persona_form(
            base.spec if base else None, revision=revision, values=values, errors=errors
        )
        return Reply(
            summary=f"{len(problems)} problem(s): nothing was saved",
            blocks=(Text(f"Nothing was saved: {len(problems)} problem(s) to fix."),),
            kind="form",
            persona_key=base.key if base else None,
            form=form,
        )
    try:
        saved = await runtime.db(
            runtime.store.save_persona,
            turn.org_id,
            spec,
            turn.user.label,
            expected_revision=revision if mode == "edit" else 0,
            note="edited in chat",
            now=runtime.clock(),
        )
    except StaleRevision as exc:
        return Reply(
            summary=f"{spec.name} changed since you opened the editor",
            blocks=(
                Text(
                    f"{spec.name} was changed by someone else since you opened the editor "
                    f"(revision {exc.expected}, now {exc.actual}). Nothing was saved: reload "
                    "the editor to see the new version, then make your change again."
                ),
                Buttons((Button("Reload the editor", "edit", spec.key, "primary"),)),
            ),
            kind="error",
            persona_key=spec.key,
        )
    runtime.catalogs.invalidate(turn.org_id)
    turn.usage.persona_id, turn.usage.matched = saved.id, True
    changed = saved.revision != revision
    notified = 0
    if changed and values.get(NOTIFY_FIELD, "yes") == "yes" and mode == "edit":
        notified = await notify_change(turn, saved)
    card = cards.persona_card(saved, runtime.clock(), can_review=True)  # the editor may edit
    if not changed:
        note = "Nothing changed; the persona is as it was."
    else:
        note = f"Saved as revision {saved.revision}."
        if notified:
            note += f" {notified} recent viewer(s) will be told what changed."
    return Reply(
        summary=f"{saved.name}: {note}",
        blocks=(Context(note), *card.blocks),
        kind="card",
        persona_key=saved.key,
    )


def _restore_unshown(values: dict[str, str], base: StoredPersona | None) -> None:
    """Fill the inputs the platform could not show with the persona's own values (if it
    changed meanwhile, the revision check refuses the save anyway)."""
    names = [n for n in values.pop(UNSHOWN_FIELD, "").split(",") if n]
    if base is None or not names:
        return
    current = {f.name: f.value for f in persona_form(base.spec, revision=base.revision).fields}
    values.update({name: current[name] for name in names if name in current})


async def archive_handler(turn: Turn) -> Reply:
    if not turn.command.args:
        raise CommandError(messages.needs_argument("archive", "fiona"))
    persona = await resolve_persona(turn, turn.command.args)
    _can_edit(turn, persona, "archive")
    runtime = turn.runtime
    await runtime.db(
        runtime.store.archive_persona,
        turn.org_id,
        persona.key,
        turn.user.label,
        now=runtime.clock(),
    )
    runtime.catalogs.invalidate(turn.org_id)
    turn.usage.persona_id, turn.usage.matched = persona.id, True
    return Reply.text(
        f"{persona.name} is archived: hidden from lookup and matching, its history kept. "
        "Importing it again brings it back."
    )


async def notify_change(turn: Turn, persona: StoredPersona) -> int:
    """Queue change notes for recent viewers (when something delivers proactive messages);
    returns how many were queued."""
    sender = turn.runtime.change_notifier
    if sender is None:
        return 0
    return await sender(turn.org_id, persona, turn.user.id)
