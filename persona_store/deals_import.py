"""CRM exports of deals, read into ``DealRow``s for outcome correlation.

Three layouts are recognised by their header row: HubSpot's deal export (``Record ID, Deal
Name, Deal Stage, Amount, Close Date``), Salesforce's opportunity export (``Opportunity ID,
Opportunity Name, Stage, Amount, Close Date``) and a plain one (``deal_id, outcome, amount,
closed_at``). Other columns are ignored. Files may start with a byte-order mark, be UTF-8 or
Windows-1252, use ``,``, ``;`` or tabs, write amounts with currency signs and either decimal
convention (``$12,000.50``, ``12.000,50 €``), and dates as ISO, ``MM/DD/YYYY`` (``DD/MM/YYYY``
when the first number cannot be a month) or ``DD.MM.YYYY``. Stages other than closed won or
lost mean the deal is still open.

The file is checked as a whole: every row that cannot be read becomes a ``DealProblem`` with
its line number, and ``read_deals`` raises ``DealFileError`` with all of them, so that an
import changes nothing unless every row is good.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from persona_store.deals import DealRow

MAX_ID = 128
MAX_NAME = 500


@dataclass(frozen=True)
class DealProblem:
    line: int
    message: str

    def format(self, filename: str) -> str:
        return f"{filename}:{self.line}: {self.message}"


class DealFileError(Exception):
    """A deal file that cannot be imported; ``problems`` holds every problem, by line."""

    def __init__(self, problems: Iterable[DealProblem], filename: str = "<input>") -> None:
        self.problems = tuple(sorted(problems, key=lambda p: p.line))
        self.filename = filename
        super().__init__(self.problems, filename)

    def __str__(self) -> str:
        return "\n".join(p.format(self.filename) for p in self.problems)


@dataclass(frozen=True)
class Layout:
    """Which header names a CRM uses for each field (names compared normalised)."""

    name: str
    id: str
    outcome: str
    amount: str
    closed_at: str
    deal_name: str | None = None
    stage_is_outcome: bool = False  # the plain layout writes won/lost/open itself


LAYOUTS = (
    Layout("HubSpot", "record id", "deal stage", "amount", "close date", "deal name"),
    Layout("Salesforce", "opportunity id", "stage", "amount", "close date", "opportunity name"),
    Layout("plain", "deal id", "outcome", "amount", "closed at", stage_is_outcome=True),
)
EXPECTED = (
    "HubSpot (Record ID, Deal Name, Deal Stage, Amount, Close Date), "
    "Salesforce (Opportunity ID, Opportunity Name, Stage, Amount, Close Date) "
    "or plain (deal_id, outcome, amount, closed_at)"
)


def _header(name: str) -> str:
    return " ".join(name.replace("\ufeff", "").replace("_", " ").strip().lower().split())


def detect_layout(header: list[str]) -> Layout | None:
    names = {_header(h) for h in header}
    for layout in LAYOUTS:
        if {layout.id, layout.outcome} <= names:
            return layout
    return None


# values ----------------------------------------------------------------------------------

_STAGE_WORDS = re.compile(r"[^a-z]+")


def outcome_of_stage(stage: str) -> str:
    """``Closed Won`` / ``closedwon`` -> won, ``Closed Lost`` -> lost, anything else open."""
    compact = _STAGE_WORDS.sub("", stage.lower())
    if compact in ("closedwon", "won"):
        return "won"
    if compact in ("closedlost", "lost"):
        return "lost"
    return "open"


def parse_outcome(text: str) -> str:
    """The plain layout's outcome column: won, lost or open (closed won/lost accepted)."""
    compact = _STAGE_WORDS.sub("", text.lower())
    mapping = {"won": "won", "closedwon": "won", "lost": "lost", "closedlost": "lost"}
    mapping.update({"open": "open", "": "open"})
    if compact not in mapping:
        raise ValueError(f"outcome must be won, lost or open, not '{text}'")
    return mapping[compact]


_AMOUNT = re.compile(
    r"^(?P<pre>[^\d\-]*?)\s*(?P<num>\d[\d.,'\s\u00a0\u202f]*?)\s*(?P<post>[^\d]*)$"
)
_CURRENCY = re.compile(r"^[\s$€£¥₹]*(?:[A-Za-z]{3}|[A-Za-z]{0,2}\$)?[\s$€£¥₹]*$")


def parse_amount(text: str, *, decimal_comma: bool = False) -> float | None:
    """``12000``, ``$12,000.50``, ``USD 12 000``, ``12.000,50 €`` -> a number; empty -> None.

    A lone separator followed by exactly three digits is a thousands separator (``12,000``)
    unless the file uses decimal commas (``;``-separated exports), where ``12.000`` is twelve
    thousand and ``12,5`` twelve and a half.
    """
    raw = text.strip()
    if not raw:
        return None
    if raw.startswith("-") or raw.startswith("("):
        raise ValueError(f"amount '{text}' is negative")
    found = _AMOUNT.match(raw)
    if not found or not _CURRENCY.match(found["pre"]) or not _CURRENCY.match(found["post"]):
        raise ValueError(f"amount '{text}' is not a number")
    digits = re.sub(r"[\s\u00a0\u202f']", "", found["num"])
    if "," in digits and "." in digits:
        decimal = "," if digits.rfind(",") > digits.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        whole, _, fraction = digits.rpartition(decimal)
        if decimal in whole or not _grouped(whole, thousands):
            raise ValueError(f"amount '{text}' is not a number")
        digits = whole.replace(thousands, "") + "." + fraction
    elif "," in digits or "." in digits:
        separator = "," if "," in digits else "."
        parts = digits.split(separator)
        is_decimal = len(parts) == 2 and (
            len(parts[1]) != 3 or (decimal_comma == (separator == ","))
        )
        if is_decimal:
            digits = parts[0] + "." + parts[1]
        elif _grouped(digits, separator):
            digits = digits.replace(separator, "")
        else:
            raise ValueError(f"amount '{text}' is not a number")
    try:
        return float(digits)
    except ValueError:
        raise ValueError(f"amount '{text}' is not a number") from None


def _grouped(number: str, separator: str) -> bool:
    parts = number.split(separator)
    return 1 <= len(parts[0]) <= 3 and all(len(p) == 3 and p.isdigit() for p in parts[1:])


_SLASHED = re.compile(r"^(\d{1,4})[/.-](\d{1,2})[/.-](\d{1,4})(?:[ T].*)?$")


def parse_date(text: str) -> datetime | None:
    """A close date as an aware UTC datetime; empty -> None. See the module docstring."""
    raw = text.strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except ValueError:
        pass
    found = _SLASHED.match(raw)
    if found:
        a, b, c = (int(x) for x in found.groups())
        sep = raw[len(found.group(1))]
        if len(found.group(1)) == 4:  # 2024/03/01
            year, month, day = a, b, c
        elif sep == "." or a > 12:  # 01.03.2024, or 25/03/2024 (cannot be month first)
            day, month, year = a, b, c
        else:  # 03/25/2024: the CRMs' US default
            month, day, year = a, b, c
        if year < 100:
            year += 2000
        try:
            return datetime(year, month, day, tzinfo=UTC)
        except ValueError:
            pass
    raise ValueError(f"close date '{text}' is not a date (use YYYY-MM-DD)")


# files -----------------------------------------------------------------------------------


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def read_deals_text(text: str) -> tuple[str, list[DealRow]]:
    """The layout name and the deals of CSV text; DealFileError lists every bad row."""
    text = text.lstrip("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = _delimiter(first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DealFileError([DealProblem(1, "the file is empty")]) from None
    layout = detect_layout(header)
    if layout is None:
        shown = ", ".join(h.strip() for h in header if h.strip()) or "none"
        raise DealFileError([DealProblem(1, f"unknown columns ({shown}); expected {EXPECTED}")])
    index = {_header(h): i for i, h in enumerate(header)}
    problems: list[DealProblem] = []
    rows: list[DealRow] = []
    seen: dict[str, int] = {}
    line = reader.line_num
    for record in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > len(header):
            problems.append(
                DealProblem(start, f"{len(record)} fields but the header has {len(header)} columns")
            )
            continue

        def cell(name: str | None, record: list[str] = record) -> str:
            i = index.get(name or "")
            return record[i].strip() if i is not None and i < len(record) else ""

        row_problems = []
        deal_id = cell(layout.id)
        if not deal_id:
            row_problems.append(f"the {layout.id} column is empty")
        elif len(deal_id) > MAX_ID:
            row_problems.append(f"deal id is longer than {MAX_ID} characters")
        elif deal_id in seen:
            row_problems.append(f"deal {deal_id} is already on line {seen[deal_id]}")
        outcome = "open"
        try:
            stage = cell(layout.outcome)
            outcome = parse_outcome(stage) if layout.stage_is_outcome else outcome_of_stage(stage)
        except ValueError as exc:
            row_problems.append(str(exc))
        amount = closed_at = None
        try:
            amount = parse_amount(cell(layout.amount), decimal_comma=delimiter == ";")
        except ValueError as exc:
            row_problems.append(str(exc))
        try:
            closed_at = parse_date(cell(layout.closed_at))
        except ValueError as exc:
            row_problems.append(str(exc))
        if row_problems:
            problems.extend(DealProblem(start, message) for message in row_problems)
            continue
        seen[deal_id] = start
        name = cell(layout.deal_name)[:MAX_NAME] or None
        rows.append(DealRow(deal_id, outcome, amount, closed_at, name))
    if problems:
        raise DealFileError(problems)
    return layout.name, rows


def read_deals(path: str | Path) -> tuple[str, list[DealRow]]:
    """Read a CRM export file; DealFileError (with the file name) on any bad row."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        problem = DealProblem(0, f"cannot read the file: {exc.strerror}")
        raise DealFileError([problem], str(path)) from None
    try:
        return read_deals_text(decode(data))
    except DealFileError as exc:
        raise DealFileError(exc.problems, str(path)) from None
    except csv.Error as exc:
        raise DealFileError([DealProblem(0, f"not a CSV file: {exc}")], str(path)) from None
