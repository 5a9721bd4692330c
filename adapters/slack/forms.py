"""The persona editor in Slack: the neutral ``Form`` as a modal, its submission as a Command.

``editor_view`` builds the modal (one input block per form field, its block id the field's
name), ``form_submission`` reads a ``view_submission`` back into the ``save`` Command, and
``submission_ack`` turns the core's answer into what Slack expects in the acknowledgement:
``errors`` shown next to the inputs, ``clear`` after a save, or ``update`` to a notice (the
persona changed meanwhile, or the editor may not save it). Pure functions, no I/O.

Slack's limits are kept here: 100 blocks per view, labels and hints of 2,000 characters,
inputs of 3,000 (a longer value is not shown and is kept as it is, and the modal says so:
it is never cut, which would save it shorter), error messages of about 150 characters and
``private_metadata`` of 3,000. The metadata carries the form's hidden state and where to
post the saved card; it is read back as it was sent, but nothing in it grants anything: the
core checks who may save on every submission.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.editor import UNSHOWN_FIELD
from bot.model import (
    Button,
    Buttons,
    Command,
    ConversationRef,
    Form,
    FormField,
    Reply,
    ReplyKind,
    Text,
)

from . import texts
from .translate import (
    HEADER_LIMIT,
    MODAL_TITLE_LIMIT,
    TEXT_LIMIT,
    VIEW_BLOCKS,
    MalformedPayload,
    blocks_from_reply,
    clip,
    escape_mrkdwn,
    payload_team,
    payload_user,
)

FORM_CALLBACK = "pb_form"  # the editor itself
NOTICE_CALLBACK = "pb_form_notice"  # what replaced it: "changed meanwhile", a refusal, saving
EDITOR_CALLBACKS = frozenset({FORM_CALLBACK, NOTICE_CALLBACK})
ACTION_ID = "value"
INPUT_LIMIT = 3000  # plain_text_input initial_value and max_length
LABEL_LIMIT = 2000
ERROR_LIMIT = 150
METADATA_LIMIT = 3000
OPTION_LIMIT = 75
OPTION_VALUE_LIMIT = 150
BLOCK_ID_LIMIT = 255
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+){0,3}$")
_INTEGER = re.compile(r"^-?\d{1,15}$")  # what a number_input can hold exactly


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": True}


def _section(mrkdwn: str) -> dict[str, Any]:
    text = {"type": "mrkdwn", "text": clip(mrkdwn, TEXT_LIMIT), "verbatim": True}
    return {"type": "section", "text": text}


@dataclass(frozen=True)
class FormMeta:
    """What a modal carries in ``private_metadata``: the form's hidden state and submit verb,
    the inputs it could not show, and where the editor was opened (for the saved card)."""

    verb: str
    state: Mapping[str, str]
    channel: str = ""
    response_url: str = ""
    unshown: tuple[str, ...] = ()

    def encode(self) -> str:
        data = {
            "v": self.verb,
            "s": dict(self.state),
            "c": self.channel,
            "u": self.response_url,
            "h": list(self.unshown),
        }
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        if len(text) > METADATA_LIMIT:  # the saved card then goes by direct message
            data["u"] = ""
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        if len(text) > METADATA_LIMIT:
            raise ValueError("the editor's hidden state does not fit Slack's private_metadata")
        return text

    @classmethod
    def decode(cls, raw: object) -> FormMeta:
        try:
            data = json.loads(raw) if isinstance(raw, str) else None
        except ValueError as exc:
            raise MalformedPayload("unreadable private_metadata") from exc
        if not isinstance(data, dict):
            raise MalformedPayload("unreadable private_metadata")
        verb, state, unshown = data.get("v"), data.get("s"), data.get("h", [])
        if not isinstance(verb, str) or not isinstance(state, dict):
            raise MalformedPayload("private_metadata without the editor's state")
        return cls(
            verb,
            {str(k): str(v) for k, v in state.items() if isinstance(v, str)},
            data["c"] if isinstance(data.get("c"), str) else "",
            data["u"] if isinstance(data.get("u"), str) else "",
            tuple(n for n in unshown if isinstance(n, str)) if isinstance(unshown, list) else (),
        )

    def without_form(self) -> FormMeta:
        """Only where the editor was opened: for notices whose buttons reopen it."""
        return FormMeta("", {}, self.channel, self.response_url)

    @classmethod
    def of_view(cls, view: object) -> FormMeta | None:
        """The metadata of one of the editor's own views, else None."""
        if not isinstance(view, dict) or view.get("callback_id") not in EDITOR_CALLBACKS:
            return None
        try:
            return cls.decode(view.get("private_metadata"))
        except MalformedPayload:
            return None


# the modal ---------------------------------------------------------------------------------


def _element(form_field: FormField) -> dict[str, Any]:
    value = form_field.value
    if form_field.kind == "choice":
        options = [
            {"text": _plain(label, OPTION_LIMIT), "value": choice[:OPTION_VALUE_LIMIT]}
            for choice, label in form_field.choices
        ]
        element: dict[str, Any] = {
            "type": "radio_buttons",
            "action_id": ACTION_ID,
            "options": options,
        }
        initial = next((o for o in options if o["value"] == value), None)
        if initial is not None:
            element["initial_option"] = initial
        return element
    if form_field.kind == "number" and (not value or _INTEGER.match(value)):
        element = {"type": "number_input", "action_id": ACTION_ID, "is_decimal_allowed": False}
        if value:
            element["initial_value"] = value
        return element
    limit = form_field.max_length or INPUT_LIMIT
    element = {
        "type": "plain_text_input",
        "action_id": ACTION_ID,
        "multiline": form_field.kind in ("textarea", "lines"),
        "max_length": min(max(limit, len(value)), INPUT_LIMIT),
    }
    if value:
        element["initial_value"] = value
    return element


def _input_block(form_field: FormField) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": form_field.name,
        "label": _plain(form_field.label, LABEL_LIMIT),
        "element": _element(form_field),
        "optional": not form_field.required,
    }
    if form_field.hint:
        block["hint"] = _plain(form_field.hint, LABEL_LIMIT)
    return block


def _error_context(message: str) -> dict[str, Any]:
    text = clip(escape_mrkdwn(f"⚠️ {message}"), TEXT_LIMIT)
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text, "verbatim": True}]}


def editor_view(
    form: Form, *, channel: str = "", response_url: str = "", show_errors: bool = False
) -> dict[str, Any]:
    """The modal of an editor form, pre-filled with the form's values.

    ``show_errors`` writes the form's errors into the view (for a form shown again with
    ``views.update``, where Slack's inline errors are not available)."""
    blocks: list[dict[str, Any]] = []
    headers: list[int] = []
    unshown: list[str] = []
    if form.intro:
        blocks.append(_section(escape_mrkdwn(form.intro)))
    if show_errors and form.errors:
        blocks.append(_section(texts.EDITOR_PROBLEMS.format(count=len(form.errors))))
    for form_field in form.fields:
        if len(form_field.name) > BLOCK_ID_LIMIT or not _FIELD_NAME.match(form_field.name):
            raise ValueError(f"form field name {form_field.name!r} is not a Slack block id")
        if form_field.section:
            headers.append(len(blocks))
            blocks.append({"type": "header", "text": _plain(form_field.section, HEADER_LIMIT)})
        if len(form_field.value) > INPUT_LIMIT:
            unshown.append(form_field.name)
            notice = texts.EDITOR_TOO_LONG.format(
                label=escape_mrkdwn(form_field.label),
                length=len(form_field.value),
                limit=INPUT_LIMIT,
            )
            blocks.append(_section(notice))
            continue
        blocks.append(_input_block(form_field))
        if show_errors and form_field.name in form.errors:
            blocks.append(_error_context(form.errors[form_field.name]))
    if len(blocks) > VIEW_BLOCKS:  # section headings are the only blocks a form can spare
        blocks = [b for i, b in enumerate(blocks) if i not in set(headers)]
    if len(blocks) > VIEW_BLOCKS:
        raise ValueError(f"a form of {len(form.fields)} fields does not fit in one Slack view")
    meta = FormMeta(form.submit_verb, form.state, channel, response_url, tuple(unshown))
    return {
        "type": "modal",
        "callback_id": FORM_CALLBACK,
        "title": _plain(form.title or texts.EDITOR_TITLE, MODAL_TITLE_LIMIT),
        "submit": _plain(form.submit_label, MODAL_TITLE_LIMIT),
        "close": _plain(texts.EDITOR_CANCEL, MODAL_TITLE_LIMIT),
        "private_metadata": meta.encode(),
        "blocks": blocks,
    }


def notice_view(reply: Reply, meta: FormMeta) -> dict[str, Any]:
    """A modal that shows a reply in place of the editor (its buttons, such as "Reload the
    editor", bring the editor back into the same modal)."""
    return {
        "type": "modal",
        "callback_id": NOTICE_CALLBACK,
        "title": _plain(texts.EDITOR_TITLE, MODAL_TITLE_LIMIT),
        "close": _plain(texts.MODAL_CLOSE, MODAL_TITLE_LIMIT),
        "private_metadata": meta.without_form().encode(),
        "blocks": blocks_from_reply(reply, limit=VIEW_BLOCKS)
        or [_section(escape_mrkdwn(reply.summary) or " ")],
    }


def saving_view(meta: FormMeta) -> dict[str, Any]:
    """What the modal shows while a slow save finishes."""
    return notice_view(Reply.text(texts.EDITOR_SAVING), meta)


def open_button(reply: Reply, message: str = texts.EDITOR_PRESS, kind: ReplyKind = "ack") -> Reply:
    """A form reply where no modal can be opened (a message event has no trigger, or Slack
    refused one): a button that opens the editor, since a click brings a fresh trigger."""
    form = reply.form
    key = form.state.get("key", "") if form is not None else ""
    verb = "edit" if key else "new"
    return Reply(
        summary=message,
        blocks=(Text(message), Buttons((Button(texts.EDITOR_OPEN, verb, key, "primary"),))),
        kind=kind,
        persona_key=reply.persona_key,
    )


def not_opened(reply: Reply) -> Reply:
    """What to say when Slack would not open the editor."""
    return open_button(reply, texts.EDITOR_NOT_OPENED, "error")


# the submission ----------------------------------------------------------------------------


def _submitted_value(element: object) -> str:
    if not isinstance(element, dict):
        return ""
    option = element.get("selected_option")
    if isinstance(option, dict):
        return str(option.get("value") or "")
    value = element.get("value")
    return value if isinstance(value, str) else ""


def form_submission(
    payload: Mapping[str, Any], *, email: str | None = None
) -> tuple[Command, FormMeta]:
    """A ``view_submission`` of the editor as the Command of the form's submit verb: every
    input by its field name, the hidden state, and the inputs that were not shown."""
    view = payload.get("view")
    if not isinstance(view, dict):
        raise MalformedPayload("missing view")
    meta = FormMeta.decode(view.get("private_metadata"))
    if not meta.verb:
        raise MalformedPayload("private_metadata without the form's verb")
    state = view.get("state") or {}
    values = (state.get("values") if isinstance(state, dict) else None) or {}
    if not isinstance(state, dict) or not isinstance(values, dict):
        raise MalformedPayload("unreadable view state")
    fields: dict[str, str] = {}
    for block_id, actions in values.items():
        if isinstance(actions, dict) and _FIELD_NAME.match(str(block_id)):
            fields[str(block_id)] = _submitted_value(actions.get(ACTION_ID))
    if meta.unshown:
        fields[UNSHOWN_FIELD] = ",".join(meta.unshown)
    fields.update(meta.state)  # the hidden state wins over any input of the same name
    conversation = ConversationRef("slack", payload_team(payload), meta.channel)
    key = meta.state.get("key", "")
    return (
        Command(
            payload_user(payload, email),
            conversation,
            meta.verb,
            "",
            f"{meta.verb} {key}".strip(),
            "form",
            fields,
        ),
        meta,
    )


def _input_ids(view: Mapping[str, Any]) -> list[str]:
    """The block ids of the inputs of a submitted view, in order."""
    blocks = view.get("blocks")
    ids = [
        str(b.get("block_id"))
        for b in (blocks if isinstance(blocks, list) else [])
        if isinstance(b, dict) and b.get("type") == "input" and b.get("block_id")
    ]
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    return ids or ([str(k) for k in values] if isinstance(values, dict) else [])


def inline_errors(form: Form, shown: Iterable[str]) -> dict[str, str]:
    """The form's errors by block id, each short enough for Slack; an error about an input
    the view does not show goes on the first input, named."""
    shown = list(shown)
    labels = {f.name: f.label for f in form.fields}
    errors: dict[str, str] = {}
    for name, message in form.errors.items():
        target = name
        if name not in shown:
            if not shown:
                continue
            target, message = shown[0], f"{labels.get(name, name)}: {message}"
        errors[target] = f"{errors[target]}; {message}" if target in errors else message
    return {name: clip(message, ERROR_LIMIT) for name, message in errors.items()}


def submission_ack(reply: Reply, meta: FormMeta, view: Mapping[str, Any]) -> dict[str, Any]:
    """The acknowledgement of an editor submission: inline errors, ``clear`` after a save
    (the card is posted separately), or the modal updated to say what happened."""
    if reply.form is not None and reply.form.errors:
        errors = inline_errors(reply.form, _input_ids(view))
        if errors:
            return {"response_action": "errors", "errors": errors}
    if reply.form is not None:
        view_update = editor_view(
            reply.form, channel=meta.channel, response_url=meta.response_url, show_errors=True
        )
        return {"response_action": "update", "view": view_update}
    if reply.kind == "card":
        return {"response_action": "clear"}
    return {"response_action": "update", "view": notice_view(reply, meta)}


def after_slow_save(reply: Reply, meta: FormMeta) -> dict[str, Any]:
    """The view that replaces "Saving…" once a slow save is done (inline errors are only
    possible in the acknowledgement, so the form comes back with its errors written in)."""
    if reply.form is not None:
        return editor_view(
            reply.form, channel=meta.channel, response_url=meta.response_url, show_errors=True
        )
    return notice_view(reply, meta)
