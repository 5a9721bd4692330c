"""Plain-text rendering of a Reply: for the terminal, the CLI, logs and notification fallbacks.

Buttons are numbered so that a terminal user can press one by typing its number.
"""

from __future__ import annotations

import textwrap

from bot.model import Button, Buttons, Context, Fields, Header, Image, Reply, Text

WIDTH = 88


def _wrap(text: str, indent: str = "") -> list[str]:
    out: list[str] = []
    for paragraph in text.splitlines() or [""]:
        out.extend(
            textwrap.wrap(paragraph, WIDTH, initial_indent=indent, subsequent_indent=indent)
            or [indent.rstrip()]
        )
    return out


def render_text(reply: Reply, *, numbered_buttons: bool = True) -> tuple[str, list[Button]]:
    """The reply as readable text, and the buttons in the order they were numbered."""
    lines: list[str] = []
    buttons: list[Button] = []
    for block in reply.blocks:
        if isinstance(block, Header):
            lines += ["", block.text, "=" * min(WIDTH, len(block.text))]
        elif isinstance(block, Image):
            lines.append(f"[{block.alt}: {block.url}]")
        elif isinstance(block, Text):
            if block.title:
                lines += ["", block.title]
            if block.text:
                lines += _wrap(block.text, "  " if block.title else "")
            for item in block.items:
                wrapped = _wrap(item, "    ")
                wrapped[0] = "  - " + wrapped[0][4:]
                lines += wrapped
        elif isinstance(block, Fields):
            if block.title:
                lines += ["", block.title]
            width = max((len(label) for label, _ in block.pairs), default=0)
            for label, value in block.pairs:
                wrapped = _wrap(value, " " * (width + 4))
                wrapped[0] = f"  {label + ':':<{width + 1}} " + wrapped[0].lstrip()
                lines += wrapped
        elif isinstance(block, Context):
            lines += ["", *_wrap(block.text, "  ")]
        elif isinstance(block, Buttons):
            labels = []
            for button in block.buttons:
                buttons.append(button)
                labels.append(
                    f"[{len(buttons)}] {button.label}" if numbered_buttons else button.label
                )
            lines += ["", "  ".join(labels)]
    if reply.form is not None:
        lines += ["", f"{reply.form.title} (an editor: use it in Slack or Teams)"]
        errors = reply.form.errors
        for form_field in reply.form.fields:
            if form_field.section:
                lines += ["", form_field.section]
            value = form_field.value.replace("\n", "; ")
            shown = value if len(value) <= 70 else value[:69] + "…"
            error = f"  <- {errors[form_field.name]}" if form_field.name in errors else ""
            lines.append(f"  {form_field.label}: {shown}{error}")
        lines += ["", "  From a terminal: persona-bot export, edit the file, persona-bot import."]
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines) if lines else reply.summary, buttons


def plain_text(reply: Reply) -> str:
    """The reply as text without button numbers (logs, notification fallbacks)."""
    return render_text(reply, numbered_buttons=False)[0]
