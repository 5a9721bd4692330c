"""Property tests: bad input never raises past a handler.

Hypothesis feeds hostile input to every place where the outside world comes in: the
``/persona`` grammar, the persona file importer and validator, the Slack and Teams
translators, and the router on a real SQLite runtime with the sample personas. Each must
answer with a result its callers handle (a Command, None for "ignore", ``MalformedPayload``,
``PersonaFileError`` with lines, a CommandError reply), never with an unexpected exception;
the router must never fall back to the generic apology (that means a handler crashed), and
every reply it gives must render within Slack's and Teams' limits and as plain text.

The profile is bounded and derandomized, with no example database, so a run takes seconds
and is the same every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import io
import json
import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
import yaml
from botbuilder.schema import Activity
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from adapters.slack import forms as slack_forms
from adapters.slack.translate import (
    FEEDBACK_CALLBACK,
    MORE_ACTION,
    SHARE_ACTION,
    MalformedPayload,
    Origin,
    blocks_from_reply,
    command_from_action,
    command_from_event,
    command_from_origin,
    command_from_slash,
    feedback_from_submission,
    message_from_reply,
    modal_from_reply,
    parse_action_id,
    parse_request_body,
    payload_team,
    payload_user,
)
from adapters.teams import forms as teams_forms
from adapters.teams.app import activity_problem
from adapters.teams.translate import (
    card_size,
    command_from_activity,
    feedback_follow_up,
    strip_mentions,
    tenant_of,
    unusable_reason,
)
from bot import messages
from bot.cli import main
from bot.editor import INPUTS, NEW_INPUTS, NOTIFY_FIELD, UNSHOWN_FIELD, persona_form
from bot.grammar import ALIASES, MAX_INPUT, VERBS, clean, close_verb, parse
from bot.handlers import default_router
from bot.model import Command, ConversationRef, Reply, UserRef
from bot.plaintext import plain_text, render_text
from bot.router import Router
from bot.runtime import Runtime
from persona_store.db import create_db_engine
from persona_store.models import Persona, PersonaRevision, UsageEvent
from persona_store.records import PersonaSpec
from persona_store.schema import (
    LONG_TEXT_FIELDS,
    MAX_LIST_ITEMS,
    MAX_TEXT_CHARS,
    FileFormat,
    PersonaFileError,
    dump_personas,
    load_sample_personas,
    parse_persona_text,
    validate_persona_mapping,
)
from persona_store.usage import UsageRecord, now_ms
from tests.conftest import make_settings
from tests.e2e.teams_kit import assert_valid_card
from tests.fakes.slack_api import block_kit_problems, view_problems
from tests.fakes.slack_wire import (
    FORM,
    interactivity_body,
    recorded,
    view_submission_payload,
)
from tests.strategies import json_values, mutated, nasty_text, typed_text, without_surrogates

settings.register_profile(
    "persona-bot-properties",
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile("persona-bot-properties")


def props(max_examples: int) -> settings:
    """The module's profile with its own number of examples (loaded per test, not globally)."""
    return settings(PROFILE, max_examples=max_examples)


TEAMS_PAYLOADS = Path(__file__).parent / "payloads" / "teams"
SAMPLES: list[PersonaSpec] = load_sample_personas()
SAMPLE_DICTS: list[dict[str, Any]] = [spec.to_dict() for spec in SAMPLES]
FORMATS: tuple[FileFormat, ...] = ("yaml", "json")
NAMES = [text for spec in SAMPLES for text in (spec.key, spec.name, spec.name.split()[-1])]
TEAMS_CARD_BYTES = 28 * 1024


# shared runtime -------------------------------------------------------------------------


class FailureLog(logging.Handler):
    """Keeps what the router logged as a crash, so a failing example shows the traceback."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.crashes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        detail = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else ""
        self.crashes.append(f"{record.getMessage()}\n{detail}")

    def take(self) -> str:
        text = "\n".join(self.crashes)
        self.crashes.clear()
        return text


@pytest.fixture(scope="module")
def prop_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    url = f"sqlite:///{tmp_path_factory.mktemp('props') / 'persona-bot.db'}"
    runtime = Runtime.open(
        make_settings(
            url,
            PERSONA_BOT_ADMINS="U_ADMIN,admin@example.com",
            PERSONA_BOT_MANAGERS="U_MANAGER",
            PERSONA_BOT_PUBLIC_URL="https://persona-bot.example",
        ),
        seed=True,
    )
    runtime.home_workspaces.update(slack={"T1"}, teams={"T1"})
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def prop_router(prop_runtime: Runtime) -> Router:
    return default_router(prop_runtime)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture(scope="module")
def crashes() -> Iterator[FailureLog]:
    handler = FailureLog()
    logger = logging.getLogger("bot.router")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


# 1. the /persona grammar -----------------------------------------------------------------


@props(150)
@given(text=typed_text(200))
@example(text="")
@example(text="\x00" * 10)
@example(text="/persona")
@example(text="\u202efiona\u202c")
def test_grammar_parses_any_text_to_a_known_verb(prop_router: Router, text: str) -> None:
    verbs = prop_router.verbs
    parsed = parse(text, extra_verbs=verbs)
    assert parsed.verb in VERBS or parsed.verb in verbs
    assert len(parsed.args) <= MAX_INPUT
    assert parsed.args == parsed.args.strip()
    assert parsed.args.isprintable(), repr(parsed.args)
    # Total and deterministic: the same text, or its cleaned form, parses the same way.
    assert parse(text, extra_verbs=verbs) == parsed
    assert parse(clean(text), extra_verbs=verbs) == parsed
    if not clean(text):
        assert parsed.verb == "help"
    command = prop_router.command_from_text(
        text, UserRef("U1"), ConversationRef("slack", "T1", "C1")
    )
    assert command.verb in verbs and command.text == text
    head = clean(text).partition(" ")[0]
    suggestion = close_verb(head, extra_verbs=verbs)
    assert suggestion is None or suggestion in verbs


@props(100)
@given(
    verb=st.sampled_from(sorted({*VERBS, *ALIASES})),
    args=nasty_text(200),
    prefix=st.sampled_from(["", "/persona ", "persona ", "  PERSONA: "]),
)
def test_grammar_reads_a_verb_then_its_arguments(verb: str, args: str, prefix: str) -> None:
    parsed = parse(f"{prefix}{verb} {args}")
    assert parsed.verb == ALIASES.get(verb, verb)
    assert parsed.args == clean(args).strip()


# 2. the persona file importer and validator ----------------------------------------------


def check_problems(error: PersonaFileError, text: str, filename: str = "<input>") -> None:
    """Every problem has a message and a line inside the file, and prints as FILE:LINE."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
    assert error.problems
    for problem in error.problems:
        assert problem.message
        assert 1 <= problem.line <= lines, (problem, lines)
    assert [p.line for p in error.problems] == sorted(p.line for p in error.problems)
    printed = str(error).split("\n")
    assert len(printed) >= len(error.problems)
    for problem in error.problems:
        assert any(line.startswith(f"{filename}:{problem.line}: ") for line in printed)


@props(100)
@given(text=nasty_text(300), fmt=st.sampled_from([None, *FORMATS]))
@example(text="personas:\n  - key: \x00", fmt="yaml")
@example(text='{"personas": [{"key": "\\ud800"}]}', fmt="json")
@example(text="personas: [" * 300, fmt=None)
def test_importer_reads_any_text_or_reports_lines(text: str, fmt: FileFormat | None) -> None:
    try:
        specs = parse_persona_text(text, format=fmt)
    except PersonaFileError as exc:
        check_problems(exc, text)
    else:
        assert all(isinstance(spec, PersonaSpec) for spec in specs)


@props(4)
@given(text=typed_text(40).filter(lambda t: len(t) >= 100 * 1024))
@example(text="fiona " * 20_000)
@example(text="personas:\n  - " + "x" * 102_400)
def test_importer_reads_100_kb_of_anything_or_reports_lines(text: str) -> None:
    for fmt in FORMATS:
        with pytest.raises(PersonaFileError) as caught:
            parse_persona_text(text, format=fmt)
        check_problems(caught.value, text)


def _paths(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every persona field, sections and ranges included."""
    for name, child in value.items():
        full = f"{path}.{name}" if path else name
        yield full, child
        if isinstance(child, dict):
            yield from _paths(child, full)


def _kind(path: str, value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "range" if set(value) <= {"min", "max"} and path.count(".") == 1 else "section"
    if isinstance(value, int):
        return "int"
    return "text"


def _set(persona: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = persona
    for part in parents:
        target = target[part]
    target[last] = value


def _get(persona: dict[str, Any], path: str) -> Any:
    value: Any = persona
    for part in path.split("."):
        value = value[part]
    return value


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _one_line(path: str) -> bool:
    return path not in LONG_TEXT_FIELDS


ONE_LINE_CONTROL = [chr(c) for c in (*range(0x00, 0x0D), *range(0x0E, 0x20), *range(0x7F, 0xA0))]
ONE_LINE_CONTROL += ["\u2028", "\u2029"]
LONG_TEXT_CONTROL = [c for c in ONE_LINE_CONTROL if c not in "\t\n\u2028\u2029"]
WRONG_FOR_TEXT = st.one_of(
    st.integers(),
    st.booleans(),
    st.floats(),
    st.lists(st.text(max_size=5), max_size=2),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)
WRONG_FOR_INT = st.one_of(
    st.text(max_size=8),
    st.booleans(),
    st.floats(),
    st.lists(st.integers(), max_size=2),
    st.integers(max_value=-1),
    st.integers(min_value=2**63),
)


@st.composite
def broken_persona(
    draw: st.DrawFn, persona: dict[str, Any], json_file: bool
) -> tuple[str, str | None, list[dict[str, Any]]]:
    """Break ``persona`` in one place; (the field a problem must name, the key whose line it
    must be on or None, personas to add to the file)."""
    fields = [(path, _kind(path, value)) for path, value in _paths(persona)]
    texts = [p for p, k in fields if k == "text"]
    lists = [p for p, k in fields if k == "list"]
    ranges = [p for p, k in fields if k == "range"]
    how = draw(
        st.sampled_from(
            [
                "text_type",
                "list_type",
                "list_item",
                "range_type",
                "range_end",
                "min_over_max",
                "review_days",
                "unknown_key",
                "huge_text",
                "huge_list",
                "control",
                "surrogate",
                "missing",
                "empty",
                "bad_key",
                "bad_url",
                "duplicate",
                "deep",
            ]
        )
    )
    if how == "text_type":
        path = draw(st.sampled_from(texts))
        _set(persona, path, draw(WRONG_FOR_TEXT))
        return path, None, []
    if how == "list_type":
        path = draw(st.sampled_from(lists))
        _set(persona, path, draw(WRONG_FOR_TEXT.filter(lambda v: not isinstance(v, list))))
        return path, None, []
    if how == "list_item":
        path = draw(st.sampled_from(lists))
        items = _get(persona, path)
        bad = draw(st.one_of(st.none(), st.just(""), st.just("  "), WRONG_FOR_TEXT))
        items.insert(draw(st.integers(0, len(items))), bad)
        return path, None, []
    if how == "range_type":
        path = draw(st.sampled_from(ranges))
        _set(persona, path, draw(WRONG_FOR_INT))
        return path, None, []
    if how == "range_end":
        path = draw(st.sampled_from(ranges))
        end = draw(st.sampled_from(["min", "max"]))
        bad = _get(persona, path)[end] = draw(WRONG_FOR_INT)
        return f"{path}.{end}", None if isinstance(bad, list) else end, []
    if how == "min_over_max":
        path = draw(st.sampled_from(ranges))
        high = draw(st.integers(0, 2**63 - 2))
        low = draw(st.integers(high + 1, 2**63 - 1))
        _set(persona, path, {"min": low, "max": high})
        return path, None, []
    if how == "review_days":
        bad = draw(st.one_of(st.integers(max_value=0), st.integers(min_value=3651), WRONG_FOR_INT))
        persona["review_every_days"] = bad
        return "review_every_days", None if isinstance(bad, list) else "review_every_days", []
    if how == "unknown_key":
        sections = [p for p, k in fields if k in ("section", "range")]
        where = draw(st.sampled_from(["", *sections]))
        target = _get(persona, where) if where else persona
        name = draw(nasty_text(20).filter(lambda n: n not in target))
        target[name] = draw(json_values())
        return f"{where}.{name}" if where else name, None, []
    if how == "huge_text":
        path = draw(st.sampled_from(texts))
        size = draw(st.integers(MAX_TEXT_CHARS + 1, MAX_TEXT_CHARS + 2000))
        _set(persona, path, draw(st.sampled_from(["x", "é", "😀", "ab "])) * size + "z")
        return path, _leaf(path), []
    if how == "huge_list":
        path = draw(st.sampled_from(lists))
        _set(persona, path, ["item"] * draw(st.integers(MAX_LIST_ITEMS + 1, MAX_LIST_ITEMS + 50)))
        return path, None, []
    if how in ("control", "surrogate"):
        path = draw(st.sampled_from(texts))
        allowed = ONE_LINE_CONTROL if _one_line(path) else LONG_TEXT_CONTROL
        if not json_file:  # PyYAML writes U+0085 raw, where YAML reads it as a line break
            allowed = [c for c in allowed if c != "\x85"]
        char = draw(st.sampled_from(["\ud800", "\udfff"] if how == "surrogate" else allowed))
        value = _get(persona, path)
        cut = draw(st.integers(1, len(value) - 1))
        _set(persona, path, value[:cut] + char + value[cut:])
        return path, _leaf(path), []
    if how == "missing":
        name = draw(st.sampled_from(["key", "name", "role", "summary"]))
        del persona[name]
        return name, None, []
    if how == "empty":
        name = draw(st.sampled_from(["key", "name", "role", "summary"]))
        persona[name] = draw(st.sampled_from([None, "", "   ", "\u3000", "\t"]))
        return name, name, []
    if how == "bad_key":
        bad = draw(st.sampled_from(["Finance Fiona", "x", "a" * 65, "ümlaut", "under_score", "-"]))
        persona["key"] = bad
        return "key", "key", []
    if how == "bad_url":
        bad = ["http://example.com/a.png", "https://", "not a url", "https://exa mple.com/a", "//x"]
        persona["photo_url"] = draw(st.sampled_from(bad))
        return "photo_url", "photo_url", []
    if how == "duplicate":
        twin = copy.deepcopy(draw(st.sampled_from(SAMPLE_DICTS)))
        return "key", None, [twin, copy.deepcopy(twin)]
    path = draw(st.sampled_from(texts))
    nested: Any = "deep"
    for _ in range(draw(st.integers(1, 60))):
        nested = [nested]
    _set(persona, path, nested)
    return path, None, []


@st.composite
def broken_files(draw: st.DrawFn) -> tuple[str, FileFormat, list[tuple[str, str | None]]]:
    """(file text, format, [(field, key on its line)]): 1-3 sample personas, each broken once."""
    fmt = draw(st.sampled_from(FORMATS))
    chosen = draw(st.permutations(range(len(SAMPLE_DICTS))))[: draw(st.integers(1, 3))]
    personas = [copy.deepcopy(SAMPLE_DICTS[i]) for i in chosen]
    expected: list[tuple[str, str | None]] = []
    extra: list[dict[str, Any]] = []
    for persona in personas:
        field, key_line, more = draw(broken_persona(persona, fmt == "json"))
        expected.append((field, key_line))
        extra += more
    document = {"personas": personas + extra}
    if fmt == "json":
        text = json.dumps(document, indent=2)
    else:
        text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=float("inf"))
    return text, fmt, expected


def _names(problem_field: str, field: str) -> bool:
    return problem_field == field or problem_field.startswith((f"{field}.", f"{field}["))


@props(50)
@given(broken=broken_files())
def test_importer_reports_each_break_on_its_field_and_line(
    broken: tuple[str, FileFormat, list[tuple[str, str | None]]],
) -> None:
    text, fmt, expected = broken
    with pytest.raises(PersonaFileError) as caught:
        parse_persona_text(text, format=fmt)
    check_problems(caught.value, text)
    problems = caught.value.problems
    file_lines = text.split("\n")
    for field, key in expected:
        named = [p for p in problems if _names(p.field, field)]
        assert named, (field, problems)
        if key is not None:
            # A scalar's problem is on the line that holds its key.
            needle = f'"{key}":' if fmt == "json" else f"{key}:"
            assert any(needle in file_lines[p.line - 1] for p in named), (key, named)


KNOWN_KEYS = sorted({name.split(".")[-1] for name, _ in _paths(SAMPLE_DICTS[0])} | {"min", "max"})


@props(50)
@given(
    document=mutated(
        {"personas": SAMPLE_DICTS[:2]},
        max_changes=6,
        keys=st.sampled_from(KNOWN_KEYS) | nasty_text(12, surrogates=False),
    ),
    fmt=st.sampled_from(FORMATS),
)
def test_importer_reads_any_near_valid_file_or_reports_lines(
    document: dict[str, Any], fmt: FileFormat
) -> None:
    if fmt == "json":
        text = json.dumps(document, indent=2)
    else:
        text = yaml.safe_dump(document, allow_unicode=True, width=float("inf"))
    try:
        specs = parse_persona_text(text, format=fmt)
    except PersonaFileError as exc:
        check_problems(exc, text)
    else:
        assert parse_persona_text(dump_personas(specs, fmt), format=fmt) == specs


@props(70)
@given(data=mutated(SAMPLE_DICTS[0], max_changes=6, keys=st.sampled_from(KNOWN_KEYS)))
@example(data={"key": "x-y", "name": "X", "role": "R", "summary": "S", "goals": "one goal"})
def test_validator_of_one_mapping_never_raises(data: dict[str, Any]) -> None:
    spec, problems = validate_persona_mapping(data)
    assert (spec is None) == bool(problems)
    assert all(p.line == 0 and p.message for p in problems)


def _database_state(url: str) -> tuple[list[tuple[str, int, bool]], int]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Persona.key, Persona.revision, Persona.archived).order_by(Persona.key)
            )
            personas = [(key, revision, archived) for key, revision, archived in rows]
            revisions = conn.execute(select(func.count()).select_from(PersonaRevision)).scalar()
        return personas, int(revisions or 0)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def import_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A SQLite database holding the samples, imported through the command line."""
    folder = tmp_path_factory.mktemp("import")
    url = f"sqlite:///{folder / 'persona-bot.db'}"
    good = folder / "samples.yaml"
    good.write_text(dump_personas(SAMPLES), encoding="utf-8")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--db", url, "import", str(good)], environ={}, configure_logging=False) == 0
    return url, folder


@props(6)
@given(broken=broken_files(), replace=st.booleans())
def test_importing_a_broken_file_reports_every_line_and_changes_nothing(
    import_db: tuple[str, Path],
    broken: tuple[str, FileFormat, list[tuple[str, str | None]]],
    replace: bool,
) -> None:
    url, folder = import_db
    text, fmt, _ = broken
    path = folder / f"broken.{fmt}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PersonaFileError) as caught:
        parse_persona_text(text, format=fmt)
    before = _database_state(url)
    assert len(before[0]) == len(SAMPLES) and before[1] >= len(SAMPLES)

    err = io.StringIO()
    argv = ["--db", url, "import", str(path), *(["--replace"] if replace else [])]
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv, environ={}, configure_logging=False)

    assert code == 2
    printed = err.getvalue().splitlines()
    assert printed[-1].endswith("nothing was imported.")
    reported = [int(line.split(":")[1]) for line in printed[:-1]]
    assert reported == [p.line for p in caught.value.problems]
    assert _database_state(url) == before


# 3. the Slack translators ---------------------------------------------------------------

# What default_router registers (test_router_verbs checks it).
VERBS_OF_ROUTER = frozenset({*VERBS, "save", "rate", "confirm"})
wire_text = nasty_text(120, surrogates=False)


def slack_command_ok(command: Command) -> None:
    assert isinstance(command, Command)
    assert command.platform == "slack"
    assert command.user.id and command.conversation.workspace
    assert isinstance(command.verb, str) and isinstance(command.args, str)


@props(100)
@given(
    body=st.one_of(
        wire_text,
        st.builds(json.dumps, json_values()),
        st.builds(
            lambda v: urlencode({"payload": v}), wire_text | st.builds(json.dumps, json_values())
        ),
    ),
    content_type=st.sampled_from(["", FORM, "application/json", "text/plain"]),
)
def test_slack_request_bodies_are_read_or_refused(body: str, content_type: str) -> None:
    try:
        parsed = parse_request_body(body, content_type)
    except MalformedPayload:
        return
    assert isinstance(parsed, dict)


SLASH_FORM = dict(parse_qsl(recorded("slash_command.txt"), keep_blank_values=True))


@props(70)
@given(
    form=mutated(
        SLASH_FORM, max_changes=4, keys=st.sampled_from(sorted(SLASH_FORM)), text=wire_text
    ),
    text=typed_text(200, surrogates=False),
)
def test_slack_slash_commands_become_commands_or_are_refused(
    form: dict[str, Any], text: str
) -> None:
    form.setdefault("text", text)
    # Over the wire every value is text; the translator also takes what Bolt hands it.
    wire = {str(k): without_surrogates(v) for k, v in form.items() if isinstance(v, str)}
    for candidate in (form, wire):
        try:
            command = command_from_slash(candidate, verbs=VERBS_OF_ROUTER)
        except MalformedPayload:
            continue
        slack_command_ok(command)
        assert command.verb in VERBS_OF_ROUTER
    try:
        parsed = parse_request_body(urlencode(wire), FORM)
    except MalformedPayload:
        event("slash: refused")
        return
    if "command" in parsed:
        assert command_from_slash(parsed, verbs=VERBS_OF_ROUTER).verb in VERBS_OF_ROUTER
        event("slash: command")


EVENT_KEYS = st.sampled_from(
    [
        "type",
        "event",
        "text",
        "user",
        "channel",
        "channel_type",
        "subtype",
        "bot_id",
        "edited",
        "thread_ts",
        "team_id",
        "event_id",
        "ts",
    ]
)


@props(70)
@given(
    body=st.sampled_from(["app_mention.json", "message_im.json"]).flatmap(
        lambda name: mutated(recorded(name), max_changes=5, keys=EVENT_KEYS)
    ),
    text=typed_text(200),
)
def test_slack_events_become_commands_or_are_ignored(body: dict[str, Any], text: str) -> None:
    if isinstance(body.get("event"), dict) and "text" in body["event"]:
        body["event"]["text"] = text
    try:
        parsed = parse_request_body(json.dumps(body), "application/json")
    except MalformedPayload:
        return
    if parsed.get("type") != "event_callback":
        return
    command = command_from_event(
        parsed["event"],
        team_id=str(parsed.get("team_id") or ""),
        verbs=VERBS_OF_ROUTER,
        bot_user_id="UBOT",
    )
    event(f"event: {'ignored' if command is None else 'command'}")
    if command is not None:
        assert command.user.id and command.user.id != "UBOT" and command.conversation.channel
        assert command.verb in VERBS_OF_ROUTER


ACTION_IDS = st.sampled_from(
    ["pb:lookup:0", "pb:rate:1", "pb:edit:2", SHARE_ACTION, MORE_ACTION, "pb:", "pbx:other"]
) | nasty_text(20)
ORIGIN_VALUES = st.one_of(
    st.builds(
        lambda v, a, p: json.dumps({"v": v, "a": a, "p": p}),
        json_values(),
        json_values(),
        json_values(),
    ),
    st.builds(json.dumps, json_values()),
    nasty_text(40),
)


def click_command(payload: dict[str, Any], action: dict[str, Any]) -> Command | None:
    """What the Slack app reads from a click, in its order: presser, team, then the action."""
    payload_user(payload)
    payload_team(payload)
    ref = parse_action_id(str(action.get("action_id", "")))
    if ref.kind in ("share", "more"):
        return command_from_origin(payload, Origin.decode(str(action.get("value", ""))))
    return command_from_action(payload, action)


@props(100)
@given(
    payload=st.sampled_from(["block_actions.json", "block_actions_home.json"]).flatmap(
        lambda name: mutated(recorded(name), max_changes=4)
    ),
    action_id=ACTION_IDS,
    value=ORIGIN_VALUES,
)
@example(
    payload=recorded("block_actions.json"),
    action_id=SHARE_ACTION,
    value='{"v": "lookup", "a": "fiona", "p": 1e999}',
)
@example(
    payload=recorded("block_actions.json"),
    action_id=MORE_ACTION,
    value='{"v": "lookup", "a": "fiona", "p": "2"}',
)
@example(
    payload={**recorded("block_actions.json"), "team": "T1"}, action_id="pb:lookup:0", value="x"
)
def test_slack_clicks_become_commands_or_are_refused(
    payload: dict[str, Any], action_id: str, value: str
) -> None:
    actions = payload.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], dict):
        actions[0].update(action_id=action_id, value=value)
    try:
        parsed = parse_request_body(interactivity_body(json.dumps(payload)), FORM)
    except MalformedPayload:
        return
    if parsed.get("type") != "block_actions":
        return  # Bolt hands only block_actions to the click listener
    for action in parsed["actions"]:
        try:
            command = click_command(parsed, action)
        except MalformedPayload:
            event("click: refused")
            continue
        event(f"click: {'ignored' if command is None else 'command'}")
        if command is not None:
            slack_command_ok(command)
            assert command.source == "button"


FEEDBACK_VIEW = recorded("view_submission.json")


@props(70)
@given(
    payload=mutated(FEEDBACK_VIEW, max_changes=4),
    comment=nasty_text(300),  # the modal's input holds at most 2,000 characters
)
@example(payload={**FEEDBACK_VIEW, "view": {**FEEDBACK_VIEW["view"], "state": 5}}, comment="x")
@example(
    payload={**FEEDBACK_VIEW, "view": {**FEEDBACK_VIEW["view"], "state": {"values": ["x"]}}},
    comment="x",
)
def test_slack_feedback_submissions_become_commands_or_are_refused(
    payload: dict[str, Any], comment: str
) -> None:
    with contextlib.suppress(KeyError, TypeError, AttributeError):
        payload["view"]["state"]["values"]["comment"]["comment"]["value"] = comment
    try:
        parsed = parse_request_body(interactivity_body(json.dumps(payload)), FORM)
        if parsed.get("type") != "view_submission":
            return
        if (parsed.get("view") or {}).get("callback_id") != FEEDBACK_CALLBACK:
            return
        payload_user(parsed)
        payload_team(parsed)
        command = feedback_from_submission(parsed)
    except MalformedPayload:
        event("feedback: refused")
        return
    event(f"feedback: {'no comment' if command is None else 'command'}")
    if command is not None:
        slack_command_ok(command)
        assert command.verb == "feedback" and command.fields["comment"]


EDITOR_VIEW = slack_forms.editor_view(
    persona_form(SAMPLES[0], revision=3), channel="C1", response_url="https://hooks.slack.com/x"
)
EDITOR_SUBMISSION = view_submission_payload(EDITOR_VIEW, {"role": "CFO"})
FORM_WITH_ERRORS = Reply(
    summary="1 problem(s)",
    kind="form",
    form=persona_form(SAMPLES[0], revision=3, errors={"role": "must not be empty"}),
)
EDITOR_KEYS = st.sampled_from(
    ["view", "state", "values", "private_metadata", "blocks", "block_id", "value", "user", "team"]
    + [i.path for i in INPUTS]
)


@props(60)
@given(
    payload=mutated(EDITOR_SUBMISSION, max_changes=5, keys=EDITOR_KEYS),
    meta=st.one_of(
        st.none(),
        st.builds(json.dumps, json_values()),
        st.builds(
            lambda v, s, h: json.dumps({"v": v, "s": s, "h": h, "c": "C1"}),
            json_values(),
            json_values(),
            json_values(),
        ),
    ),
)
@example(
    payload={**EDITOR_SUBMISSION, "view": {**EDITOR_SUBMISSION["view"], "state": "x"}}, meta=None
)
@example(
    payload={**EDITOR_SUBMISSION, "view": {**EDITOR_SUBMISSION["view"], "blocks": 5}}, meta=None
)
def test_slack_editor_submissions_become_commands_or_are_refused(
    payload: dict[str, Any], meta: str | None
) -> None:
    view = payload.get("view")
    if meta is not None and isinstance(view, dict):
        view["private_metadata"] = meta
    try:
        parsed = parse_request_body(interactivity_body(json.dumps(payload)), FORM)
    except MalformedPayload:
        return
    slack_forms.FormMeta.of_view(parsed.get("view"))
    try:
        payload_user(parsed)
        payload_team(parsed)
        command, form_meta = slack_forms.form_submission(parsed)
    except MalformedPayload:
        event("editor: refused")
        return
    event("editor: command")
    slack_command_ok(command)
    assert command.source == "form" and all(isinstance(v, str) for v in command.fields.values())
    # The acknowledgement reads the submitted view again to place inline errors.
    ack = slack_forms.submission_ack(FORM_WITH_ERRORS, form_meta, parsed.get("view") or {})
    assert ack["response_action"] in ("errors", "update")


# 4. the Teams translators ---------------------------------------------------------------

TEAMS_NAMES = [
    "personal_message",
    "channel_message",
    "group_chat_message",
    "empty_mention",
    "attachment_only",
    "emulator_message",
    "submit_thumbs_down",
    "invoke_action_execute",
    "conversation_update_members_added",
    "installation_update",
]
TEAMS_BODIES = {
    name: json.loads((TEAMS_PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    for name in TEAMS_NAMES
}
TEAMS_KEYS = st.sampled_from(
    [
        "type",
        "text",
        "value",
        "name",
        "from",
        "conversation",
        "recipient",
        "channelData",
        "entities",
        "attachments",
        "id",
        "aadObjectId",
        "tenant",
        "tenantId",
        "conversationType",
        "mentioned",
        "verb",
        "args",
        "comment",
        "action",
        "data",
        teams_forms.FORM_KEY,
        "isGroup",
    ]
)


@props(100)
@given(
    body=st.sampled_from(TEAMS_NAMES).flatmap(
        lambda name: mutated(TEAMS_BODIES[name], max_changes=5, keys=TEAMS_KEYS)
    ),
    text=typed_text(200),
)
@example(body=TEAMS_BODIES["personal_message"], text="\x00\u202e" * 3)
def test_teams_activities_become_commands_or_are_ignored(body: dict[str, Any], text: str) -> None:
    if isinstance(body.get("text"), str):
        body["text"] = body["text"] + text
    body = json.loads(json.dumps(body))  # what the route reads: JSON
    if activity_problem(body) is not None:
        event("activity: refused")
        return  # answered 400 with the reason
    try:
        activity = Activity().deserialize(body)
    except Exception:
        event("activity: not deserialized")
        return  # answered 400: "not a Bot Framework activity"
    tenant_of(activity)
    strip_mentions(activity)
    command = teams_forms.form_submission(activity, tenant="tenant") or command_from_activity(
        activity, verbs=VERBS_OF_ROUTER, tenant="tenant"
    )
    event(f"activity: {'ignored' if command is None else command.source}")
    if command is None:
        assert unusable_reason(activity) in ("empty", "attachment", "foreign")
        return
    assert command.platform == "teams" and command.conversation.workspace == "tenant"
    assert command.user.id and len(command.user.id) <= 128
    assert len(command.conversation.channel) <= 128
    assert isinstance(command.verb, str) and command.verb
    assert all(isinstance(v, str) for v in command.fields.values())
    follow_up = feedback_follow_up(command)
    assert follow_up is None or follow_up.verb == "feedback"


# 5. the router and every renderer -------------------------------------------------------


def test_usage_events_hold_any_text_on_every_database(db_url: str) -> None:
    """A NUL (PostgreSQL refuses it) or a lone surrogate (no UTF-8 encoder takes one) in a
    usage event must not fail its batch: that batch would be retried, and block, forever."""
    runtime = Runtime.open(make_settings(db_url), seed=False)
    try:
        runtime.usage.record(
            UsageRecord(
                org_id=runtime.default_org_id,
                ts=now_ms(),
                platform="slack",
                user_id="U\x001\ud800",
                command="lookup",
                channel="C\x001",
                query="fiona\x00\udc00",
                deal_id="D-\x001",
            )
        )
        assert runtime.usage.flush(timeout=10), runtime.usage.last_error
        assert runtime.usage.write_failures == 0
        with runtime.engine.connect() as conn:
            row = conn.execute(
                select(UsageEvent.user_id, UsageEvent.channel, UsageEvent.query, UsageEvent.deal_id)
            ).one()
        assert tuple(row) == ("U1?", "C1", "fiona?", "D-1")
    finally:
        runtime.close()


def check_renders(reply: Reply, command: Command) -> None:
    """The reply renders as Block Kit, an Adaptive Card and plain text, within limits."""
    origin = Origin(command.verb, command.args[:200])
    message = message_from_reply(reply, origin=origin, share=True)
    assert block_kit_problems(message["blocks"]) == [], message["blocks"]
    assert 1 <= len(message["text"]) <= 3000
    second = blocks_from_reply(reply, origin=Origin(origin.verb, origin.args, 2))
    assert block_kit_problems(second) == []
    assert view_problems(modal_from_reply(reply, origin=origin)) == []
    if reply.form is not None:
        assert view_problems(slack_forms.editor_view(reply.form, channel="C1")) == []
        assert card_size(teams_forms.form_card(reply.form)) < TEAMS_CARD_BYTES
    card = teams_forms.card_for(reply)
    assert card_size(card) < TEAMS_CARD_BYTES
    if reply.form is None:
        assert_valid_card(card)
    teams_forms.activity_for(reply).serialize()
    text, buttons = render_text(reply)
    assert text.strip() or not reply.summary
    assert len(buttons) == sum(len(getattr(b, "buttons", ())) for b in reply.blocks)
    plain_text(reply)


def dispatch(
    loop: asyncio.AbstractEventLoop, router: Router, crashes: FailureLog, command: Command
) -> Reply:
    usage = router.runtime.usage
    failures = usage.write_failures
    reply = loop.run_until_complete(router.dispatch(command))
    assert reply.summary != messages.APOLOGY, crashes.take()
    # Its usage event is written: one that cannot be stored would block every later one.
    assert usage.flush(timeout=10) and usage.write_failures == failures, usage.last_error
    return reply


def test_router_verbs(prop_router: Router) -> None:
    assert prop_router.verbs == VERBS_OF_ROUTER


# Ids and workspaces are assigned by Slack and Teams and arrive in signed requests: odd, but
# never NUL or lone surrogates (which databases cannot store). What people type can be anything.
platform_text = nasty_text(30, surrogates=False).map(lambda text: text.replace("\x00", ""))
users = st.builds(
    UserRef,
    id=st.sampled_from(["U1", "U_ADMIN", "U_MANAGER", "W2"]) | platform_text,
    name=st.sampled_from(["", "sam"]) | nasty_text(30),
    email=st.none()
    | st.sampled_from(["admin@example.com", "fiona.owner@tallyworks.example"])
    | nasty_text(30),
)
# Mostly the home workspace, which holds the samples; now and then a new or an odd one.
conversations = st.builds(
    ConversationRef,
    platform=st.sampled_from(["slack", "teams", "console", "cli", "web"]),
    workspace=st.sampled_from(["T1"] * 6 + ["T2", ""]) | platform_text,
    channel=st.sampled_from(["C1", "D1", ""]) | platform_text,
)
names = st.sampled_from(NAMES)
arguments = st.one_of(
    names,
    st.builds(lambda n, t: f"{n} {t}", names, nasty_text(60)),
    st.builds(lambda t, n: f"{t} {n}", nasty_text(60), names),
    st.sampled_from(
        [
            "30",
            "-1",
            "0",
            "9" * 5000,
            "1e9",
            "D-1042 won 12000",
            "D-1 lost",
            "fiona for D-7",
            "fiona up",
            "fiona down",
            "Series B fintech, 300 staff, CFO worried about audit",
        ]
    ),
    nasty_text(80),
    typed_text(40),
)
verb_and_arguments = st.builds(
    lambda v, a: f"{v} {a}",
    st.sampled_from(sorted({*VERBS, *ALIASES, "save", "rate", "confirm", "which persona fits"})),
    arguments,
)
# Each verb gets its own examples (drawn at random, a handful would rarely reach them all).
FIRST_WORDS = sorted(VERBS_OF_ROUTER | {"which persona fits", "/persona", "show", "ls"})


@pytest.mark.parametrize("first", FIRST_WORDS)
@props(12)
@given(user=users, conversation=conversations, args=arguments)
def test_router_answers_every_verb_with_any_arguments(
    prop_router: Router,
    loop: asyncio.AbstractEventLoop,
    crashes: FailureLog,
    first: str,
    user: UserRef,
    conversation: ConversationRef,
    args: str,
) -> None:
    command = prop_router.command_from_text(f"{first} {args}", user, conversation)
    reply = dispatch(loop, prop_router, crashes, command)
    event(f"reply: {reply.kind}")
    check_renders(reply, command)


@props(60)
@given(
    user=users,
    conversation=conversations,
    text=st.one_of(typed_text(200), verb_and_arguments, names),
)
@example(
    user=UserRef("U_ADMIN"),
    conversation=ConversationRef("slack", "T1", "C1"),
    text="\u202efiona\x00",
)
def test_router_answers_any_text_from_anyone_without_crashing(
    prop_router: Router,
    loop: asyncio.AbstractEventLoop,
    crashes: FailureLog,
    user: UserRef,
    conversation: ConversationRef,
    text: str,
) -> None:
    command = prop_router.command_from_text(text, user, conversation)
    reply = dispatch(loop, prop_router, crashes, command)
    event(f"reply: {reply.kind}")
    check_renders(reply, command)


FIELD_NAMES = sorted(
    {i.path for i in (*INPUTS, *NEW_INPUTS)}
    | {"mode", "revision", "key", UNSHOWN_FIELD, NOTIFY_FIELD, "comment", "persona"}
)
field_values = st.one_of(
    nasty_text(60),
    st.sampled_from(["edit", "new", "3", "0", "-1", "x", "yes", "no", "9" * 5000, "1e3", "٣"]),
    st.sampled_from([s.key for s in SAMPLES]),
    st.builds(",".join, st.lists(st.sampled_from(FIELD_NAMES), max_size=3)),
)
CURRENT = "current"  # stands for the persona's revision at the time of the save


@st.composite
def editor_fields(draw: st.DrawFn) -> dict[str, str]:
    """A submitted editor, as a platform hands it over: a sample persona's form (or a new
    persona's) with a few inputs changed to anything."""
    spec = draw(st.sampled_from([None, *SAMPLES]))
    form = persona_form(spec, revision=0)
    fields = {f.name: f.value for f in form.fields} | dict(form.state)
    fields["revision"] = CURRENT
    if spec is None:
        key = draw(st.from_regex(r"[a-z]{2,10}", fullmatch=True))
        fields.update(key=f"new-{key}", name="New Nina", role="Buyer", summary="Buys things.")
    for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=4, unique=True)):
        fields[name] = draw(field_values)
    return fields


# A button's arguments come back as the bot sent them: Slack keeps at most 2,000 characters
# of a value, and Teams' translator cleans them to the grammar's 4,000.
button_arguments = arguments.map(lambda text: text[:MAX_INPUT])
submitted = (
    st.dictionaries(st.sampled_from(FIELD_NAMES), field_values, max_size=8) | editor_fields()
)


def press(
    loop: asyncio.AbstractEventLoop,
    router: Router,
    crashes: FailureLog,
    command: Command,
) -> None:
    fields = dict(command.fields)
    if fields.get("revision") == CURRENT:
        runtime = router.runtime
        persona = runtime.store.get_persona(runtime.default_org_id, fields.get("key", ""))
        fields["revision"] = str(persona.revision if persona else 0)
        command = dataclasses.replace(command, fields=fields)
    reply = dispatch(loop, router, crashes, command)
    event(f"reply: {reply.kind}")
    check_renders(reply, command)


@pytest.mark.parametrize("verb", sorted(VERBS_OF_ROUTER))
@props(8)
@given(
    user=users,
    conversation=conversations,
    args=button_arguments,
    source=st.sampled_from(["button", "form"]),
    fields=submitted,
)
def test_router_answers_every_button_and_form_verb(
    prop_router: Router,
    loop: asyncio.AbstractEventLoop,
    crashes: FailureLog,
    verb: str,
    user: UserRef,
    conversation: ConversationRef,
    args: str,
    source: Any,
    fields: dict[str, str],
) -> None:
    command = Command(user, conversation, verb, args, f"{verb} {args}", source, fields)
    press(loop, prop_router, crashes, command)


@props(40)
@given(
    command=st.builds(
        Command,
        user=users,
        conversation=conversations,
        verb=st.sampled_from(sorted(VERBS_OF_ROUTER)) | nasty_text(12),
        args=button_arguments,
        text=st.just("button"),
        source=st.sampled_from(["button", "form"]),
        fields=submitted,
    )
)
@example(
    command=Command(
        UserRef("U_ADMIN"),
        ConversationRef("slack", "T1", "C1"),
        "save",
        source="form",
        fields={"mode": "edit", "key": "finance-fiona", "revision": "x"},
    )
)
@example(
    command=Command(
        UserRef("U_ADMIN"),
        ConversationRef("slack", "T1", "C1"),
        "save",
        source="form",
        fields={"mode": "new", "key": "new-nina", "name": "Nina", "role": "R", "summary": "S"}
        | {"demographic.age.min": "9" * 5000},
    )
)
@example(
    command=Command(
        UserRef("U_ADMIN"),
        ConversationRef("slack", "T1", "C1"),
        "save",
        source="form",
        fields={"mode": "edit", "key": "finance-fiona", "revision": CURRENT, "goals": "\ud800"},
    )
)
@example(
    command=Command(
        UserRef("U1"), ConversationRef("slack", "T1", "C1"), "lookup", "fiona\udc00\x00"
    )
)
def test_router_answers_any_button_or_form_without_crashing(
    prop_router: Router,
    loop: asyncio.AbstractEventLoop,
    crashes: FailureLog,
    command: Command,
) -> None:
    press(loop, prop_router, crashes, command)
