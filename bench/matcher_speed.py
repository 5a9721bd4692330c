"""Speed benchmark of ``Matcher.rank`` for 5, 1,000 and 10,000 personas.

Larger persona sets are generated from the development personas: new keys and names,
jittered size and revenue ranges, and shuffled, thinned lists, so that no two generated
personas are identical. Every development deal is ranked several times per size; the
report gives the median and 95th percentile per query, and the build time of the Matcher.

    python bench/matcher_speed.py [--sizes 5,1000,10000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from persona_store.matcher import DealQuery, Matcher
from persona_store.records import IntRange, PersonaSpec

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
_FIELDS = ("industry", "employees", "revenue_usd", "region", "title", "stage")


def _jitter(r: IntRange | None, rng: random.Random) -> IntRange | None:
    if r is None:
        return None
    lo = int(r.min * rng.uniform(0.7, 1.3)) if r.min is not None else None
    hi = int(r.max * rng.uniform(0.7, 1.3)) if r.max is not None else None
    if lo is not None and hi is not None and hi < lo:
        lo, hi = hi, lo
    return IntRange(lo, hi)


def _thin(values: tuple[str, ...], rng: random.Random) -> tuple[str, ...]:
    kept = [v for v in values if rng.random() < 0.8] or list(values[:1])
    rng.shuffle(kept)
    return tuple(kept)


def generate(base: list[PersonaSpec], count: int, seed: int = 7) -> list[PersonaSpec]:
    """``count`` personas varied from ``base``."""
    rng = random.Random(seed)
    out: list[PersonaSpec] = []
    for n in range(count):
        spec = base[n % len(base)]
        if n < len(base):
            out.append(spec)
            continue
        firmo = replace(
            spec.firmographic,
            employees=_jitter(spec.firmographic.employees, rng),
            annual_revenue_usd=_jitter(spec.firmographic.annual_revenue_usd, rng),
            industries=_thin(spec.firmographic.industries, rng),
            regions=_thin(spec.firmographic.regions, rng),
        )
        demo = replace(spec.demographic, job_titles=_thin(spec.demographic.job_titles, rng))
        behav = replace(
            spec.behavioral,
            tools=_thin(spec.behavioral.tools, rng),
            triggers=_thin(spec.behavioral.triggers, rng),
        )
        out.append(
            replace(
                spec,
                key=f"{spec.key}-{n}",
                name=f"{spec.name} {n}",
                demographic=demo,
                firmographic=firmo,
                behavioral=behav,
                goals=_thin(spec.goals, rng),
                pain_points=_thin(spec.pain_points, rng),
                keywords=_thin(spec.keywords, rng),
            )
        )
    return out


def queries() -> list[DealQuery]:
    deals = yaml.safe_load((DATA / "deals_dev.yaml").read_text(encoding="utf-8"))["deals"]
    out = []
    for d in deals:
        fields = d.get("fields") or {}
        kwargs: dict[str, Any] = {k: fields[k] for k in _FIELDS if fields.get(k) is not None}
        for k in ("industry", "region", "title", "stage"):
            if k in kwargs:
                kwargs[k] = str(kwargs[k])
        out.append(DealQuery(text=d["text"], **kwargs))
    return out


def measure(size: int, repeat: int) -> dict[str, float]:
    raw = yaml.safe_load((DATA / "personas_dev.yaml").read_text(encoding="utf-8"))
    base = [PersonaSpec.from_dict(p) for p in raw["personas"]]
    personas = generate(base, size)
    t0 = time.perf_counter()
    matcher = Matcher(personas)
    build = time.perf_counter() - t0
    qs = queries()
    for q in qs[:5]:
        matcher.rank(q)  # warm caches
    timings: list[float] = []
    for _ in range(repeat):
        for q in qs:
            t = time.perf_counter()
            matcher.rank(q)
            timings.append(time.perf_counter() - t)
    timings.sort()
    return {
        "personas": size,
        "queries": len(timings),
        "build_s": round(build, 3),
        "median_ms": round(statistics.median(timings) * 1000, 3),
        "p95_ms": round(timings[int(0.95 * (len(timings) - 1))] * 1000, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [measure(int(s), args.repeat) for s in args.sizes.split(",")]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(
            f"{r['personas']:>6} personas: median {r['median_ms']:.3f} ms, "
            f"p95 {r['p95_ms']:.3f} ms ({r['queries']} queries, build {r['build_s']:.2f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
