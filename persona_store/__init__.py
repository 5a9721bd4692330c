"""Persona storage: models, migrations, the persona file format, lookup, matching and usage.

Imports nothing from ``bot``, ``adapters`` or ``scheduler``."""
