"""Secrets the server generates for itself and keeps in the database.

When an operator configures no secret (for example ``PERSONA_BOT_DASHBOARD_SECRET``), one is
generated on first use and stored, so that every replica and every restart signs and checks
with the same key. Whoever creates it first wins; everyone else reads that one.
"""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from persona_store.models import AppSecret, utcnow


def get_or_create_secret(engine: Engine, name: str, *, nbytes: int = 32) -> str:
    """The stored secret called ``name``, generated (URL-safe, ``nbytes`` random) if absent."""
    with engine.connect() as conn:
        value = conn.scalar(select(AppSecret.value).where(AppSecret.name == name))
    if value is not None:
        return str(value)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(AppSecret).values(
                    name=name, value=secrets.token_urlsafe(nbytes), created_at=utcnow()
                )
            )
    except IntegrityError:  # another replica stored one first: use theirs
        pass
    with engine.connect() as conn:
        return str(conn.scalars(select(AppSecret.value).where(AppSecret.name == name)).one())
