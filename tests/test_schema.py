"""Tests of the persona file format: parsing, every validation rule with its line, and export."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persona_store.records import (
    FIELD_ORDER,
    SECTION_TYPES,
    Behavioral,
    Demographic,
    Firmographic,
    IntRange,
    PersonaSpec,
    Psychographic,
)
from persona_store.schema import (
    MAX_FILE_BYTES,
    MAX_LIST_ITEMS,
    MAX_PERSONAS,
    MAX_TEXT_CHARS,
    PersonaFileError,
    Problem,
    dump_personas,
    load_persona_file,
    parse_persona_text,
    validate_persona_mapping,
)

DATA = Path(__file__).parent / "data" / "schema"

# A valid persona on lines 1-5; rule tests add or replace lines and know where they land.
BASE = """\
personas:
  - key: finance-fiona
    name: Finance Fiona
    role: VP Finance
    summary: Owns budget approval.
"""


def problems_of(text: str, **kwargs: Any) -> list[tuple[int, str, str]]:
    """(line, field, message) of every problem; fails if the text is valid."""
    with pytest.raises(PersonaFileError) as caught:
        parse_persona_text(text, **kwargs)
    return [(p.line, p.field, p.message) for p in caught.value.problems]


def only_problem(text: str, **kwargs: Any) -> tuple[int, str, str]:
    found = problems_of(text, **kwargs)
    assert len(found) == 1, found
    return found[0]


def with_lines(*lines: str, base: str = BASE) -> str:
    """The base persona plus persona-level lines, which start on line 6."""
    return base + "".join(f"    {line}\n" for line in lines)


def without(field: str) -> str:
    if field == "key":
        return BASE.replace("- key: finance-fiona\n    name:", "- name:")
    return "".join(line for line in BASE.splitlines(True) if f" {field}:" not in line)


def valid_mapping(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": "finance-fiona",
        "name": "Finance Fiona",
        "role": "VP Finance",
        "summary": "Owns budget approval.",
    }
    data.update(overrides)
    return data


# --- many problems at once


def test_yaml_file_with_several_errors_reports_each_on_its_line() -> None:
    with pytest.raises(PersonaFileError) as caught:
        load_persona_file(DATA / "five_errors.yaml")
    found = [(p.line, p.persona, p.field) for p in caught.value.problems]
    assert found == [
        (7, "finance-fiona", "photo_url"),
        (8, "finance-fiona", "firmografic"),
        (10, "controller-carlos", "name"),
        (13, "controller-carlos", "review_every_days"),
        (15, "controller-carlos", "demographic.age"),
        (16, "controller-carlos", "key"),
    ]
    messages = [p.message for p in caught.value.problems]
    assert "'http://example.com/fiona.png'" in messages[0]
    assert messages[1] == "unknown key 'firmografic' (did you mean 'firmographic'?)"
    assert messages[2] == "missing required field 'name'"
    assert "got a string ('ninety')" in messages[3]
    assert messages[4] == "demographic.age: min 500 is greater than max 200"
    assert "(first used on line 10)" in messages[5]


def test_json_file_with_several_errors_reports_each_on_its_line() -> None:
    with pytest.raises(PersonaFileError) as caught:
        load_persona_file(DATA / "five_errors.json")
    found = [(p.line, p.field) for p in caught.value.problems]
    assert found == [
        (8, "photo_url"),
        (9, "firmografic"),
        (13, "name"),
        (17, "review_every_days"),
        (19, "demographic.age"),
        (23, "key"),
        (27, "summary"),
    ]
    assert caught.value.problems[-1].message == "duplicate key 'summary' (first on line 26)"


def test_error_text_is_file_line_message_sorted_by_line() -> None:
    with pytest.raises(PersonaFileError) as caught:
        load_persona_file(DATA / "five_errors.yaml")
    lines = str(caught.value).splitlines()
    assert len(lines) == 6
    name = str(DATA / "five_errors.yaml")
    assert lines[1] == (
        f"{name}:8: finance-fiona: unknown key 'firmografic' (did you mean 'firmographic'?)"
    )
    assert (
        lines[4]
        == f"{name}:15: controller-carlos: demographic.age: min 500 is greater than max 200"
    )


def test_problem_format() -> None:
    assert Problem(3, "name", "missing required field 'name'").format("p.yaml") == (
        "p.yaml:3: missing required field 'name'"
    )
    assert Problem(4, "role", "role: must be a single line", "it-ivan").format("p.yaml") == (
        "p.yaml:4: it-ivan: role: must be a single line"
    )
    assert Problem(0, "", "file not found").format("p.yaml") == "p.yaml: file not found"


def test_complete_file_loads_every_field() -> None:
    [spec] = load_persona_file(DATA / "complete.yaml")
    assert spec.key == "finance-fiona"
    assert (
        spec.background == "Fiona became CFO after the Series C. She builds the board pack herself."
    )
    assert spec.photo_url == "https://example.com/fiona.png"
    assert spec.owner == "fiona.lead@example.com"
    assert spec.review_every_days == 30
    assert spec.demographic.age == IntRange(35, None)
    assert spec.firmographic.annual_revenue_usd == IntRange(20_000_000, 500_000_000)
    assert spec.behavioral.buying_process == "Sponsors the purchase.\nSigns above $50k."
    assert spec.psychographic.interests == ("FP&A",)
    assert spec.objections == ("We just finished an ERP project.",)
    assert spec.data_types_present() == list(SECTION_TYPES)


# --- top level


def test_valid_minimal_persona_gets_defaults() -> None:
    [spec] = parse_persona_text(BASE)
    assert spec == PersonaSpec(
        key="finance-fiona",
        name="Finance Fiona",
        role="VP Finance",
        summary="Owns budget approval.",
    )
    assert spec.review_every_days == 90


@pytest.mark.parametrize("text", ["personas: []\n", "personas:\n", '{"personas": []}'])
def test_empty_persona_list_is_allowed(text: str) -> None:
    assert parse_persona_text(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (1, "", "the file is empty; expected a mapping with a 'personas' list")),
        (
            "# only a comment\n",
            (1, "", "the file is empty; expected a mapping with a 'personas' list"),
        ),
        (
            "persona: []\n",
            (1, "persona", "unknown key 'persona' at the top level (did you mean 'personas'?)"),
        ),
        ("{}\n", (1, "", "missing top-level key 'personas'")),
        (
            "personas: fiona\n",
            (1, "", "personas: expected a list of personas, got a string ('fiona')"),
        ),
        (
            "- key: fiona\n",
            (
                1,
                "",
                "expected a mapping with a 'personas' list at the top level, got a list "
                "(put the list under 'personas:')",
            ),
        ),
        (
            "personas:\n  - fiona\n",
            (2, "", "personas[0]: expected a mapping (one persona), got a string ('fiona')"),
        ),
    ],
)
def test_top_level_rules(text: str, expected: tuple[int, str, str]) -> None:
    found = problems_of(text)
    assert expected in found, found


def test_missing_personas_key_is_an_error_even_with_other_keys() -> None:
    found = problems_of("people: []\n")
    assert found == [
        (1, "people", "unknown key 'people' at the top level (expected one of: personas)"),
        (1, "", "missing top-level key 'personas'"),
    ]


# --- required fields and text


@pytest.mark.parametrize("field", ["key", "name", "role", "summary"])
def test_each_required_field_is_reported_when_missing(field: str) -> None:
    assert only_problem(without(field)) == (2, field, f"missing required field {field!r}")


@pytest.mark.parametrize(
    ("value", "quoted", "hint"),
    [
        ("Finance Fiona", "'Finance Fiona'", " (e.g. 'finance-fiona')"),
        ("f", "'f'", ""),
        ("fin_fiona", "'fin_fiona'", " (e.g. 'fin-fiona')"),
        ("x" * 65, "'" + "x" * 57 + "...'", " (e.g. '" + "x" * 64 + "')"),
        ("Zoë", "'Zoë'", " (e.g. 'zoe')"),
    ],
)
def test_key_must_be_a_slug(value: str, quoted: str, hint: str) -> None:
    text = BASE.replace("key: finance-fiona", f"key: {value}")
    line, field, message = only_problem(text)
    assert (line, field) == (2, "key")
    assert message == (
        f"key: {quoted} is not a valid key; use 2-64 characters from a-z, 0-9 and '-'{hint}"
    )


def test_key_of_64_characters_is_valid() -> None:
    [spec] = parse_persona_text(BASE.replace("finance-fiona", "a" * 64))
    assert spec.key == "a" * 64


def test_duplicate_persona_key_points_at_the_first() -> None:
    text = BASE + BASE.removeprefix("personas:\n").replace("Finance Fiona", "Another")
    assert only_problem(text) == (
        6,
        "key",
        "key: duplicate persona key 'finance-fiona' (first used on line 2)",
    )


def test_duplicate_persona_key_is_reported_even_if_the_second_persona_has_other_errors() -> None:
    text = BASE + "  - key: finance-fiona\n"
    found = problems_of(text)
    assert (6, "key", "key: duplicate persona key 'finance-fiona' (first used on line 2)") in found
    assert (6, "name", "missing required field 'name'") in found


@pytest.mark.parametrize("value", ['""', "''", "'   '", "null", "~"])
def test_required_text_must_not_be_empty(value: str) -> None:
    text = BASE.replace("name: Finance Fiona", f"name: {value}")
    assert only_problem(text) == (3, "name", "name: must not be empty")


def test_name_must_be_text() -> None:
    text = BASE.replace("name: Finance Fiona", "name: [Finance, Fiona]")
    assert only_problem(text) == (3, "name", "name: expected text, got a list")


@pytest.mark.parametrize(
    ("value", "described"),
    [("2024", "an integer (2024)"), ("no", "a boolean (no)"), ("1.5", "a number (1.5)")],
)
def test_yaml_scalars_that_are_not_text_suggest_quotes(value: str, described: str) -> None:
    text = BASE.replace("name: Finance Fiona", f"name: {value}")
    assert only_problem(text) == (
        3,
        "name",
        f"name: expected text, got {described}; put it in quotes to use it as text",
    )


def test_role_must_be_one_line() -> None:
    text = BASE.replace("role: VP Finance", 'role: "VP Finance\\nand CFO"')
    assert only_problem(text) == (4, "role", "role: must be a single line, without line breaks")


def test_role_must_not_contain_a_unicode_line_separator() -> None:
    text = BASE.replace("role: VP Finance", 'role: "VP\u2028Finance"')
    assert only_problem(text) == (4, "role", "role: must be a single line, without line breaks")


def test_line_numbers_count_newlines_whatever_the_line_ends() -> None:
    unknown = (6, "nme", "unknown key 'nme' (did you mean 'name'?)")
    assert only_problem(with_lines("nme: x").replace("\n", "\r\n")) == unknown
    assert only_problem(with_lines("nme: x").replace("\n", "\r")) == unknown
    # YAML itself also breaks lines at U+2028, which editors do not show as a new line.
    text = with_lines("nme: x").replace("Owns budget approval.", '"Owns\u2028budget"')
    assert only_problem(text) == unknown
    text = json.dumps({"personas": [valid_mapping(nme="x")]}, indent=1).replace("\n", "\r\n")
    assert only_problem(text)[:2] == (8, "nme")


def test_summary_and_background_may_span_lines() -> None:
    text = with_lines("background: |", "  First line.", "  \tSecond line.")
    text = text.replace("summary: Owns budget approval.", 'summary: "One.\\r\\nTwo."')
    [spec] = parse_persona_text(text)
    assert spec.background == "First line.\n\tSecond line."
    assert spec.summary == "One.\nTwo."


def test_surrounding_whitespace_is_stripped() -> None:
    text = BASE.replace("name: Finance Fiona", "name: '  Finance Fiona \t'")
    text = with_lines("goals: ['  Cut costs  ']", base=text)
    [spec] = parse_persona_text(text)
    assert spec.name == "Finance Fiona"
    assert spec.goals == ("Cut costs",)


@pytest.mark.parametrize(
    ("escaped", "code"), [("\\a", "0007"), ("\\x1b", "001B"), ("\\x7f", "007F"), ("\\x85", "0085")]
)
def test_control_characters_are_errors(escaped: str, code: str) -> None:
    text = BASE.replace("name: Finance Fiona", f'name: "Finance{escaped} Fiona"')
    assert only_problem(text) == (
        3,
        "name",
        f"name: contains control character U+{code}; remove it",
    )


def test_tab_is_an_error_in_one_line_text_but_not_in_long_text() -> None:
    text = BASE.replace("name: Finance Fiona", 'name: "Finance\\tFiona"')
    assert only_problem(text) == (3, "name", "name: contains control character U+0009; remove it")
    [spec] = parse_persona_text(with_lines('background: "a\\tb"'))
    assert spec.background == "a\tb"


def test_raw_control_character_in_yaml_is_a_syntax_error_with_its_line() -> None:
    text = BASE.replace("role: VP Finance", "role: VP\x07Finance")
    line, field, message = only_problem(text)
    assert (line, field) == (4, "")
    assert message.startswith("invalid character U+0007")


def test_unpaired_surrogate_is_an_error_but_an_escaped_pair_is_joined() -> None:
    [spec] = parse_persona_text(BASE.replace("name: Finance Fiona", 'name: "Fiona \\ud83d\\ude00"'))
    assert spec.name == "Fiona 😀"
    text = BASE.replace("name: Finance Fiona", 'name: "Fiona \\ud83d"')
    assert only_problem(text)[2] == ("name: contains an unpaired surrogate U+D83D; remove it")


def test_text_longer_than_the_limit_is_an_error() -> None:
    ok = "x" * MAX_TEXT_CHARS
    [spec] = parse_persona_text(with_lines(f"background: {ok}"))
    assert spec.background == ok
    text = with_lines(f"background: {ok}y")
    assert only_problem(text) == (
        6,
        "background",
        f"background: too long ({MAX_TEXT_CHARS + 1:,} characters; "
        f"the limit is {MAX_TEXT_CHARS:,})",
    )


def test_long_values_are_truncated_in_messages() -> None:
    text = BASE.replace("key: finance-fiona", "key: " + "X" * 300)
    message = only_problem(text)[2]
    assert "XXX...'" in message
    assert "X" * 100 not in message


# --- optional fields


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/fiona.png",
        "/images/fiona.png",
        "fiona.png",
        "https://",
        "https:///fiona.png",
        "ftp://example.com/fiona.png",
        "https://exa mple.com/fiona.png",
        "https://[::1/fiona.png",
    ],
)
def test_photo_url_must_be_absolute_https_with_a_host(url: str) -> None:
    text = with_lines(f"photo_url: '{url}'")
    assert only_problem(text) == (
        6,
        "photo_url",
        f"photo_url: expected an absolute https:// URL with a host, got {url!r}",
    )


def test_valid_photo_url_and_owner() -> None:
    text = with_lines(
        "photo_url: https://cdn.example.com/p/fiona.png?size=2",
        "owner: U024BE7LH",
    )
    [spec] = parse_persona_text(text)
    assert spec.photo_url == "https://cdn.example.com/p/fiona.png?size=2"
    assert spec.owner == "U024BE7LH"


def test_owner_must_be_text() -> None:
    assert only_problem(with_lines("owner: {email: a@example.com}")) == (
        6,
        "owner",
        "owner: expected text, got a mapping",
    )


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ("0", "must be 1 or more, got 0"),
        ("3651", "must be at most 3,650, got 3,651"),
        ("-5", "must be 1 or more, got -5"),
        ("true", "expected a whole number of days from 1 to 3650, got a boolean (true)"),
        ("'90'", "expected a whole number of days from 1 to 3650, got a string ('90')"),
        ("90.0", "expected a whole number of days from 1 to 3650, got a number (90.0)"),
    ],
)
def test_review_every_days_range_and_type(value: str, got: str) -> None:
    text = with_lines(f"review_every_days: {value}")
    assert only_problem(text) == (6, "review_every_days", f"review_every_days: {got}")


@pytest.mark.parametrize("days", [1, 30, 3650])
def test_review_every_days_accepts_the_range(days: int) -> None:
    [spec] = parse_persona_text(with_lines(f"review_every_days: {days}"))
    assert spec.review_every_days == days


# --- unknown and duplicate keys


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        (
            "firmografic: {}",
            "firmografic",
            "unknown key 'firmografic' (did you mean 'firmographic'?)",
        ),
        (
            "pain-points: []",
            "pain-points",
            "unknown key 'pain-points' (did you mean 'pain_points'?)",
        ),
        ("Goals: []", "Goals", "unknown key 'Goals' (did you mean 'goals'?)"),
        (
            "demographic: {job_title: [CFO]}",
            "demographic.job_title",
            "unknown key 'job_title' in demographic (did you mean 'job_titles'?)",
        ),
        (
            "firmographic: {employees: {min: 1, maximum: 5}}",
            "firmographic.employees.maximum",
            "unknown key 'maximum' in firmographic.employees (did you mean 'max'?)",
        ),
        (
            "behavioral: {budget: 5}",
            "behavioral.budget",
            "unknown key 'budget' in behavioral "
            "(expected one of: channels, content, tools, triggers, buying_process)",
        ),
    ],
)
def test_unknown_keys_are_errors_with_a_suggestion(line: str, field: str, message: str) -> None:
    assert only_problem(with_lines(line)) == (6, field, message)


def test_duplicate_keys_inside_a_persona_are_errors() -> None:
    text = with_lines("name: Fiona Again")
    assert only_problem(text) == (6, "name", "duplicate key 'name' (first on line 3)")


def test_duplicate_keys_inside_a_section_are_errors() -> None:
    text = with_lines("demographic:", "  age: {min: 1}", "  age: {max: 2}")
    assert only_problem(text) == (
        8,
        "demographic.age",
        "duplicate key 'age' in demographic (first on line 7)",
    )


def test_duplicate_top_level_key_is_an_error() -> None:
    text = BASE + "personas: []\n"
    assert only_problem(text) == (
        6,
        "personas",
        "duplicate key 'personas' at the top level (first on line 1)",
    )


def test_non_text_mapping_key_is_an_error() -> None:
    text = with_lines("? [a, b]", ": c")
    line, field, message = only_problem(text)
    assert (line, field) == (6, "")
    assert message == "keys must be text, got a list"


# --- sections, lists, ranges


def test_single_string_where_a_list_is_expected() -> None:
    text = with_lines("demographic:", "  job_titles: CFO")
    line, field, message = only_problem(text)
    assert (line, field) == (7, "demographic.job_titles")
    assert message.startswith(
        "demographic.job_titles: expected a list, got a single string ('CFO')"
    )


@pytest.mark.parametrize("field", ["goals", "pain_points", "objections", "keywords"])
def test_persona_lists_must_be_lists(field: str) -> None:
    line, path, message = only_problem(with_lines(f"{field}: one thing"))
    assert (line, path) == (6, field)
    assert "expected a list" in message


def test_list_of_the_wrong_kind() -> None:
    assert only_problem(with_lines("keywords: {a: b}")) == (
        6,
        "keywords",
        "keywords: expected a list of text items, got a mapping",
    )


def test_list_items_must_be_non_empty_text() -> None:
    text = with_lines("goals:", "  - Cut costs", "  -", "  - ''", "  - 42", "  - Save time: 30%")
    found = problems_of(text)
    assert found == [
        (8, "goals[1]", "goals[1]: must not be empty"),
        (9, "goals[2]", "goals[2]: must not be empty"),
        (
            10,
            "goals[3]",
            "goals[3]: expected text, got an integer (42); put it in quotes to use it as text",
        ),
        (
            11,
            "goals[4]",
            "goals[4]: expected text, got a mapping; text that contains ': ' must be put in quotes",
        ),
    ]


def test_list_longer_than_the_limit_is_an_error() -> None:
    ok = "[" + ", ".join(f"k{i}" for i in range(MAX_LIST_ITEMS)) + "]"
    [spec] = parse_persona_text(with_lines(f"keywords: {ok}"))
    assert len(spec.keywords) == MAX_LIST_ITEMS
    too_many = "[" + ", ".join(f"k{i}" for i in range(MAX_LIST_ITEMS + 1)) + "]"
    assert only_problem(with_lines(f"keywords: {too_many}")) == (
        6,
        "keywords",
        f"keywords: too many items ({MAX_LIST_ITEMS + 1}; the limit is {MAX_LIST_ITEMS})",
    )


@pytest.mark.parametrize("section", list(SECTION_TYPES))
def test_section_must_be_a_mapping(section: str) -> None:
    line, field, message = only_problem(with_lines(f"{section}: [a, b]"))
    assert (line, field) == (6, section)
    assert message.startswith(f"{section}: expected a mapping of ")
    assert message.endswith("got a list")


def test_null_sections_lists_and_optional_fields_mean_not_set() -> None:
    text = with_lines("background:", "demographic:", "goals: ~", "firmographic: {employees: null}")
    [spec] = parse_persona_text(text)
    assert spec.background is None
    assert spec.demographic == Demographic()
    assert spec.firmographic == Firmographic()
    assert spec.goals == ()


def test_min_greater_than_max() -> None:
    text = with_lines("firmographic:", "  employees: {min: 500, max: 200}")
    assert only_problem(text) == (
        7,
        "firmographic.employees",
        "firmographic.employees: min 500 is greater than max 200",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{min: 10}", IntRange(10, None)),
        ("{max: 10}", IntRange(None, 10)),
        ("{min: 0, max: 0}", IntRange(0, 0)),
        ("{min: 5, max: 5}", IntRange(5, 5)),
        ("{min: 1_000, max: 0x10000}", IntRange(1000, 65536)),
        ("{}", None),
    ],
)
def test_valid_ranges(value: str, expected: IntRange | None) -> None:
    [spec] = parse_persona_text(with_lines(f"demographic: {{age: {value}}}"))
    assert spec.demographic.age == expected


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ("{min: -1}", "demographic.age.min", "demographic.age.min: must be 0 or more, got -1"),
        (
            "{max: true}",
            "demographic.age.max",
            "demographic.age.max: expected a whole number, got a boolean (true)",
        ),
        (
            "{min: 2.5}",
            "demographic.age.min",
            "demographic.age.min: expected a whole number, got a number (2.5)",
        ),
        (
            "{min: '30'}",
            "demographic.age.min",
            "demographic.age.min: expected a whole number, got a string ('30')",
        ),
        (
            "{max: 99999999999999999999}",
            "demographic.age.max",
            "demographic.age.max: must be at most 9,223,372,036,854,775,807, "
            "got 99,999,999,999,999,999,999",
        ),
        (
            "35",
            "demographic.age",
            "demographic.age: expected a mapping with 'min' and/or 'max' "
            "(e.g. {min: 10, max: 50}), got an integer (35)",
        ),
        (
            "[30, 40]",
            "demographic.age",
            "demographic.age: expected a mapping with 'min' and/or 'max' "
            "(e.g. {min: 10, max: 50}), got a list",
        ),
    ],
)
def test_invalid_ranges(value: str, field: str, message: str) -> None:
    assert only_problem(with_lines(f"demographic: {{age: {value}}}")) == (6, field, message)


def test_buying_process_is_text() -> None:
    line, field, message = only_problem(with_lines("behavioral: {buying_process: [a, b]}"))
    assert (line, field, message) == (
        6,
        "behavioral.buying_process",
        "behavioral.buying_process: expected text, got a list",
    )


# --- guard rails


def test_more_personas_than_the_limit_is_an_error() -> None:
    items = "".join(
        f"  - {{key: p-{i}, name: P{i}, role: R, summary: S}}\n" for i in range(MAX_PERSONAS + 1)
    )
    line, field, message = only_problem("personas:\n" + items)
    assert (line, field) == (2, "")
    assert message == f"too many personas ({MAX_PERSONAS + 1}; the limit is {MAX_PERSONAS})"
    assert len(parse_persona_text("personas:\n" + items.split("\n", 1)[1])) == MAX_PERSONAS


def test_text_larger_than_the_file_limit_is_an_error() -> None:
    text = BASE + "# " + "x" * MAX_FILE_BYTES + "\n"
    line, field, message = only_problem(text)
    assert (line, field) == (0, "")
    assert message.startswith("the file is too large (5.0 MB; the limit is 5 MB)")


def test_file_larger_than_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(PersonaFileError) as caught:
        load_persona_file(path)
    [problem] = caught.value.problems
    assert problem.message == "the file is too large (5.0 MB; the limit is 5 MB)"


def test_yaml_aliases_do_not_expand_without_bound() -> None:
    # The "billion laughs" shape: each level refers to the one before ten times.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    text = "\n".join(lines) + "\npersonas: []\n"
    found = problems_of(text)
    assert len(found) == 9
    assert all("unknown key" in message for _, _, message in found)


def test_yaml_tags_are_never_executed() -> None:
    text = with_lines("background: !!python/object/apply:os.system [echo hi]")
    assert only_problem(text) == (
        6,
        "background",
        "background: expected text, got a value tagged !!python/object/apply:os.system",
    )


def test_deeply_nested_input_is_a_problem_not_a_crash() -> None:
    found = problems_of("personas: " + "[" * 5000 + "]" * 5000 + "\n")
    assert len(found) == 1
    found = problems_of('{"personas": ' + "[" * 100000 + "]" * 100000 + "}", format="json")
    assert len(found) == 1


# --- YAML features


def test_yaml_merge_keys_are_supported() -> None:
    text = """\
personas:
  - key: finance-fiona
    name: Finance Fiona
    role: VP Finance
    summary: Owns budget approval.
    firmographic: &mid-market
      regions: [North America]
      employees: {min: 200, max: 2000}
  - key: controller-carlos
    name: Controller Carlos
    role: Controller
    summary: Closes the books.
    firmographic:
      <<: *mid-market
      employees: {min: 100, max: 800}
"""
    fiona, carlos = parse_persona_text(text)
    assert carlos.firmographic.regions == ("North America",)
    assert carlos.firmographic.employees == IntRange(100, 800)
    assert fiona.firmographic.employees == IntRange(200, 2000)


def test_invalid_yaml_merge_is_reported() -> None:
    text = with_lines("demographic:", "  <<: 5")
    line, field, message = only_problem(text)
    assert (line, field) == (7, "demographic")
    assert message == "demographic: '<<' (merge) expects a mapping or a list of mappings"


def test_recursive_yaml_merge_is_reported() -> None:
    text = with_lines("demographic: &d", "  <<: *d")
    found = problems_of(text)
    assert found and "refers to a mapping that contains it" in found[0][2]


# --- syntax errors


@pytest.mark.parametrize(
    ("text", "line", "start"),
    [
        (BASE + "    role: [unclosed\n", 7, "invalid YAML: "),
        (BASE.replace("    name:", "   name:"), 3, "invalid YAML: "),
        (
            BASE + "\tgoals: []\n",
            6,
            "invalid YAML: found character '\\t' that cannot start any token",
        ),
        (BASE.replace("summary: Owns", "summary: Note: owns"), 5, "invalid YAML: mapping values"),
        (BASE + "    goals: *undefined\n", 6, "invalid YAML: found undefined alias"),
        (BASE + "---\npersonas: []\n", 6, "invalid YAML: "),
        (BASE + 'name: "open\n', 7, "invalid YAML: "),
    ],
)
def test_yaml_syntax_errors_have_a_line(text: str, line: int, start: str) -> None:
    found_line, field, message = only_problem(text)
    assert (found_line, field) == (line, "")
    assert message.startswith(start), message


def test_yaml_syntax_error_hints() -> None:
    assert only_problem(BASE + "\tgoals: []\n")[2].endswith("; indent with spaces, not tabs")
    text = BASE.replace("summary: Owns", "summary: Note: owns")
    assert only_problem(text)[2].endswith("; put text that contains ': ' in quotes")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            '{\n  "personas": [\n    {"key": "a"}\n    {"key": "b"}\n  ]\n}',
            4,
            "invalid JSON: expecting ',' delimiter (column 5)",
        ),
        ('{"personas": []}\n{"x": 1}', 2, "invalid JSON: extra data (column 1)"),
        ("", 1, "invalid JSON: expecting value (column 1)"),
        (
            "{\n'personas': []}",
            2,
            "invalid JSON: expecting property name enclosed in double quotes (column 1)",
        ),
    ],
)
def test_json_syntax_errors_have_a_line(text: str, line: int, message: str) -> None:
    assert only_problem(text, format="json") == (line, "", message)


def test_json_trailing_comma_is_a_syntax_error() -> None:
    # The wording of this message changed between Python versions; the line did not.
    line, field, message = only_problem('{\n  "personas": [],\n}', format="json")
    assert (line, field) == (3, "")
    assert message.startswith("invalid JSON: ")


# --- JSON


def test_json_lines_point_at_keys_and_items() -> None:
    text = """{
  "personas": [
    {
      "key": "finance-fiona",
      "name": "Finance Fiona",
      "role": "VP Finance",
      "summary": "Owns budget approval.",
      "goals": [
        "fine",
        7
      ],
      "demographic": {"age": {"min": 60, "max": 30}, "titles": []}
    }
  ]
}"""
    assert problems_of(text, format="json") == [
        (10, "goals[1]", "goals[1]: expected text, got an integer (7)"),
        (
            12,
            "demographic.titles",
            "unknown key 'titles' in demographic (did you mean 'job_titles'?)",
        ),
        (12, "demographic.age", "demographic.age: min 60 is greater than max 30"),
    ]


def test_json_values_keep_json_meaning() -> None:
    # In YAML 1.1, 1e3 would be text; in JSON it is a number, and unicode escapes join.
    text = json.dumps({"personas": [valid_mapping(name="Fiona \ud83d\ude00")]}, ensure_ascii=True)
    [spec] = parse_persona_text(text, format="json")
    assert spec.name == "Fiona 😀"
    text = json.dumps({"personas": [valid_mapping()]})[: -len("}]}")]
    text += ', "review_every_days": 1e3}]}'
    assert only_problem(text, format="json")[2] == (
        "review_every_days: expected a whole number of days from 1 to 3650, got a number (1000.0)"
    )


def test_json_with_tab_indentation_is_read() -> None:
    text = '{\n\t"personas": [\n\t\t{"key": "ab", "name": "n", "role": "r", "summary": "s"}\n\t]\n}'
    [spec] = parse_persona_text(text, filename="people.json")
    assert spec.key == "ab"


@pytest.mark.parametrize(
    ("filename", "text", "expects_json_message"),
    [
        ("people.json", "personas: []", True),
        ("people.yaml", '{"personas": [}', False),
        ("people.txt", '{"personas": [}', False),
        ("<input>", '{"personas": [1, 2', False),
    ],
)
def test_format_is_guessed_from_suffix_then_content(
    filename: str, text: str, expects_json_message: bool
) -> None:
    message = only_problem(text, filename=filename)[2]
    assert message.startswith("invalid JSON" if expects_json_message else "invalid YAML"), message


def test_json_content_without_a_suffix_is_read_as_json() -> None:
    text = '{"personas": [{"key": "ab", "name": "n", "role": "r", "summary": "s",\n"nme": 1}]}'
    assert only_problem(text) == (2, "nme", "unknown key 'nme' (did you mean 'name'?)")


def test_unknown_format_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown persona file format"):
        parse_persona_text("personas: []", format="toml")  # type: ignore[arg-type]


# --- files


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PersonaFileError) as caught:
        load_persona_file(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: file not found"


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    with pytest.raises(PersonaFileError) as caught:
        load_persona_file(tmp_path)
    assert caught.value.problems[0].message == "is a directory, not a persona file"


def test_file_that_is_not_utf8_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(BASE.replace("Finance Fiona", "Finance Fiöna").encode("latin-1"))
    with pytest.raises(PersonaFileError) as caught:
        load_persona_file(path)
    [problem] = caught.value.problems
    assert problem.line == 3
    assert problem.message == (
        "the file is not UTF-8 text (byte 0xf6 cannot be decoded); save it as UTF-8"
    )


def test_utf8_file_with_bom_and_json_suffix(tmp_path: Path) -> None:
    path = tmp_path / "people.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"personas": [valid_mapping()]}).encode())
    [spec] = load_persona_file(path)
    assert spec.key == "finance-fiona"
    assert load_persona_file(str(path)) == [spec]


def test_error_names_the_file() -> None:
    with pytest.raises(PersonaFileError) as caught:
        parse_persona_text("personas: 5", filename="team/people.yaml")
    assert str(caught.value).startswith("team/people.yaml:1: personas: expected a list")
    assert caught.value.filename == "team/people.yaml"


# --- one mapping (edit forms)


def test_validate_mapping_returns_the_spec() -> None:
    spec, problems = validate_persona_mapping(
        valid_mapping(demographic={"age": {"min": 30}}, goals=["  Grow  "], review_every_days=30)
    )
    assert problems == ()
    assert spec is not None
    assert spec.demographic.age == IntRange(30, None)
    assert spec.goals == ("Grow",)
    assert spec.review_every_days == 30


def test_validate_mapping_uses_the_same_rules_and_messages_on_line_zero() -> None:
    spec, problems = validate_persona_mapping(
        {
            "key": "finance-fiona",
            "role": "VP\nFinance",
            "summary": "Owns budget approval.",
            "firmografic": {},
            "firmographic": {"employees": {"min": 500, "max": 200}},
            "goals": "grow",
            "photo_url": "http://example.com/a.png",
            "review_every_days": True,
        }
    )
    assert spec is None
    assert {(p.line, p.persona) for p in problems} == {(0, "finance-fiona")}
    assert [(p.field, p.message) for p in problems] == [
        ("firmografic", "unknown key 'firmografic' (did you mean 'firmographic'?)"),
        ("name", "missing required field 'name'"),
        ("role", "role: must be a single line, without line breaks"),
        (
            "photo_url",
            "photo_url: expected an absolute https:// URL with a host, "
            "got 'http://example.com/a.png'",
        ),
        (
            "review_every_days",
            "review_every_days: expected a whole number of days from 1 to 3650, "
            "got a boolean (true)",
        ),
        ("firmographic.employees", "firmographic.employees: min 500 is greater than max 200"),
        (
            "goals",
            "goals: expected a list, got a single string ('grow'); "
            "write each item on its own '- ' line or in brackets [...]",
        ),
    ]


def test_validate_mapping_accepts_tuples_and_rejects_odd_values() -> None:
    spec, problems = validate_persona_mapping(valid_mapping(keywords=("a", "b")))
    assert spec is not None and spec.keywords == ("a", "b")
    spec, problems = validate_persona_mapping(valid_mapping(keywords={"a"}, name=b"x", owner=3.5))
    assert spec is None
    assert [p.message for p in problems] == [
        "name: expected text, got binary data",
        "owner: expected text, got a number (3.5)",
        "keywords: expected a list of text items, got a value of type set",
    ]


def test_validate_mapping_with_deep_or_cyclic_data() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    cyclic: dict[str, Any] = valid_mapping()
    cyclic["demographic"] = cyclic
    _, problems = validate_persona_mapping(valid_mapping(goals=deep, firmographic=cyclic))
    assert [p.field for p in problems] == [
        "firmographic.key",
        "firmographic.name",
        "firmographic.role",
        "firmographic.summary",
        "firmographic.demographic",
        "goals[0]",
    ]


def test_validate_mapping_with_non_text_keys_and_non_mappings() -> None:
    _, problems = validate_persona_mapping({**valid_mapping(), 7: "x"})  # type: ignore[dict-item]
    assert [p.message for p in problems] == ["keys must be text, got an integer (7)"]
    _, problems = validate_persona_mapping(["key", "x"])  # type: ignore[arg-type]
    assert [p.message for p in problems] == [
        "persona: expected a mapping (one persona), got a list"
    ]


# --- export


def full_spec() -> PersonaSpec:
    return PersonaSpec(
        key="zoe-zahlen",
        name="Zoë Zahlen 😀",
        role="Leiterin Finanzen — DACH",
        summary="Line one: with a colon.\n\n  An indented line.\nLast line #not-a-comment",
        background="x" * 300,
        photo_url="https://example.com/z.png?a=1&b=2",
        owner="U024BE7LH",
        review_every_days=45,
        demographic=Demographic(
            job_titles=("CFO", "yes", "null", "123", "- dash", "[bracket"),
            experience_years=IntRange(10, None),
            age=IntRange(None, 60),
        ),
        firmographic=Firmographic(
            industries=("Fintech",), employees=IntRange(0, 0), annual_revenue_usd=IntRange(1, 2**40)
        ),
        behavioral=Behavioral(buying_process="Step one.\nStep two.\n\tIndented with a tab."),
        psychographic=Psychographic(values=("Ehrlichkeit",), interests=("日本語",)),
        goals=("Multi-line\ngoal", "'quoted'", '"double"'),
        pain_points=("tab\there",),
        objections=("a: b",),
        keywords=("ünïcödé", "2024-01-01", "true"),
    )


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_round_trip_gives_equal_specs(fmt: Any) -> None:
    specs = [full_spec(), PersonaSpec(key="ab", name="A", role="R", summary="S")]
    text = dump_personas(specs, fmt)
    assert parse_persona_text(text, format=fmt) == specs
    assert parse_persona_text(text) == specs


def test_sample_like_file_round_trips() -> None:
    specs = load_persona_file(DATA / "complete.yaml")
    assert parse_persona_text(dump_personas(specs)) == specs


def test_yaml_export_is_readable() -> None:
    text = dump_personas([full_spec()])
    assert text.startswith("personas:\n  - key: zoe-zahlen\n    name: Zoë Zahlen 😀\n")
    assert "\\u" not in text and "\\U" not in text
    assert "    background: " + "x" * 300 + "\n" in text
    assert "    summary: |-\n      Line one: with a colon.\n\n        An indented line.\n" in text
    assert "{" not in text and "[" not in text.replace("'[bracket'", "")
    assert "      experience_years:\n        min: 10\n" in text


def test_yaml_export_follows_field_order() -> None:
    data = yaml.safe_load(dump_personas([full_spec()]))
    keys = list(data["personas"][0])
    assert keys == [name for name in FIELD_ORDER if name in keys]
    assert keys[:8] == list(FIELD_ORDER[:8])
    assert list(data["personas"][0]["demographic"]) == ["job_titles", "experience_years", "age"]


def test_json_export() -> None:
    text = dump_personas([full_spec()], "json")
    data = json.loads(text)
    assert list(data) == ["personas"]
    assert data["personas"][0]["name"] == "Zoë Zahlen 😀"
    assert "Zoë" in text
    assert text.endswith("}\n")


def test_export_of_no_personas() -> None:
    assert parse_persona_text(dump_personas([])) == []
    assert dump_personas([]) == "personas: []\n"
    assert json.loads(dump_personas([], "json")) == {"personas": []}


def test_yaml_export_separates_personas_with_a_blank_line() -> None:
    text = dump_personas([PersonaSpec("ab", "A", "R", "S"), PersonaSpec("cd", "C", "R", "S")])
    assert "    review_every_days: 90\n\n  - key: cd\n" in text


# --- properties

one_line_text = (
    st.text(st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), min_size=1, max_size=30)
    .map(str.strip)
    .filter(bool)
)
long_text = (
    st.text(
        st.characters(exclude_categories=["Cc", "Cs"], include_characters="\n\t"),
        min_size=1,
        max_size=60,
    )
    .map(str.strip)
    .filter(bool)
)
text_lists = st.lists(one_line_text, max_size=4).map(tuple)
long_lists = st.lists(long_text, max_size=3).map(tuple)
bounds = st.none() | st.integers(min_value=0, max_value=2**63 - 1)


@st.composite
def ranges(draw: st.DrawFn) -> IntRange | None:
    low, high = draw(bounds), draw(bounds)
    if low is None and high is None:
        return None
    if low is not None and high is not None and low > high:
        low, high = high, low
    return IntRange(low, high)


specs = st.builds(
    PersonaSpec,
    key=st.from_regex(r"[a-z0-9-]{2,64}", fullmatch=True),
    name=one_line_text,
    role=one_line_text,
    summary=long_text,
    background=st.none() | long_text,
    photo_url=st.none() | st.sampled_from(["https://example.com/a.png", "https://h.example/ü?q=1"]),
    owner=st.none() | one_line_text,
    review_every_days=st.integers(min_value=1, max_value=3650),
    demographic=st.builds(
        Demographic,
        job_titles=text_lists,
        seniority=text_lists,
        experience_years=ranges(),
        age=ranges(),
    ),
    firmographic=st.builds(Firmographic, industries=text_lists, employees=ranges()),
    behavioral=st.builds(Behavioral, tools=text_lists, buying_process=st.none() | long_text),
    psychographic=st.builds(Psychographic, values=text_lists),
    goals=long_lists,
    pain_points=long_lists,
    objections=long_lists,
    keywords=text_lists,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(specs, max_size=3, unique_by=lambda s: s.key), st.sampled_from(["yaml", "json"]))
def test_property_dump_then_parse_is_identity(personas: list[PersonaSpec], fmt: Any) -> None:
    assert parse_persona_text(dump_personas(personas, fmt), format=fmt) == personas


KNOWN_KEYS = [*FIELD_ORDER, "min", "max", "personas", "<<"] + [
    name for section in SECTION_TYPES.values() for name in section.__dataclass_fields__
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["finance-fiona", "https://x.example/a.png", "", " "])
)
structures = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=30,
)


def parses_or_reports(text: str, **kwargs: Any) -> None:
    try:
        result = parse_persona_text(text, **kwargs)
    except PersonaFileError as exc:
        assert exc.problems
        assert all(isinstance(p, Problem) and p.line >= 0 and p.message for p in exc.problems)
        assert [p.line for p in exc.problems] == sorted(p.line for p in exc.problems)
    else:
        assert isinstance(result, list)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_property_random_text_only_raises_persona_file_error(text: str) -> None:
    parses_or_reports(text)
    parses_or_reports(text, format="json")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable + "é😀\x85\u2028", max_size=200))
def test_property_yamlish_text_only_raises_persona_file_error(text: str) -> None:
    parses_or_reports(text, format="yaml")
    parses_or_reports("personas:\n  - " + text, format="yaml")


@settings(max_examples=300, deadline=None)
@given(structures)
def test_property_random_structures_only_raise_persona_file_error(value: Any) -> None:
    for document in (value, {"personas": value}, {"personas": [value]}):
        parses_or_reports(json.dumps(document), format="json")
        parses_or_reports(yaml.safe_dump(document, allow_unicode=True), format="yaml")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=8), structures, max_size=10))
def test_property_random_mappings_validate_without_raising(value: dict[str, Any]) -> None:
    spec, problems = validate_persona_mapping(value)
    assert (spec is None) == bool(problems)
    assert all(p.line == 0 for p in problems)
