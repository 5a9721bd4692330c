"""Accuracy benchmark of the persona matcher on a labelled deal set.

Runs every deal of a deal file through ``Matcher.rank`` and reports top-1 accuracy (a deal
labelled ``null`` counts as correct only when the matcher answers "no persona"), the wrong
answers with their score and verdict, and precision and recall of "no persona". ``evaluate``
is the importable core used by the tests; the command line prints the same report:

    python bench/matcher_eval.py [--personas FILE] [--deals FILE] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from persona_store.matcher import DealQuery, Matcher
from persona_store.records import PersonaSpec

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
DEFAULT_PERSONAS = DATA / "personas_dev.yaml"
DEFAULT_DEALS = DATA / "deals_dev.yaml"
_FIELDS = ("industry", "employees", "revenue_usd", "region", "title", "stage")


@dataclass(frozen=True)
class Miss:
    """One wrong answer."""

    id: str
    expected: str | None
    got: str | None
    score: int
    verdict: str


@dataclass
class Report:
    """What ``evaluate`` measured."""

    total: int
    correct: int
    nulls_forced: int  # deals labelled null that got a persona
    none_precision: float
    none_recall: float
    misses: list[Miss] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["accuracy"] = round(self.accuracy, 4)
        return out


def load_personas(path: Path) -> list[PersonaSpec]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [PersonaSpec.from_dict(p) for p in data["personas"]]


def load_deals(path: Path) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text(encoding="utf-8"))["deals"])


def query_of(deal: dict[str, Any]) -> DealQuery:
    fields = deal.get("fields") or {}
    kwargs = {k: fields[k] for k in _FIELDS if fields.get(k) is not None}
    for k in ("employees", "revenue_usd"):
        if k in kwargs:
            kwargs[k] = int(kwargs[k])
    for k in ("industry", "region", "title", "stage"):
        if k in kwargs:
            kwargs[k] = str(kwargs[k])
    return DealQuery(text=str(deal.get("text", "")), **kwargs)


def evaluate(personas: Path = DEFAULT_PERSONAS, deals: Path = DEFAULT_DEALS) -> Report:
    """Rank every deal of ``deals`` against ``personas`` and score the answers."""
    matcher = Matcher(load_personas(personas))
    items = load_deals(deals)
    correct = forced = none_said = none_right = none_expected = 0
    misses: list[Miss] = []
    for deal in items:
        expected = deal.get("expected")
        result = matcher.rank(query_of(deal))
        got = result.best
        if expected is None:
            none_expected += 1
        if got is None:
            none_said += 1
            if expected is None:
                none_right += 1
        if got == expected:
            correct += 1
            continue
        if expected is None:
            forced += 1
        top = result.matches[0].score if result.matches else 0
        misses.append(Miss(str(deal["id"]), expected, got, top, result.verdict))
    return Report(
        total=len(items),
        correct=correct,
        nulls_forced=forced,
        none_precision=none_right / none_said if none_said else 1.0,
        none_recall=none_right / none_expected if none_expected else 1.0,
        misses=misses,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=Path, default=DEFAULT_PERSONAS)
    parser.add_argument("--deals", type=Path, default=DEFAULT_DEALS)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = evaluate(args.personas, args.deals)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(f"deals: {report.total}")
    print(f"top-1 accuracy: {report.accuracy:.1%} ({report.correct}/{report.total})")
    print(f"null deals forced onto a persona: {report.nulls_forced}")
    print(f"'none' precision: {report.none_precision:.1%}  recall: {report.none_recall:.1%}")
    if report.misses:
        print("wrong answers (id, expected, got, top score, verdict):")
        for m in report.misses:
            print(f"  {m.id}  expected={m.expected}  got={m.got}  score={m.score}  {m.verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
