"""The persona editor in Teams: the neutral ``Form`` as an Adaptive Card with inputs, and its
submission read back into the ``save`` Command.

``form_card`` renders the form (``Input.Text``, ``Input.Number``, ``Input.ChoiceSet``, each
pre-filled, section headings, an ``Action.Submit`` whose data carries the submit verb and
the form's hidden state under ``pbForm``); after a failed save the same card comes back with
the problems listed at the top and written under each input (``errorMessage`` alone shows
only for Teams' own client-side checks). ``form_submission`` turns the ``value`` of the
submit activity into ``Command(verb="save", source="form", fields=...)``. ``card_for`` and
``activity_for`` render any reply, form or not. Pure functions, no I/O.

A card must stay under Teams' message size limit: when the values make it too big, the
longest are not shown and the card says so; the core then keeps the saved value (never a
value cut short, which would save it shorter). Display text (problems, hints) is cut with
"…" only where it is display text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from botbuilder.schema import Activity, ActivityTypes

from adapters.teams import texts
from adapters.teams.translate import (
    CARD_LIMIT,
    CARD_SCHEMA,
    CARD_VERSION,
    CardContent,
    activity_from_reply,
    card_from_reply,
    card_size,
    conversation_from_activity,
    teams_wording,
    tenant_of,
    user_from_activity,
)
from bot.editor import UNSHOWN_FIELD
from bot.model import Command, Form, FormField, Reply
from persona_store.schema import MAX_TEXT_CHARS

FORM_KEY = "pbForm"  # the Action.Submit data key that marks an editor submission
ERROR_LIMIT = 300  # characters of one problem shown in the card
TIGHT_ERROR_LIMIT = 80
SHOWN_AT_LEAST = 200  # values this short are always shown: the long ones make a card big
EXACT_NUMBERS = 2**53  # beyond this a JSON number loses digits in the Teams client
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+){0,3}$")
_VERB = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_INTEGER = re.compile(r"^-?\d{1,18}$")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rich(text: str, *, spacing: str | None = None, **style: Any) -> dict[str, Any]:
    """Plain text (TextRuns read no markdown), Teams' wording for commands."""
    block: dict[str, Any] = {
        "type": "RichTextBlock",
        "inlines": [{"type": "TextRun", "text": teams_wording(text) or " ", **style}],
    }
    if spacing:
        block["spacing"] = spacing
    return block


def _input(form_field: FormField, error: str | None) -> dict[str, Any]:
    value = form_field.value
    element: dict[str, Any]
    if form_field.kind == "choice":
        choices = [{"title": label, "value": choice} for choice, label in form_field.choices]
        element = {"type": "Input.ChoiceSet", "style": "expanded", "choices": choices}
        if any(c["value"] == value for c in choices):
            element["value"] = value
    elif form_field.kind == "number" and (
        not value or (_INTEGER.match(value) and abs(int(value)) < EXACT_NUMBERS)
    ):
        element = {"type": "Input.Number"}
        if value:
            element["value"] = int(value)
    else:
        element = {"type": "Input.Text", "isMultiline": form_field.kind in ("textarea", "lines")}
        limit = form_field.max_length or (MAX_TEXT_CHARS if form_field.kind != "lines" else 0)
        if limit:
            element["maxLength"] = max(limit, len(value))
        if value:
            element["value"] = value
    element["id"] = form_field.name
    element["label"] = form_field.label
    if form_field.required:
        element["isRequired"] = True
        element["errorMessage"] = error or texts.EDITOR_REQUIRED.format(label=form_field.label)
    elif error:
        element["errorMessage"] = error
    return element


def _build(form: Form, unshown: set[str], error_limit: int) -> dict[str, Any]:
    labels = {f.name: f.label for f in form.fields}
    errors = {name: _cut(message, error_limit) for name, message in form.errors.items()}
    body: list[dict[str, Any]] = [_rich(form.title, size="Large", weight="Bolder")]
    if form.intro:
        body.append(_rich(form.intro, spacing="Small", isSubtle=True))
    if errors:
        items = [_rich(texts.EDITOR_PROBLEMS.format(count=len(errors)), weight="Bolder")]
        items += [
            _rich(f"• {labels.get(name, name)}: {message}", spacing="None")
            for name, message in errors.items()
        ]
        body.append({"type": "Container", "style": "attention", "items": items})
    for form_field in form.fields:
        if form_field.section:
            body.append(_rich(form_field.section, spacing="Large", size="Medium", weight="Bolder"))
        if form_field.name in unshown:
            notice = texts.EDITOR_TOO_LONG.format(
                label=form_field.label, length=len(form_field.value)
            )
            body.append(_rich(notice, spacing="Medium", isSubtle=True))
            continue
        if form_field.hint:
            body.append(_rich(form_field.hint, spacing="Medium", isSubtle=True, size="Small"))
        error = errors.get(form_field.name)
        body.append(_input(form_field, error))
        if error:
            body.append(_rich(f"⚠️ {error}", spacing="None", color="Attention", size="Small"))
    state = {**form.state, "unshown": ",".join(sorted(unshown))}
    return {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "body": body,
        "actions": [
            {
                "type": "Action.Submit",
                "title": form.submit_label,
                "style": "positive",
                "data": {"verb": form.submit_verb, "args": "", FORM_KEY: state},
            }
        ],
        "msteams": {"width": "Full"},
    }


def form_card(form: Form, *, limit: int = CARD_LIMIT) -> dict[str, Any]:
    """The editor card of ``form``, within ``limit`` bytes: the longest values are left out
    (and the card says so) until it fits, then the problems' text is shortened."""
    unshown: set[str] = set()
    card = _build(form, unshown, ERROR_LIMIT)
    while card_size(card) > limit:
        candidates = [
            f for f in form.fields if f.name not in unshown and len(f.value) > SHOWN_AT_LEAST
        ]
        if not candidates:
            break
        unshown.add(max(candidates, key=lambda f: len(f.value)).name)
        card = _build(form, unshown, ERROR_LIMIT)
    if card_size(card) > limit:
        card = _build(form, unshown, TIGHT_ERROR_LIMIT)
    return card


def card_for(reply: Reply) -> dict[str, Any]:
    """The card of any reply: the editor for a form, else the usual card."""
    return form_card(reply.form) if reply.form is not None else card_from_reply(reply)


def activity_for(reply: Reply) -> Activity:
    """The message activity of any reply (see ``card_for``)."""
    if reply.form is None:
        return activity_from_reply(reply)
    return activity_from_reply(reply, CardContent(form_card(reply.form)))


def _text(value: object) -> str | None:
    """An input's submitted value as text (Input.Number may arrive as a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    return None


def form_submission(
    activity: Activity, *, tenant: str | None = None, email: str | None = None
) -> Command | None:
    """The editor's submission (a message whose ``value`` carries ``pbForm``, or the same
    data in an Action.Execute invoke) as the Command of its verb; None for anything else."""
    value = activity.value
    if activity.type == ActivityTypes.invoke and activity.name == "adaptiveCard/action":
        action = value.get("action") if isinstance(value, Mapping) else None
        value = action.get("data") if isinstance(action, Mapping) else None
    elif activity.type != ActivityTypes.message:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get(FORM_KEY), Mapping):
        return None
    verb = value.get("verb")
    if not isinstance(verb, str) or not _VERB.match(verb):
        return None
    state = {k: v for k, v in value[FORM_KEY].items() if isinstance(k, str) and isinstance(v, str)}
    fields: dict[str, str] = {}
    for name, submitted in value.items():
        text = _text(submitted)
        if name not in ("verb", "args", FORM_KEY) and _FIELD_NAME.match(name) and text is not None:
            fields[name] = text
    unshown = state.pop("unshown", "")
    if unshown:
        fields[UNSHOWN_FIELD] = unshown
    fields.update(state)  # the hidden state wins over any input of the same name
    tenant = tenant or tenant_of(activity) or ""
    return Command(
        user_from_activity(activity, email),
        conversation_from_activity(activity, tenant),
        verb,
        "",
        f"{verb} {state.get('key', '')}".strip(),
        "form",
        fields,
    )
