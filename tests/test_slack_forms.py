"""The Slack editor translators: the modal within Slack's limits whatever the form holds,
submissions read back exactly, and acknowledgements Slack accepts."""

from __future__ import annotations

import json

import pytest

from adapters.slack.forms import (
    FormMeta,
    editor_view,
    form_submission,
    inline_errors,
    submission_ack,
)
from adapters.slack.translate import MalformedPayload
from bot.model import Form, FormField, Reply
from tests.fakes.slack_api import view_problems
from tests.fakes.slack_wire import view_submission_payload


def form(*fields: FormField, errors: dict[str, str] | None = None) -> Form:
    return Form(
        title="Edit Finance Fiona",
        submit_verb="save",
        submit_label="Save",
        fields=fields,
        state={"mode": "edit", "revision": "4", "key": "finance-fiona"},
        errors=errors or {},
    )


def test_each_kind_of_field_is_the_right_input() -> None:
    view = editor_view(
        form(
            FormField("role", "Role", value="CFO", required=True),
            FormField("goals", "Goals", "lines", "Close fast\nAudit", hint="One per line."),
            FormField("size.min", "From", "number", "200"),
            FormField("size.max", "To", "number"),
            FormField("odd", "Not a whole number", "number", "12.5"),
            FormField("notify", "Notify?", "choice", "no", choices=(("yes", "Y"), ("no", "N"))),
        ),
        channel="C1",
    )
    assert view_problems(view) == []
    blocks = {b["block_id"]: b for b in view["blocks"]}
    assert blocks["role"]["optional"] is False and blocks["goals"]["optional"] is True
    assert blocks["goals"]["element"]["multiline"] is True
    assert blocks["goals"]["hint"]["text"] == "One per line."
    assert blocks["size.min"]["element"] == {
        "type": "number_input",
        "action_id": "value",
        "is_decimal_allowed": False,
        "initial_value": "200",
    }
    assert "initial_value" not in blocks["size.max"]["element"]
    assert blocks["odd"]["element"]["type"] == "plain_text_input"  # shown as typed, not lost
    assert blocks["notify"]["element"]["initial_option"]["value"] == "no"


def test_a_value_longer_than_an_input_is_not_cut_but_left_out_and_named() -> None:
    view = editor_view(form(FormField("background", "Story", "textarea", "x" * 3001)))
    assert view_problems(view) == []
    assert [b["type"] for b in view["blocks"]] == ["section"]
    assert "3,001 characters" in view["blocks"][0]["text"]["text"]
    assert FormMeta.decode(view["private_metadata"]).unshown == ("background",)
    submitted, _ = form_submission(view_submission_payload(view))
    assert submitted.fields["unshown"] == "background"


def test_headings_give_way_before_any_input_and_a_form_too_big_is_refused() -> None:
    many = [FormField(f"f{i}", f"Field {i}", section=f"Section {i}") for i in range(60)]
    view = editor_view(form(*many))
    assert view_problems(view) == [] and len(view["blocks"]) == 60
    with pytest.raises(ValueError, match="does not fit"):
        editor_view(form(*(FormField(f"f{i}", "F") for i in range(101))))


def test_metadata_round_trips_and_drops_the_response_url_rather_than_overflow() -> None:
    meta = FormMeta("save", {"mode": "edit", "key": "k"}, "C1", "https://hooks.example/r")
    assert FormMeta.decode(meta.encode()) == meta
    huge = FormMeta("save", {"mode": "edit"}, "C1", "https://hooks.example/" + "r" * 3000)
    encoded = huge.encode()
    assert len(encoded) <= 3000
    assert FormMeta.decode(encoded) == FormMeta("save", {"mode": "edit"}, "C1", "")
    for junk in ("", "not json", "[]", '{"v": 1, "s": {}}', '{"v": "save", "s": []}'):
        with pytest.raises(MalformedPayload):
            FormMeta.decode(junk)


def test_a_submission_reads_every_input_and_the_state_wins() -> None:
    view = editor_view(
        form(
            FormField("role", "Role", value="CFO"),
            FormField("summary", "Summary", "textarea", "Old"),
            FormField("size.min", "From", "number", "200"),
            FormField("notify", "Notify?", "choice", "yes", choices=(("yes", "Y"), ("no", "N"))),
            FormField("mode", "A field named like the state", value="new"),
        ),
        channel="C9",
    )
    payload = view_submission_payload(view, {"summary": "", "notify": "no", "size.min": "300"})
    payload["view"]["state"]["values"]["<b>"] = {"value": {"type": "plain_text_input"}}
    command, meta = form_submission(payload, email="sam@example.com")
    assert (command.verb, command.source, command.user.email) == ("save", "form", "sam@example.com")
    assert command.conversation.channel == "C9" == meta.channel
    assert dict(command.fields) == {
        "role": "CFO",
        "summary": "",
        "size.min": "300",
        "notify": "no",
        "mode": "edit",
        "revision": "4",
        "key": "finance-fiona",
    }


def test_inline_errors_are_short_and_only_on_inputs_the_view_has() -> None:
    errors = inline_errors(
        form(
            FormField("role", "Role"),
            FormField("background", "Story"),
            errors={"role": "x" * 400, "background": "too long"},
        ),
        ["role", "summary"],
    )
    assert list(errors) == ["role"]
    assert len(errors["role"]) == 150 and errors["role"].endswith("…")
    short = inline_errors(form(errors={"background": "too long"}), ["summary"])
    assert short == {"summary": "background: too long"}


def test_what_the_acknowledgement_says() -> None:
    meta = FormMeta("save", {"mode": "edit"}, "C1")
    view = editor_view(form(FormField("role", "Role")))
    with_errors = Reply(
        "x", kind="form", form=form(FormField("role", "Role"), errors={"role": "no"})
    )
    assert submission_ack(with_errors, meta, view) == {
        "response_action": "errors",
        "errors": {"role": "no"},
    }
    assert submission_ack(Reply("saved", kind="card"), meta, view) == {"response_action": "clear"}
    refused = submission_ack(Reply.text("Only admins can.", kind="error"), meta, view)
    assert refused["response_action"] == "update" and view_problems(refused["view"]) == []
    assert json.loads(refused["view"]["private_metadata"])["c"] == "C1"
