"""The sample personas that ship with the product are valid, complete and distinct."""

from __future__ import annotations

import re
from dataclasses import fields
from importlib.resources import files
from pathlib import Path

import pytest

from persona_store.records import LIST_FIELDS, SECTION_TYPES, IntRange, PersonaSpec
from persona_store.schema import (
    dump_personas,
    load_persona_file,
    load_sample_personas,
    parse_persona_text,
)

SAMPLE_FILE = Path(str(files("persona_store").joinpath("data/sample_personas.yaml")))
EXPECTED = {
    "finance-fiona": "Finance Fiona",
    "controller-carlos": "Controller Carlos",
    "procurement-paula": "Procurement Paula",
    "it-ivan": "IT Ivan",
}


@pytest.fixture(scope="module")
def personas() -> list[PersonaSpec]:
    return load_persona_file(SAMPLE_FILE)


def test_sample_file_validates_and_has_the_expected_personas(personas: list[PersonaSpec]) -> None:
    assert 3 <= len(personas) <= 5
    assert {p.key: p.name for p in personas} == EXPECTED
    assert load_sample_personas() == personas


def test_every_persona_has_all_four_data_types(personas: list[PersonaSpec]) -> None:
    for persona in personas:
        assert persona.data_types_present() == list(SECTION_TYPES), persona.key


def test_every_section_field_is_filled(personas: list[PersonaSpec]) -> None:
    for persona in personas:
        for section_name in SECTION_TYPES:
            section = getattr(persona, section_name)
            for field in fields(section):
                value = getattr(section, field.name)
                assert value, f"{persona.key}: {section_name}.{field.name} is empty"
                if isinstance(value, IntRange):
                    assert value.min is not None and value.max is not None
                    assert value.min < value.max
        for name in LIST_FIELDS:
            assert getattr(persona, name), f"{persona.key}: {name} is empty"


def test_every_persona_is_complete(personas: list[PersonaSpec]) -> None:
    for persona in personas:
        assert persona.role and "\n" not in persona.role
        assert persona.summary
        assert persona.background
        sentences = re.findall(r"[.!?](?:\s|$)", persona.background)
        assert 3 <= len(sentences) <= 5, persona.key
        assert persona.photo_url == (
            f"https://api.dicebear.com/9.x/personas/png?seed={persona.key}"
        )
        assert persona.owner is not None
        assert re.fullmatch(r"[a-z]+\.owner@tallyworks\.example", persona.owner)
        assert persona.review_every_days == 90
        assert 3 <= len(persona.goals) <= 5, persona.key
        assert 4 <= len(persona.pain_points) <= 5, persona.key
        assert len(persona.objections) == 3, persona.key
        assert 6 <= len(persona.keywords) <= 10, persona.key


def test_personas_are_distinct_enough_for_a_deal_matcher(personas: list[PersonaSpec]) -> None:
    employee_ranges = [p.firmographic.employees for p in personas]
    revenue_ranges = [p.firmographic.annual_revenue_usd for p in personas]
    assert len(set(employee_ranges)) == len(personas)
    assert len(set(revenue_ranges)) == len(personas)
    titles = [set(p.demographic.job_titles) for p in personas]
    for index, mine in enumerate(titles):
        for other in titles[index + 1 :]:
            assert not mine & other
    keywords = [{k.lower() for k in p.keywords} for p in personas]
    for index, mine in enumerate(keywords):
        others = set().union(*(k for i, k in enumerate(keywords) if i != index))
        assert len(mine - others) >= 5


def test_samples_survive_an_export_round_trip(personas: list[PersonaSpec]) -> None:
    for fmt in ("yaml", "json"):
        assert parse_persona_text(dump_personas(personas, fmt), format=fmt) == personas
