"""The neutral model that crosses the adapter boundary: inbound ``Command``, outbound ``Reply``.

Adapters turn a Slack slash command, a Teams activity or a terminal line into a ``Command``,
and render a ``Reply`` (a short list of blocks) once for their platform: Block Kit, an
Adaptive Card or plain text. Nothing here knows any platform SDK. All text in blocks is
plain text: renderers escape it for their markup, so user strings can never inject any.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Platform = Literal["slack", "teams", "console", "cli", "web"]


@dataclass(frozen=True)
class UserRef:
    """Who sent a command: the platform's user id, a display name and an email if known."""

    id: str
    name: str = ""
    email: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.email or self.id


@dataclass(frozen=True)
class ConversationRef:
    """Where a command came from: a Slack workspace or Teams tenant, and a channel in it."""

    platform: Platform
    workspace: str
    channel: str = ""
    workspace_name: str | None = None
    thread: str | None = None


@dataclass(frozen=True)
class Command:
    """One request to the bot: a verb of the ``/persona`` grammar and its argument text."""

    user: UserRef
    conversation: ConversationRef
    verb: str
    args: str = ""
    text: str = ""  # the raw text as typed (or the action that produced the command)
    source: Literal["text", "button", "form"] = "text"
    # Structured input from a form or CLI flags (``fit --industry SaaS``), as typed strings.
    fields: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def platform(self) -> Platform:
        return self.conversation.platform


# Reply blocks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    text: str


@dataclass(frozen=True)
class Text:
    """A paragraph; ``title`` is shown in bold before it. ``items`` renders as a bullet list."""

    text: str = ""
    title: str | None = None
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fields:
    """Label/value pairs shown side by side (a fact set)."""

    pairs: tuple[tuple[str, str], ...]
    title: str | None = None


@dataclass(frozen=True)
class Image:
    url: str
    alt: str


@dataclass(frozen=True)
class Button:
    """A button that, when pressed, runs ``verb args`` as its presser (a Command of source
    "button"). ``style`` is a hint: primary, danger or default."""

    label: str
    verb: str
    args: str = ""
    style: Literal["default", "primary", "danger"] = "default"


@dataclass(frozen=True)
class Buttons:
    buttons: tuple[Button, ...]


@dataclass(frozen=True)
class Context:
    """Small print: when something was reviewed, who owns it, where a number came from."""

    text: str


Block = Header | Text | Fields | Image | Buttons | Context


@dataclass(frozen=True)
class FormField:
    """One input of a form. ``lines`` is a multi-line input read as one item per line."""

    name: str
    label: str
    kind: Literal["text", "textarea", "lines", "number", "choice"] = "text"
    value: str = ""
    required: bool = False
    hint: str | None = None
    section: str | None = None  # a heading shown before the first field of each section
    max_length: int | None = None
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) for "choice"


@dataclass(frozen=True)
class Form:
    """An editor: Slack shows it as a modal, Teams as a card with inputs. Submitting it
    dispatches ``Command(verb=submit_verb, source="form", fields={**values, **state})``."""

    title: str
    submit_verb: str
    submit_label: str
    fields: tuple[FormField, ...]
    state: Mapping[str, str] = field(default_factory=dict)  # hidden values sent back as they are
    errors: Mapping[str, str] = field(default_factory=dict)  # field name -> problem
    intro: str | None = None


ReplyKind = Literal[
    "card", "fit", "list", "help", "health", "stats", "history", "ack", "suggest", "error", "form"
]


@dataclass(frozen=True)
class Reply:
    """What the bot answers. ``summary`` is the one-line text for notifications and logs."""

    summary: str
    blocks: tuple[Block, ...] = ()
    kind: ReplyKind = "ack"
    ephemeral: bool = True
    persona_key: str | None = None
    data: dict[str, object] = field(default_factory=dict, compare=False)
    form: Form | None = None

    @classmethod
    def text(cls, message: str, *, kind: ReplyKind = "ack") -> Reply:
        return cls(summary=message, blocks=(Text(message),), kind=kind)
