"""The sample personas that ship with persona-bot, loaded into an empty database on first run."""

from __future__ import annotations

from pathlib import Path

from persona_store.records import PersonaSpec
from persona_store.schema import load_persona_file

SAMPLE_FILE = Path(__file__).with_name("data") / "sample_personas.yaml"


def sample_personas() -> list[PersonaSpec]:
    return load_persona_file(SAMPLE_FILE)
