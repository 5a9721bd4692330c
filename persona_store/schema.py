"""The persona file format: parse and strictly validate YAML or JSON persona files, and export them.

A persona file is a mapping whose only key, ``personas``, holds a list of persona mappings (the
"Persona file format" contract in the design). ``parse_persona_text`` and ``load_persona_file``
validate the whole file before returning anything and raise ``PersonaFileError`` with every
problem found, each on the line it belongs to, so an import either loads everything or changes
nothing. Both formats are read into the same line-aware document tree (YAML through PyYAML's
composer, JSON through a small position-tracking reader) and checked by one set of rules, which
``validate_persona_mapping`` also applies to a single mapping from an edit form.
``dump_personas`` writes personas back in the same format, in the contract's field order.
"""

from __future__ import annotations

import bisect
import contextlib
import difflib
import importlib.resources
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from persona_store.records import (
    DEFAULT_REVIEW_EVERY_DAYS,
    FIELD_ORDER,
    LIST_FIELDS,
    SECTION_TYPES,
    IntRange,
    PersonaSpec,
)

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_LIST_ITEMS",
    "MAX_PERSONAS",
    "MAX_REVIEW_EVERY_DAYS",
    "MAX_TEXT_CHARS",
    "PersonaFileError",
    "Problem",
    "dump_personas",
    "load_persona_file",
    "load_sample_personas",
    "parse_persona_text",
    "validate_persona_mapping",
]

FileFormat = Literal["yaml", "json"]

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_PERSONAS = 500
MAX_TEXT_CHARS = 5000
MAX_LIST_ITEMS = 200
MAX_REVIEW_EVERY_DAYS = 3650
# Range ends are stored as 64-bit integers.
MAX_RANGE_VALUE = 2**63 - 1

KEY_PATTERN = re.compile(r"[a-z0-9-]{2,64}")
REQUIRED_FIELDS = ("key", "name", "role", "summary")
# Free text where line breaks and tabs are allowed; every other string must be one line.
LONG_TEXT_FIELDS = frozenset(
    {"summary", "background", "behavioral.buying_process", "goals", "pain_points", "objections"}
)

# Control characters and unpaired surrogates; one-line text allows no tab or line break either.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_CHARS_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_YAML_TAG = "tag:yaml.org,2002:"
_YAML_KINDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
    "timestamp": "a date",
    "binary": "binary data",
}
_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")
# Below this depth a JSON document is read into plain values: deeper data is never valid.
_JSON_TREE_DEPTH = 8
_QUOTE_LIMIT = 60


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a persona file or mapping, and where it is."""

    line: int
    field: str
    message: str
    persona: str | None = None

    def format(self, filename: str) -> str:
        """``FILE:LINE: message``, prefixed with the persona key when known (no line if 0)."""
        where = f"{filename}:{self.line}" if self.line > 0 else filename
        context = f"{self.persona}: " if self.persona else ""
        return f"{where}: {context}{self.message}"


class PersonaFileError(Exception):
    """A persona file that cannot be used; ``problems`` holds all of them, sorted by line."""

    def __init__(self, problems: Iterable[Problem], filename: str = "<input>") -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(problems, key=lambda p: p.line))
        self.filename = filename
        super().__init__(self.problems, filename)

    def __str__(self) -> str:
        return "\n".join(problem.format(self.filename) for problem in self.problems)


# --------------------------------------------------------------------------- document tree


class _BadValue(Exception):
    """A scalar that cannot be read at all (unknown YAML tag, malformed integer)."""


@dataclass(frozen=True)
class _Entry:
    """One key of a mapping: its name (None if the key is not text) and where it is."""

    name: str | None
    line: int
    value: _Node
    key_description: str = ""
    error: str | None = None


class _Node:
    """A value in a document with the line it starts on, whichever reader produced it."""

    kind: Literal["mapping", "sequence", "scalar"] = "scalar"
    line: int = 0

    def entries(self) -> list[_Entry]:
        return []

    def items(self) -> list[_Node]:
        return []

    def text(self) -> str | None:
        """The value if it is a string."""
        return None

    def integer(self) -> int | None:
        """The value if it is an integer (booleans are not); ``_BadValue`` if unreadable."""
        return None

    def is_null(self) -> bool:
        return False

    def describe(self) -> str:
        return {"mapping": "a mapping", "sequence": "a list"}.get(self.kind, "a value")

    def text_hint(self) -> str:
        """Why this value, meant as text, was read as something else, if a reader can tell."""
        return ""


class _PyNode(_Node):
    """A plain Python value (an edit form's mapping, or deep JSON data) at a fixed line."""

    def __init__(self, value: Any, line: int) -> None:
        self.value = value
        self.line = line
        if isinstance(value, Mapping):
            self.kind = "mapping"
        elif isinstance(value, list | tuple):
            self.kind = "sequence"

    def entries(self) -> list[_Entry]:
        out = []
        for key, value in self.value.items():
            child = _PyNode(value, self.line)
            if isinstance(key, str):
                out.append(_Entry(key, self.line, child))
            else:
                out.append(_Entry(None, self.line, child, _describe_value(key)))
        return out

    def items(self) -> list[_Node]:
        return [_PyNode(item, self.line) for item in self.value]

    def text(self) -> str | None:
        return self.value if isinstance(self.value, str) else None

    def integer(self) -> int | None:
        value = self.value
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def is_null(self) -> bool:
        return self.value is None

    def describe(self) -> str:
        if self.kind != "scalar":
            return super().describe()
        return _describe_value(self.value)


class _JsonNode(_Node):
    """A JSON object or array with the line of each member."""

    def __init__(
        self,
        kind: Literal["mapping", "sequence"],
        line: int,
        entries: list[_Entry] | None = None,
        items: list[_Node] | None = None,
    ) -> None:
        self.kind = kind
        self.line = line
        self._entries = entries or []
        self._items = items or []

    def entries(self) -> list[_Entry]:
        return self._entries

    def items(self) -> list[_Node]:
        return self._items


class _Lines:
    """Line numbers of character positions, counting only newlines, as editors do."""

    def __init__(self, text: str) -> None:
        self._starts = [match.end() for match in re.finditer("\n", text)]

    def at(self, position: int) -> int:
        return bisect.bisect_right(self._starts, position) + 1

    def of(self, mark: yaml.Mark) -> int:
        # YAML also breaks lines at U+0085, U+2028 and U+2029; mark.line would count those.
        return self.at(mark.index)


class _YamlNode(_Node):
    """A node from PyYAML's composer; scalars are resolved by tag, never by running code."""

    def __init__(
        self, node: yaml.Node, lines: _Lines, constructor: yaml.constructor.SafeConstructor
    ) -> None:
        self.node = node
        self.line = lines.of(node.start_mark)
        self._lines = lines
        self._constructor = constructor
        if isinstance(node, yaml.MappingNode) and node.tag == _YAML_TAG + "map":
            self.kind = "mapping"
        elif isinstance(node, yaml.SequenceNode) and node.tag == _YAML_TAG + "seq":
            self.kind = "sequence"

    def _wrap(self, node: yaml.Node) -> _YamlNode:
        return _YamlNode(node, self._lines, self._constructor)

    def entries(self) -> list[_Entry]:
        return self._entries({id(self.node)})

    def _entries(self, seen: set[int]) -> list[_Entry]:
        own: list[_Entry] = []
        merged: list[_Entry] = []
        for key, value in self.node.value:
            if key.tag == _YAML_TAG + "merge":
                merged.extend(self._merge(value, seen))
            elif isinstance(key, yaml.ScalarNode):
                own.append(_Entry(key.value, self._lines.of(key.start_mark), self._wrap(value)))
            else:
                key_line, description = self._lines.of(key.start_mark), self._wrap(key).describe()
                own.append(_Entry(None, key_line, self._wrap(value), description))
        # "<<: *anchor" merges: keys written in the mapping win, then earlier sources.
        names = {entry.name for entry in own}
        for entry in merged:
            if entry.error or entry.name not in names:
                own.append(entry)
                names.add(entry.name)
        return own

    def _merge(self, value: yaml.Node, seen: set[int]) -> list[_Entry]:
        line = self._lines.of(value.start_mark)
        if isinstance(value, yaml.MappingNode):
            sources = [value]
        elif isinstance(value, yaml.SequenceNode) and all(
            isinstance(item, yaml.MappingNode) for item in value.value
        ):
            sources = list(value.value)
        else:
            message = "'<<' (merge) expects a mapping or a list of mappings"
            return [_Entry(None, line, self._wrap(value), error=message)]
        out: list[_Entry] = []
        for source in sources:
            if id(source) in seen:
                message = "'<<' (merge) refers to a mapping that contains it"
                out.append(_Entry(None, line, self._wrap(source), error=message))
            else:
                out.extend(self._wrap(source)._entries(seen | {id(source)}))
        return out

    def items(self) -> list[_Node]:
        return [self._wrap(item) for item in self.node.value]

    def _tag(self) -> str | None:
        tag = self.node.tag
        return tag[len(_YAML_TAG) :] if tag.startswith(_YAML_TAG) else None

    def text(self) -> str | None:
        if self.kind != "scalar" or self._tag() != "str":
            return None
        value: str = self.node.value
        if _CONTROL_CHARS.search(value):
            # A "\ud83d\ude00" escape arrives as two surrogates: join them as JSON would.
            with contextlib.suppress(UnicodeError):
                value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        return value

    def integer(self) -> int | None:
        if not isinstance(self.node, yaml.ScalarNode) or self._tag() != "int":
            return None
        try:
            value = self._constructor.construct_yaml_int(self.node)
        except (ValueError, yaml.YAMLError) as exc:
            raise _BadValue(f"cannot read {_quote(self.node.value)} as an integer") from exc
        return int(value)

    def is_null(self) -> bool:
        return self.kind == "scalar" and self._tag() == "null"

    def text_hint(self) -> str:
        node = self.node
        if self._tag() in ("int", "float", "bool", "timestamp"):
            return "; put it in quotes to use it as text"
        # "goal: Save time: 30%" reads as a one-key mapping on a single line.
        if (
            isinstance(node, yaml.MappingNode)
            and not node.flow_style
            and len(node.value) == 1
            and self._lines.of(node.value[0][1].start_mark) == self.line
        ):
            return "; text that contains ': ' must be put in quotes"
        return ""

    def describe(self) -> str:
        tag = self._tag()
        if self.kind != "scalar":
            return super().describe()
        if not isinstance(self.node, yaml.ScalarNode):
            return f"a value tagged {_short_tag(self.node.tag)}"
        raw = str(self.node.value)
        if tag == "str":
            return f"a string ({_quote(raw)})"
        if tag == "null":
            return "null"
        if tag in _YAML_KINDS:
            return f"{_YAML_KINDS[tag]} ({_truncate(raw)})"
        return f"a value tagged {_short_tag(self.node.tag)}"


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML_TAG) :] if tag.startswith(_YAML_TAG) else tag


def _truncate(text: str) -> str:
    return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 3] + "..."


def _quote(value: str) -> str:
    """A value quoted for a message: shortened, with invisible characters made visible."""
    return repr(_truncate(value))


def _describe_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({_truncate(str(value))})"
    if isinstance(value, float):
        return f"a number ({_truncate(repr(value))})"
    if isinstance(value, str):
        return f"a string ({_quote(value)})"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bytes | bytearray):
        return "binary data"
    return f"a value of type {type(value).__name__}"


# --------------------------------------------------------------------------- readers


def _read_yaml(text: str) -> _Node | None:
    """Compose a YAML document into a tree; syntax errors raise ``PersonaFileError``."""
    lines = _Lines(text)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise PersonaFileError([_yaml_syntax_problem(exc, lines)]) from None
    except yaml.reader.ReaderError as exc:
        code = (
            exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        )
        message = f"invalid character U+{code:04X}: control characters are not allowed in YAML"
        raise PersonaFileError([Problem(lines.at(exc.position), "", message)]) from None
    except yaml.YAMLError as exc:
        raise PersonaFileError([Problem(1, "", f"invalid YAML: {exc}")]) from None
    if root is None:
        return None
    return _YamlNode(root, lines, yaml.constructor.SafeConstructor())


def _yaml_syntax_problem(exc: yaml.MarkedYAMLError, lines: _Lines) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = lines.of(mark) if mark is not None else 1
    problem = exc.problem or exc.context or "syntax error"
    message = f"invalid YAML: {problem}"
    if exc.context and exc.problem:
        context_line = lines.of(exc.context_mark) if exc.context_mark is not None else line
        where = f" that starts on line {context_line}" if context_line != line else ""
        message += f" ({exc.context}{where})"
    if "'\\t'" in problem:
        message += "; indent with spaces, not tabs"
    elif "mapping values are not allowed" in problem:
        message += "; put text that contains ': ' in quotes"
    return Problem(line, "", message)


def _read_json(text: str) -> _Node:
    """Read a JSON document into a tree that knows the line of every key and item."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"invalid JSON: {exc.msg[:1].lower()}{exc.msg[1:]} (column {exc.colno})"
        raise PersonaFileError([Problem(exc.lineno, "", message)]) from None
    # The text is valid JSON now, so the walk below can rely on its structure.
    scan = json.JSONDecoder().raw_decode
    line_at = _Lines(text).at

    def skip(position: int) -> int:
        match = _JSON_WHITESPACE.match(text, position)
        return match.end() if match else position

    def read(position: int, depth: int) -> tuple[_Node, int]:
        position = skip(position)
        line = line_at(position)
        opening = text[position]
        if depth >= _JSON_TREE_DEPTH or opening not in "{[":
            value, end = scan(text, position)
            return _PyNode(value, line), end
        closing = "}" if opening == "{" else "]"
        entries: list[_Entry] = []
        items: list[_Node] = []
        position = skip(position + 1)
        while text[position] != closing:
            if opening == "{":
                key_line = line_at(position)
                key, position = scan(text, position)
                child, position = read(skip(position) + 1, depth + 1)
                entries.append(_Entry(key, key_line, child))
            else:
                child, position = read(position, depth + 1)
                items.append(child)
            position = skip(position)
            if text[position] == ",":
                position = skip(position + 1)
        kind: Literal["mapping", "sequence"] = "mapping" if opening == "{" else "sequence"
        return _JsonNode(kind, line, entries, items), position + 1

    return read(0, 0)[0]


def _guess_format(text: str, filename: str) -> FileFormat:
    suffix = Path(filename).suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if text.lstrip()[:1] in ("{", "["):
        try:
            json.loads(text)
        except (ValueError, RecursionError):
            return "yaml"
        return "json"
    return "yaml"


# --------------------------------------------------------------------------- rules


def _field_kind(type_name: object) -> Literal["range", "list", "text"]:
    text = str(type_name)
    if "IntRange" in text:
        return "range"
    if "tuple" in text:
        return "list"
    return "text"


_SECTION_FIELDS: dict[str, dict[str, Literal["range", "list", "text"]]] = {
    name: {f.name: _field_kind(f.type) for f in fields(section)}
    for name, section in SECTION_TYPES.items()
}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _suggestion(name: str, allowed: Sequence[str]) -> str:
    normalized = re.sub(r"[\s-]+", "_", name.strip().lower())
    if normalized in allowed and normalized != name:
        return f" (did you mean {normalized!r}?)"
    close = difflib.get_close_matches(normalized, allowed, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (expected one of: {', '.join(allowed)})"


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:64].strip("-")


class _Checker:
    """Applies the persona rules to a document tree and collects every problem."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.persona: str | None = None

    def report(self, line: int, field: str, message: str) -> None:
        self.problems.append(Problem(line, field, message, self.persona))

    # -- file and persona

    def check_file(self, root: _Node | None) -> list[PersonaSpec]:
        if root is None:
            self.report(1, "", "the file is empty; expected a mapping with a 'personas' list")
            return []
        if root.kind != "mapping":
            hint = " (put the list under 'personas:')" if root.kind == "sequence" else ""
            message = "expected a mapping with a 'personas' list at the top level, got "
            self.report(root.line, "", f"{message}{root.describe()}{hint}")
            return []
        entries = self.mapping(root, "", ("personas",), " at the top level")
        if "personas" not in entries:
            self.report(root.line, "", "missing top-level key 'personas'")
            return []
        listed = entries["personas"].value
        if listed.is_null():
            return []
        if listed.kind != "sequence":
            message = f"personas: expected a list of personas, got {listed.describe()}"
            self.report(listed.line, "", message)
            return []
        items = listed.items()
        if len(items) > MAX_PERSONAS:
            message = f"too many personas ({len(items):,}; the limit is {MAX_PERSONAS})"
            self.report(listed.line, "", message)
            items = items[:MAX_PERSONAS]
        specs: list[PersonaSpec] = []
        first_line: dict[str, int] = {}
        for index, item in enumerate(items):
            spec = self.persona_node(item, f"personas[{index}]")
            self.persona = None
            if spec is not None:
                specs.append(spec)
            # Checked even for an otherwise invalid persona: the clash is worth knowing now.
            key = _valid_key(item) if item.kind == "mapping" else None
            if key is None:
                continue
            key_line = _entry_line(item, "key")
            if key in first_line:
                message = (
                    f"key: duplicate persona key {key!r} (first used on line {first_line[key]})"
                )
                self.problems.append(Problem(key_line, "key", message, key))
            else:
                first_line[key] = key_line
        return specs

    def persona_node(self, node: _Node, where: str) -> PersonaSpec | None:
        """Check one persona mapping; the spec if it is valid."""
        if node.kind != "mapping":
            message = f"{where}: expected a mapping (one persona), got {node.describe()}"
            self.report(node.line, "", message)
            return None
        before = len(self.problems)
        self.persona = _valid_key(node)
        entries = self.mapping(node, "", FIELD_ORDER, "")
        for name in REQUIRED_FIELDS:
            if name not in entries:
                self.report(node.line, name, f"missing required field {name!r}")

        def value(name: str) -> _Node | None:
            entry = entries.get(name)
            return entry.value if entry else None

        kwargs: dict[str, Any] = {}
        key = self.text(value("key"), "key", required=True)
        if key is not None and not KEY_PATTERN.fullmatch(key):
            message = (
                f"key: {_quote(key)} is not a valid key; use 2-64 characters from a-z, 0-9 and '-'"
            )
            slug = _slug(key)
            if KEY_PATTERN.fullmatch(slug):
                message += f" (e.g. {slug!r})"
            self.report(_line(value("key")), "key", message)
        kwargs["key"] = key
        for name in ("name", "role", "summary"):
            kwargs[name] = self.text(value(name), name, required=True)
        for name in ("background", "owner"):
            kwargs[name] = self.text(value(name), name)
        kwargs["photo_url"] = self.url(value("photo_url"), "photo_url")
        days = self.integer(
            value("review_every_days"),
            "review_every_days",
            1,
            MAX_REVIEW_EVERY_DAYS,
            f"a whole number of days from 1 to {MAX_REVIEW_EVERY_DAYS}",
        )
        kwargs["review_every_days"] = DEFAULT_REVIEW_EVERY_DAYS if days is None else days
        for name in SECTION_TYPES:
            kwargs[name] = self.section(value(name), name)
        for name in LIST_FIELDS:
            kwargs[name] = self.string_list(value(name), name)
        if len(self.problems) > before:
            return None
        return PersonaSpec(**{k: v for k, v in kwargs.items() if v is not None})

    def section(self, node: _Node | None, path: str) -> Any:
        section_type = SECTION_TYPES[path]
        if node is None or node.is_null():
            return section_type()
        allowed = _SECTION_FIELDS[path]
        if node.kind != "mapping":
            message = f"{path}: expected a mapping of {', '.join(allowed)}, got {node.describe()}"
            self.report(node.line, path, message)
            return section_type()
        entries = self.mapping(node, path, tuple(allowed), f" in {path}")
        values: dict[str, Any] = {}
        for name, entry in entries.items():
            field = _join(path, name)
            kind = allowed[name]
            if kind == "range":
                values[name] = self.int_range(entry.value, field)
            elif kind == "list":
                values[name] = self.string_list(entry.value, field)
            else:
                values[name] = self.text(entry.value, field)
        return section_type(**values)

    # -- containers

    def mapping(
        self, node: _Node, path: str, allowed: Sequence[str], where: str
    ) -> dict[str, _Entry]:
        """The known keys of a mapping; reports unknown, duplicate and non-text keys."""
        known: dict[str, _Entry] = {}
        for entry in node.entries():
            if entry.error is not None:
                self.report(entry.line, path, f"{path + ': ' if path else ''}{entry.error}")
                continue
            if entry.name is None:
                message = f"keys must be text, got {entry.key_description}{where}"
                self.report(entry.line, path, message)
                continue
            name = entry.name
            field = _join(path, name)
            if name not in allowed:
                message = f"unknown key {_quote(name)}{where}{_suggestion(name, allowed)}"
                self.report(entry.line, field, message)
            elif name in known:
                first = known[name].line
                message = f"duplicate key {_quote(name)}{where} (first on line {first})"
                self.report(entry.line, field, message)
            else:
                known[name] = entry
        return known

    def string_list(self, node: _Node | None, path: str) -> tuple[str, ...]:
        if node is None or node.is_null():
            return ()
        if node.kind != "sequence":
            single = node.text()
            if single is not None:
                message = (
                    f"{path}: expected a list, got a single string ({_quote(single)}); "
                    "write each item on its own '- ' line or in brackets [...]"
                )
            else:
                message = f"{path}: expected a list of text items, got {node.describe()}"
            self.report(node.line, path, message)
            return ()
        items = node.items()
        if len(items) > MAX_LIST_ITEMS:
            message = f"{path}: too many items ({len(items):,}; the limit is {MAX_LIST_ITEMS})"
            self.report(node.line, path, message)
            items = items[:MAX_LIST_ITEMS]
        long_text = path in LONG_TEXT_FIELDS
        values = []
        for index, item in enumerate(items):
            value = self.text(item, f"{path}[{index}]", required=True, long_text=long_text)
            if value is not None:
                values.append(value)
        return tuple(values)

    def int_range(self, node: _Node, path: str) -> IntRange | None:
        if node.is_null():
            return None
        if node.kind != "mapping":
            message = (
                f"{path}: expected a mapping with 'min' and/or 'max' "
                f"(e.g. {{min: 10, max: 50}}), got {node.describe()}"
            )
            self.report(node.line, path, message)
            return None
        entries = self.mapping(node, path, ("min", "max"), f" in {path}")
        low = self.integer(_value(entries, "min"), f"{path}.min", 0, MAX_RANGE_VALUE)
        high = self.integer(_value(entries, "max"), f"{path}.max", 0, MAX_RANGE_VALUE)
        if low is not None and high is not None and low > high:
            self.report(node.line, path, f"{path}: min {low} is greater than max {high}")
        if low is None and high is None:
            return None
        return IntRange(low, high)

    # -- scalars

    def text(
        self, node: _Node | None, path: str, *, required: bool = False, long_text: bool = False
    ) -> str | None:
        """A stripped string, or None (after reporting) if it is missing or not acceptable."""
        if node is None:
            return None
        long_text = long_text or path in LONG_TEXT_FIELDS
        if node.is_null():
            if required:
                self.report(node.line, path, f"{path}: must not be empty")
            return None
        value = node.text()
        if value is None:
            message = f"{path}: expected text, got {node.describe()}{node.text_hint()}"
            self.report(node.line, path, message)
            return None
        if long_text:
            value = value.replace("\r\n", "\n").replace("\r", "\n")
        value = value.strip()
        if not value:
            if required:
                self.report(node.line, path, f"{path}: must not be empty")
            return None
        forbidden = (_CONTROL_CHARS if long_text else _CONTROL_CHARS_ONE_LINE).search(value)
        if forbidden is not None:
            char = forbidden.group()
            if char in "\r\n\u2028\u2029":
                message = f"{path}: must be a single line, without line breaks"
            else:
                what = "an unpaired surrogate" if char >= "\ud800" else "control character"
                message = f"{path}: contains {what} U+{ord(char):04X}; remove it"
            self.report(node.line, path, message)
            return None
        if len(value) > MAX_TEXT_CHARS:
            message = (
                f"{path}: too long ({len(value):,} characters; the limit is {MAX_TEXT_CHARS:,})"
            )
            self.report(node.line, path, message)
            return None
        return value

    def url(self, node: _Node | None, path: str) -> str | None:
        value = self.text(node, path)
        if value is None or node is None:
            return None
        try:
            parts = urlsplit(value)
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        if parts is None or parts.scheme.lower() != "https" or not host or " " in value:
            message = f"{path}: expected an absolute https:// URL with a host, got {_quote(value)}"
            self.report(node.line, path, message)
            return None
        return value

    def integer(
        self, node: _Node | None, path: str, low: int, high: int, expected: str = "a whole number"
    ) -> int | None:
        if node is None or node.is_null():
            return None
        try:
            value = node.integer()
        except _BadValue as exc:
            self.report(node.line, path, f"{path}: {exc}")
            return None
        if value is None:
            self.report(node.line, path, f"{path}: expected {expected}, got {node.describe()}")
            return None
        if value < low:
            self.report(node.line, path, f"{path}: must be {low} or more, got {value}")
            return None
        if value > high:
            self.report(node.line, path, f"{path}: must be at most {high:,}, got {value:,}")
            return None
        return value


def _value(entries: Mapping[str, _Entry], name: str) -> _Node | None:
    entry = entries.get(name)
    return entry.value if entry else None


def _line(node: _Node | None) -> int:
    return node.line if node is not None else 0


def _entry_line(node: _Node, name: str) -> int:
    for entry in node.entries():
        if entry.name == name:
            return entry.value.line
    return node.line


def _valid_key(node: _Node) -> str | None:
    """The persona's key if it is valid, to give every message about it some context."""
    for entry in node.entries():
        if entry.name == "key":
            value = entry.value.text()
            if value is not None and KEY_PATTERN.fullmatch(value.strip()):
                return value.strip()
            return None
    return None


# --------------------------------------------------------------------------- public API


def parse_persona_text(
    text: str, *, filename: str = "<input>", format: FileFormat | None = None
) -> list[PersonaSpec]:
    """Parse and validate a whole persona file; raise ``PersonaFileError`` with every problem.

    ``format`` None guesses from the file name's suffix, then from the content.
    """
    if format not in (None, "yaml", "json"):
        raise ValueError(f"unknown persona file format {format!r}; use 'yaml' or 'json'")
    size = len(text) if len(text) > MAX_FILE_BYTES else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        raise PersonaFileError([_too_large(size)], filename)
    # Old Mac and Windows line ends mean the same in both formats; lines are then newlines.
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    chosen = format or _guess_format(text, filename)
    try:
        root = _read_json(text) if chosen == "json" else _read_yaml(text)
        checker = _Checker()
        specs = checker.check_file(root)
    except PersonaFileError as exc:
        raise PersonaFileError(exc.problems, filename) from None
    except RecursionError:
        message = "the file is nested too deeply to be a persona file"
        raise PersonaFileError([Problem(1, "", message)], filename) from None
    if checker.problems:
        raise PersonaFileError(checker.problems, filename)
    return specs


def load_persona_file(path: str | os.PathLike[str]) -> list[PersonaSpec]:
    """Read a UTF-8 persona file (YAML or JSON, by suffix or content) and validate it."""
    filename = os.fspath(path)

    def fail(message: str, line: int = 0) -> PersonaFileError:
        return PersonaFileError([Problem(line, "", message)], filename)

    try:
        size = os.stat(filename).st_size
        if size > MAX_FILE_BYTES:
            raise PersonaFileError([_too_large(size)], filename)
        with open(filename, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise fail("file not found") from None
    except IsADirectoryError:
        raise fail("is a directory, not a persona file") from None
    except PermissionError:
        raise fail("cannot read the file: permission denied") from None
    except OSError as exc:
        raise fail(f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise PersonaFileError([_too_large(len(data))], filename)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start : exc.start + 1].hex()
        message = f"the file is not UTF-8 text (byte 0x{byte} cannot be decoded); save it as UTF-8"
        raise fail(message, line) from None
    return parse_persona_text(text, filename=filename)


def load_sample_personas() -> list[PersonaSpec]:
    """The sample personas that ship with the product, for a new, empty database."""
    resource = importlib.resources.files("persona_store").joinpath("data/sample_personas.yaml")
    return parse_persona_text(resource.read_text(encoding="utf-8"), filename="sample_personas.yaml")


def validate_persona_mapping(
    data: Mapping[str, Any],
) -> tuple[PersonaSpec | None, tuple[Problem, ...]]:
    """Validate one persona mapping (e.g. from an edit form) with the file's rules.

    Returns the spec and no problems, or None and every problem (all on line 0).
    """
    checker = _Checker()
    # The walk follows the persona layout, so nesting in the data cannot make it recurse deeper.
    spec = checker.persona_node(_PyNode(data, 0), "persona")
    if checker.problems:
        return None, tuple(checker.problems)
    return spec, ()


def _too_large(size: int) -> Problem:
    megabytes = size / (1024 * 1024)
    limit = MAX_FILE_BYTES // (1024 * 1024)
    return Problem(0, "", f"the file is too large ({megabytes:.1f} MB; the limit is {limit} MB)")


class _Dumper(yaml.SafeDumper):
    """Block-style YAML with list items indented under their key, as people write it."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Multi-line text as a literal block keeps its line breaks readable and exact.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar(_YAML_TAG + "str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_personas(personas: Sequence[PersonaSpec], format: FileFormat = "yaml") -> str:
    """Write personas in the persona file format: ``{"personas": [...]}``, fields in file order."""
    documents = [persona.to_dict() for persona in personas]
    if format == "json":
        return json.dumps({"personas": documents}, indent=2, ensure_ascii=False) + "\n"
    if format != "yaml":
        raise ValueError(f"unknown persona file format {format!r}; use 'yaml' or 'json'")
    if not documents:
        return "personas: []\n"
    chunks = []
    for document in documents:
        chunk = yaml.dump(
            [document],
            Dumper=_Dumper,
            allow_unicode=True,
            sort_keys=False,
            default_flow_style=False,
            width=float("inf"),
        )
        chunks.append(
            "".join(f"  {line}" if line.strip() else line for line in chunk.splitlines(True))
        )
    # A blank line between personas, as in a hand-written file.
    return "personas:\n" + "\n".join(chunks)
