"""Roles and who may do what.

Admins (``PERSONA_BOT_ADMINS``) import and edit any persona and read every summary; managers
(``PERSONA_BOT_MANAGERS``) read summaries and the dashboard; a persona's owner reviews and
edits that persona; everyone else looks personas up, asks for fits and gives feedback.
People at the terminal (``persona-bot chat`` and the CLI) already hold the database, so they
act as admins.
"""

from __future__ import annotations

import getpass
from enum import StrEnum

from bot.model import UserRef
from bot.settings import Settings
from persona_store.records import StoredPersona


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    MEMBER = "member"


def _identities(user: UserRef) -> set[str]:
    ids = {user.id.lower()}
    if user.email:
        ids.add(user.email.lower())
    return ids


def role_of(user: UserRef, settings: Settings, platform: str) -> Role:
    if platform in ("console", "cli"):
        return Role.ADMIN
    ids = _identities(user)
    if ids & settings.admins:
        return Role.ADMIN
    if ids & settings.managers:
        return Role.MANAGER
    return Role.MEMBER


def is_owner(user: UserRef, persona: StoredPersona) -> bool:
    owner = (persona.spec.owner or "").strip().lower()
    return bool(owner) and owner in _identities(user)


def can_read_summaries(role: Role) -> bool:
    return role in (Role.ADMIN, Role.MANAGER)


def can_change(user: UserRef, role: Role, persona: StoredPersona) -> bool:
    """Review or edit a persona: its owner or an admin."""
    return role is Role.ADMIN or is_owner(user, persona)


def terminal_user(platform: str) -> UserRef:
    """The person at this terminal (``persona-bot chat``, the CLI), named by their login."""
    try:
        name = getpass.getuser()
    except Exception:  # no login name in some containers
        name = "operator"
    return UserRef(id=f"{platform}:{name}", name=name)
