"""Plain, immutable records of a persona: what the file format holds and what the store returns.

Everything above the database (matcher, handlers, renderers, adapters) works with these
records, never with ORM rows, so that nothing outside ``persona_store`` needs a session.
``PersonaSpec`` is the content of one persona exactly as the import/export file describes it;
``StoredPersona`` adds what the store knows about it (id, revision, review date, archive flag).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

DEFAULT_REVIEW_EVERY_DAYS = 90


@dataclass(frozen=True)
class IntRange:
    """An inclusive range; either end may be open (None)."""

    min: int | None = None
    max: int | None = None

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def to_dict(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> IntRange | None:
        if not data:
            return None
        return cls(min=data.get("min"), max=data.get("max"))


def _tuple(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values or ())


@dataclass(frozen=True)
class _Section:
    """Common (de)serialisation of the four data-type sections."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, IntRange):
                if value.to_dict():
                    out[f.name] = value.to_dict()
            elif isinstance(value, tuple):
                if value:
                    out[f.name] = list(value)
            elif value not in (None, ""):
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Any:
        data = data or {}
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            kind = str(f.type)
            if "IntRange" in kind:
                kwargs[f.name] = IntRange.from_dict(value)
            elif "tuple" in kind:
                kwargs[f.name] = _tuple(value)
            else:
                kwargs[f.name] = value
        return cls(**kwargs)

    def is_empty(self) -> bool:
        return not self.to_dict()


@dataclass(frozen=True)
class Demographic(_Section):
    job_titles: tuple[str, ...] = ()
    seniority: tuple[str, ...] = ()
    experience_years: IntRange | None = None
    age: IntRange | None = None
    education: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Firmographic(_Section):
    industries: tuple[str, ...] = ()
    employees: IntRange | None = None
    annual_revenue_usd: IntRange | None = None
    regions: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Behavioral(_Section):
    channels: tuple[str, ...] = ()
    content: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()
    buying_process: str | None = None


@dataclass(frozen=True)
class Psychographic(_Section):
    values: tuple[str, ...] = ()
    motivations: tuple[str, ...] = ()
    attitudes: tuple[str, ...] = ()
    interests: tuple[str, ...] = ()


SECTION_TYPES: dict[str, type[_Section]] = {
    "demographic": Demographic,
    "firmographic": Firmographic,
    "behavioral": Behavioral,
    "psychographic": Psychographic,
}
LIST_FIELDS = ("goals", "pain_points", "objections", "keywords")
TEXT_FIELDS = ("key", "name", "role", "summary", "background", "photo_url", "owner")
# The order of fields in the file format and in exports.
FIELD_ORDER = (
    "key",
    "name",
    "role",
    "summary",
    "background",
    "photo_url",
    "owner",
    "review_every_days",
    *SECTION_TYPES,
    *LIST_FIELDS,
)


@dataclass(frozen=True)
class PersonaSpec:
    """The content of one persona, as the persona file format describes it."""

    key: str
    name: str
    role: str
    summary: str
    background: str | None = None
    photo_url: str | None = None
    owner: str | None = None
    review_every_days: int = DEFAULT_REVIEW_EVERY_DAYS
    demographic: Demographic = field(default_factory=Demographic)
    firmographic: Firmographic = field(default_factory=Firmographic)
    behavioral: Behavioral = field(default_factory=Behavioral)
    psychographic: Psychographic = field(default_factory=Psychographic)
    goals: tuple[str, ...] = ()
    pain_points: tuple[str, ...] = ()
    objections: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The file-format mapping, in file order, leaving out empty optional parts."""
        out: dict[str, Any] = {}
        for name in FIELD_ORDER:
            value = getattr(self, name)
            if isinstance(value, _Section):
                if not value.is_empty():
                    out[name] = value.to_dict()
            elif isinstance(value, tuple):
                if value:
                    out[name] = list(value)
            elif value is not None and value != "":
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersonaSpec:
        """Build from an already validated mapping (see ``persona_store.schema``)."""
        kwargs: dict[str, Any] = {}
        for name in TEXT_FIELDS:
            if data.get(name) is not None:
                kwargs[name] = str(data[name])
        if data.get("review_every_days") is not None:
            kwargs["review_every_days"] = int(data["review_every_days"])
        for name, section in SECTION_TYPES.items():
            kwargs[name] = section.from_dict(data.get(name))
        for name in LIST_FIELDS:
            kwargs[name] = _tuple(data.get(name))
        return cls(**kwargs)

    def data_types_present(self) -> list[str]:
        """Which of the four data types hold anything."""
        return [name for name in SECTION_TYPES if not getattr(self, name).is_empty()]


@dataclass(frozen=True)
class StoredPersona:
    """A persona as the store knows it: its content plus identity and lifecycle."""

    id: int
    org_id: int
    spec: PersonaSpec
    revision: int
    last_reviewed_at: datetime | None
    archived: bool
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def name(self) -> str:
        return self.spec.name
