"""Errors meant for the person who typed the command, as opposed to crashes.

A handler raises ``CommandError`` with a sentence the user should read; the router turns it
into a reply. Anything else is a bug or an outage: logged with its command and platform,
and the user gets one short apology (or "temporarily unavailable" for the database).
"""

from __future__ import annotations


class CommandError(Exception):
    """Something the user can fix; the message is shown to them as it is."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class PermissionDenied(CommandError):
    """The user's role does not allow this command."""


class TemporarilyUnavailable(Exception):
    """A dependency (the database) cannot be reached right now; retrying later will work."""
