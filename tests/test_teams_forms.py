"""The Teams editor translators: a form card within the size limit that never cuts a value,
and submissions read back into exactly the fields of the form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botbuilder.schema import Activity

from adapters.teams.forms import card_for, form_card, form_submission
from adapters.teams.translate import CARD_LIMIT, card_size
from bot.model import Form, FormField, Reply

PAYLOADS = Path(__file__).parent / "payloads" / "teams"


def activity(payload: str, **changes: Any) -> Activity:
    body = json.loads((PAYLOADS / f"{payload}.json").read_text(encoding="utf-8"))
    body.update(changes)
    return Activity().deserialize(body)


def form(*fields: FormField, errors: dict[str, str] | None = None) -> Form:
    return Form(
        title="Edit Finance Fiona",
        submit_verb="save",
        submit_label="Save",
        fields=fields,
        state={"mode": "edit", "revision": "2", "key": "finance-fiona"},
        errors=errors or {},
    )


def inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in card["body"] if e["type"].startswith("Input.")}


def test_a_card_too_big_leaves_out_the_longest_values_whole_and_says_so() -> None:
    fields = [
        FormField(f"f{i}", f"Field {i}", "textarea", f"{i}" * (1000 + 500 * i)) for i in range(10)
    ]
    card = form_card(form(*fields, errors={"f0": "e" * 2000}))
    assert card_size(card) <= CARD_LIMIT
    shown = inputs(card)
    unshown = card["actions"][0]["data"]["pbForm"]["unshown"].split(",")
    assert set(shown) | set(unshown) == {f.name for f in fields} and not set(shown) & set(unshown)
    assert "f9" in unshown and "f0" in shown  # the longest go first
    for form_field in fields:
        if form_field.name in shown:
            assert shown[form_field.name]["value"] == form_field.value  # never cut
    text = json.dumps(card["body"], ensure_ascii=False)
    assert "Field 9: 5,500 characters, too long to show in a Teams card" in text
    assert "e" * 2000 not in text  # display text of a problem is shortened instead


def test_numbers_beyond_what_a_client_holds_exactly_are_text() -> None:
    card = form_card(
        form(
            FormField("a.min", "From", "number", "200"),
            FormField("a.max", "To", "number", "90071992547409930"),
            FormField("b.min", "Odd", "number", "twelve"),
        )
    )
    shown = inputs(card)
    assert shown["a.min"] == {"type": "Input.Number", "value": 200, "id": "a.min", "label": "From"}
    assert shown["a.max"]["type"] == shown["b.min"]["type"] == "Input.Text"
    assert shown["a.max"]["value"] == "90071992547409930"


def test_card_for_renders_forms_and_everything_else() -> None:
    plain = card_for(Reply.text("Hello"))
    assert plain["body"][0]["inlines"][0]["text"] == "Hello"
    editor = card_for(Reply("x", kind="form", form=form(FormField("role", "Role", value="CFO"))))
    assert inputs(editor)["role"]["value"] == "CFO"


def test_a_submission_keeps_only_the_fields_and_the_state_wins() -> None:
    value = {
        "verb": "save",
        "args": "",
        "pbForm": {
            "mode": "edit",
            "revision": "2",
            "key": "finance-fiona",
            "unshown": "background",
        },
        "role": "CFO",
        "firmographic.employees.min": 200.0,
        "review_every_days": 90,
        "mode": "new",
        "<script>": "x",
        "nested": {"a": 1},
        "flag": True,
    }
    command = form_submission(activity("personal_message", text=None, value=value))
    assert command is not None
    assert (command.verb, command.source, command.user.id) == (
        "save",
        "form",
        "5d0f1e2a-7b3c-4d9e-8f10-a1b2c3d4e5f6",
    )
    assert dict(command.fields) == {
        "role": "CFO",
        "firmographic.employees.min": "200",
        "review_every_days": "90",
        "unshown": "background",
        "mode": "edit",
        "revision": "2",
        "key": "finance-fiona",
    }


def test_other_activities_are_not_form_submissions() -> None:
    assert form_submission(activity("personal_message")) is None
    button = {"verb": "rate", "args": "finance-fiona up"}
    assert form_submission(activity("personal_message", text=None, value=button)) is None
    bad_verb = {"verb": "Save It", "pbForm": {}}
    assert form_submission(activity("personal_message", text=None, value=bad_verb)) is None
    execute = activity(
        "personal_message",
        type="invoke",
        name="adaptiveCard/action",
        text=None,
        value={
            "action": {
                "type": "Action.Execute",
                "data": {"verb": "save", "pbForm": {}, "role": "X"},
            }
        },
    )
    command = form_submission(execute)
    assert command is not None and command.fields["role"] == "X"
