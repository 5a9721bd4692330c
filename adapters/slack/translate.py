"""Pure translators between Slack's wire format and the neutral model.

Inbound: a slash command form, a block_actions or view_submission payload, or an event
becomes a ``Command`` (or ``None`` for what the bot ignores: its own messages, edits, other
bots). Outbound: a ``Reply`` becomes Block Kit. Nothing here performs I/O, so every function
is tested on recorded payloads.

Block Kit rules kept here: every user string shown in mrkdwn is escaped (``&``, ``<``,
``>``) and marked ``verbatim`` so Slack neither links nor notifies anything in it (no
@channel, @here, user mentions or links through the bot); text objects stay within 3,000
characters (long text is split over several sections), a section holds at most 10 fields,
a message at most 50 blocks (a view 100). What does not fit is cut with "…" and a "Show more"
button that shows the next part, never an API error.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from bot.grammar import parse
from bot.model import (
    Block,
    Button,
    Buttons,
    Command,
    Context,
    ConversationRef,
    Fields,
    Header,
    Image,
    Reply,
    Text,
    UserRef,
)

from . import texts

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
TEXT_LIMIT = 3000
FIELD_LIMIT = 2000
FIELDS_PER_SECTION = 10
HEADER_LIMIT = 150
BUTTON_LABEL_LIMIT = 75
VALUE_LIMIT = 2000
ACTIONS_PER_BLOCK = 25
MODAL_TITLE_LIMIT = 24
ELLIPSIS = "…"
MAX_NESTING = 64  # Slack's deepest payloads (a modal's state values) nest about a dozen levels

BUTTON_PREFIX = "pb"  # pb:VERB:N  -> the neutral Button(VERB, value)
SHARE_ACTION = "pbx:share"
MORE_ACTION = "pbx:more"
FEEDBACK_CALLBACK = "pb_feedback"
FEEDBACK_BLOCK = "comment"
_ACTION = re.compile(r"^pb:(?P<verb>[a-z][a-z0-9_-]{0,31}):\d{1,4}$")
_SLACK_MARKUP = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,40}$")


class MalformedPayload(ValueError):
    """A payload that lacks what Slack always sends (user, team, ...)."""


# text ----------------------------------------------------------------------------------------


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack treats as control sequences in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain_from_slack(text: str, *, bot_user_id: str | None = None) -> str:
    """Slack's markup in typed text (``<@U1>``, ``<https://x|x>``, ``&lt;``) as plain text;
    mentions of the bot itself are dropped."""

    def replace(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            if bot_user_id and target[1:] == bot_user_id:
                return " "
            return "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            return "@" + (label or target[1:].split("^")[0])
        return label or target

    text = _SLACK_MARKUP.sub(replace, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with "…", never inside an escape such as ``&amp;``."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:] and len(cut) - amp <= 5:
        cut = cut[:amp]
    return cut + ELLIPSIS


def _cut(line: str, limit: int) -> int:
    """Where to break ``line`` at most ``limit`` characters in: at white space if there is
    some in the second half, never inside an escape such as ``&amp;``."""
    cut = line.rfind(" ", limit // 2, limit)
    if cut == -1:
        cut = limit
        amp = line.rfind("&", max(0, cut - 5), cut)
        if amp != -1 and ";" not in line[amp:cut]:
            cut = amp
    return cut


def chunk_text(lines: Sequence[str], limit: int = TEXT_LIMIT) -> list[str]:
    """Join lines into texts of at most ``limit`` characters. A line that fits a text of its
    own is never split; a longer one fills the current text and continues in the next."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        if len(line) > limit:
            room = limit - len(current) - 1 if current else limit
            if room < limit // 10:
                chunks.append(current)
                current, room = "", limit
            while len(line) > room:
                cut = _cut(line, room)
                head, line = line[:cut], line[cut:].lstrip(" ")
                chunks.append(f"{current}\n{head}" if current else head)
                current, room = "", limit
            current = line
            continue
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
        else:
            chunks.append(current)
            current = line
    if current:
        chunks.append(current)
    return chunks


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack must not turn names, URLs or "@here" in the text into links or mentions.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _context(text: str) -> dict[str, Any]:
    """A context block of plain text (escaped)."""
    return {"type": "context", "elements": [_mrkdwn(clip(escape_mrkdwn(text), TEXT_LIMIT))]}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": True}


# inbound -------------------------------------------------------------------------------------


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _need(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"missing {what}")
    return value


def _check_payload(payload: object) -> dict[str, Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise MalformedPayload("payload without a type")
    kind = payload["type"]
    if kind in ("block_actions", "view_submission", "view_closed", "shortcut", "message_action"):
        payload_user(payload)
    if kind == "block_actions":
        actions = payload.get("actions")
        if not (
            isinstance(actions, list)
            and actions
            and all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions)
        ):
            raise MalformedPayload("block_actions without actions")
    if kind in ("view_submission", "view_closed"):
        view = payload.get("view")
        if not isinstance(view, dict) or not isinstance(view.get("callback_id", ""), str):
            raise MalformedPayload("view_submission without a view")
    return payload


def _nested_deeper_than(value: object, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in node)
    return False


def _load_json(text: str, what: str) -> Any:
    """JSON as Slack sends it. Nesting deeper than Slack ever sends is refused: Bolt parses
    the body again further down the stack, where a body that only just fits Python's
    recursion limit here would crash it (and one past the limit raises RecursionError)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MalformedPayload(f"{what} is not valid JSON") from exc
    if _nested_deeper_than(value, MAX_NESTING):
        raise MalformedPayload(f"{what} is nested too deeply")
    return value


def parse_request_body(text: str, content_type: str = "") -> dict[str, Any]:
    """A request body read the way Slack writes them (JSON events, ``payload=`` JSON for
    interactivity, a form for slash commands); MalformedPayload for anything else.

    Bolt reads bodies too, but a form that merely contains the word "payload" (a slash
    command such as ``/persona payload``) comes out of its reader empty; this one is exact.
    """
    if content_type == "application/json" or text.startswith("{"):
        body = _load_json(text, "body")
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise MalformedPayload("JSON body without a type")
        if body["type"] == "event_callback":
            event = body.get("event")
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise MalformedPayload("event_callback without an event")
            if not isinstance(body.get("event_id"), str):
                raise MalformedPayload("event_callback without an event id")
        return body
    form = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in form:
        return _check_payload(_load_json(form["payload"], "payload"))
    if form.get("ssl_check"):
        return form
    if not form.get("command", "").startswith("/"):
        raise MalformedPayload("form body that is not a slash command")
    _need(form.get("user_id"), "user_id")
    _need(form.get("team_id"), "team_id")
    return form


def command_from_slash(
    form: Mapping[str, Any], *, verbs: frozenset[str] = frozenset(), email: str | None = None
) -> Command:
    """A slash command's form (``/persona fit D-1: ...``) as a Command of its verb."""
    user = UserRef(_need(form.get("user_id"), "user_id"), _str(form.get("user_name")), email)
    conversation = ConversationRef(
        platform="slack",
        workspace=_need(form.get("team_id"), "team_id"),
        channel=_str(form.get("channel_id")),
        workspace_name=_str(form.get("team_domain")) or None,
    )
    text = plain_from_slack(_str(form.get("text")))
    parsed = parse(text, extra_verbs=verbs)
    return Command(user, conversation, parsed.verb, parsed.args, text)


def payload_team(payload: Mapping[str, Any]) -> str:
    """The workspace of an interactivity payload (team, else the user's team)."""
    team = payload.get("team")
    if isinstance(team, dict) and _str(team.get("id")):
        return _str(team.get("id"))
    user = payload.get("user")
    if isinstance(user, dict) and _str(user.get("team_id")):
        return _str(user.get("team_id"))
    raise MalformedPayload("missing team")


def payload_user(payload: Mapping[str, Any], email: str | None = None) -> UserRef:
    user = payload.get("user")
    if not isinstance(user, dict):
        raise MalformedPayload("missing user")
    name = _str(user.get("username")) or _str(user.get("name"))
    return UserRef(_need(user.get("id"), "user id"), name, email)


def payload_conversation(payload: Mapping[str, Any]) -> ConversationRef:
    channel = payload.get("channel")
    container = payload.get("container")
    thread = _str(container.get("thread_ts")) if isinstance(container, dict) else ""
    team = payload.get("team")
    return ConversationRef(
        platform="slack",
        workspace=payload_team(payload),
        channel=_str(channel.get("id")) if isinstance(channel, dict) else "",
        workspace_name=(_str(team.get("domain")) if isinstance(team, dict) else "") or None,
        thread=thread or None,
    )


ActionKind = Literal["button", "share", "more", "unknown"]


@dataclass(frozen=True)
class ActionRef:
    """What a clicked action id means: a neutral button, or one of the adapter's own."""

    kind: ActionKind
    verb: str = ""


def parse_action_id(action_id: str) -> ActionRef:
    if action_id == SHARE_ACTION:
        return ActionRef("share")
    if action_id == MORE_ACTION:
        return ActionRef("more")
    found = _ACTION.match(action_id)
    if found:
        return ActionRef("button", found.group("verb"))
    return ActionRef("unknown")


@dataclass(frozen=True)
class Origin:
    """The command a reply answered, carried by Share/Show more so they can answer again."""

    verb: str
    args: str = ""
    page: int = 1

    def encode(self) -> str | None:
        """The button value, or None when it would exceed Slack's 2,000 characters."""
        value = json.dumps({"v": self.verb, "a": self.args, "p": self.page}, ensure_ascii=False)
        return value if len(value) <= VALUE_LIMIT else None

    @classmethod
    def decode(cls, value: str) -> Origin:
        try:
            data = json.loads(value)
            verb, args, page = data["v"], data.get("a", ""), int(data.get("p", 1))
        except (ValueError, TypeError, KeyError, OverflowError) as exc:  # "p": Infinity
            raise MalformedPayload("unreadable button value") from exc
        if not isinstance(verb, str) or not isinstance(args, str) or not 1 <= page <= 1000:
            raise MalformedPayload("unreadable button value")
        return cls(verb, args, page)


def command_from_action(
    payload: Mapping[str, Any], action: Mapping[str, Any], *, email: str | None = None
) -> Command | None:
    """A clicked neutral button as the Command it stands for (run as the presser); None for
    the adapter's own actions and unknown ids."""
    ref = parse_action_id(_str(action.get("action_id")))
    if ref.kind != "button":
        return None
    args = _str(action.get("value"))
    label = action.get("text")
    shown = _str(label.get("text")) if isinstance(label, dict) else ""
    return Command(
        payload_user(payload, email),
        payload_conversation(payload),
        ref.verb,
        args,
        f"button: {shown or ref.verb}",
        "button",
    )


def command_from_origin(
    payload: Mapping[str, Any], origin: Origin, *, email: str | None = None
) -> Command:
    """Share / Show more: the original command again, as the presser."""
    return Command(
        payload_user(payload, email),
        payload_conversation(payload),
        origin.verb,
        origin.args,
        f"{origin.verb} {origin.args}".strip(),
        "button",
    )


def command_from_event(
    event: Mapping[str, Any],
    *,
    team_id: str,
    verbs: frozenset[str] = frozenset(),
    bot_user_id: str | None = None,
    email: str | None = None,
) -> Command | None:
    """An app_mention or a direct message as a Command; None for what the bot must ignore:
    its own and other bots' messages, edits, deletions, joins and other subtypes."""
    kind = event.get("type")
    if kind not in ("app_mention", "message"):
        return None
    if event.get("bot_id") or event.get("subtype") or event.get("edited"):
        return None
    user = _str(event.get("user"))
    channel = _str(event.get("channel"))
    if not user or not channel or (bot_user_id and user == bot_user_id):
        return None
    if kind == "message" and event.get("channel_type") != "im":
        return None
    if kind == "app_mention" and channel.startswith("D"):
        return None  # the same words also arrive as message.im
    text = plain_from_slack(_str(event.get("text")), bot_user_id=bot_user_id).strip()
    parsed = parse(text, extra_verbs=verbs)
    conversation = ConversationRef(
        platform="slack",
        workspace=team_id,
        channel=channel,
        thread=_str(event.get("thread_ts")) or None,
    )
    return Command(UserRef(user, "", email), conversation, parsed.verb, parsed.args, text)


def feedback_from_submission(
    payload: Mapping[str, Any], *, email: str | None = None
) -> Command | None:
    """The 👎 comment modal's submission as ``feedback KEY COMMENT``; None without a comment."""
    view = payload.get("view")
    if not isinstance(view, dict):
        raise MalformedPayload("missing view")
    try:
        meta = json.loads(_str(view.get("private_metadata")) or "{}")
    except ValueError as exc:
        raise MalformedPayload("unreadable private_metadata") from exc
    key = _str(meta.get("k")) if isinstance(meta, dict) else ""
    field: object = view
    for name in ("state", "values", FEEDBACK_BLOCK, FEEDBACK_BLOCK):
        field = field.get(name) if isinstance(field, dict) else None
    comment = " ".join(_str(field.get("value")).split()) if isinstance(field, dict) else ""
    if not key:
        raise MalformedPayload("missing persona key")
    if not comment:
        return None
    channel = _str(meta.get("c"))
    conversation = ConversationRef("slack", payload_team(payload), channel)
    return Command(
        payload_user(payload, email),
        conversation,
        "feedback",
        f"{key} {comment}",
        f"feedback {key} {comment}",
        "form",
        {"persona": key, "comment": comment},
    )


# outbound ------------------------------------------------------------------------------------


def _text_sections(block: Text, accessory: dict[str, Any] | None) -> list[dict[str, Any]]:
    lines: list[str] = []
    if block.title:
        lines.append(f"*{escape_mrkdwn(block.title)}*")
    if block.text:
        lines.extend(escape_mrkdwn(line) for line in block.text.splitlines() or [""])
    lines.extend(f"• {escape_mrkdwn(item)}" for item in block.items)
    chunks = [c for c in chunk_text(lines) if c.strip()]  # Slack refuses blank texts
    sections = [{"type": "section", "text": _mrkdwn(c)} for c in chunks]
    if sections and accessory:
        sections[0]["accessory"] = accessory
    return sections


def _field_sections(block: Fields) -> list[dict[str, Any]]:
    sections: list[dict[str, Any]] = []
    fields: list[dict[str, Any]] = []
    title = f"*{escape_mrkdwn(block.title)}*" if block.title else None

    def flush() -> None:
        nonlocal title
        if not fields and not title:
            return
        section: dict[str, Any] = {"type": "section"}
        if title:
            section["text"] = _mrkdwn(clip(title, TEXT_LIMIT))
            title = None
        if fields:
            section["fields"] = list(fields)
            fields.clear()
        sections.append(section)

    for label, value in block.pairs:
        head = f"*{escape_mrkdwn(label.strip())}*\n" if label.strip() else ""
        text = head + (escape_mrkdwn(value) if value.strip() else "–")
        if len(text) <= FIELD_LIMIT:
            fields.append(_mrkdwn(text))
            if len(fields) == FIELDS_PER_SECTION:
                flush()
        else:  # too long for a field: give it whole sections rather than lose the rest
            flush()
            lines = [head.rstrip("\n"), *map(escape_mrkdwn, value.splitlines())]
            sections.extend(
                {"type": "section", "text": _mrkdwn(c)} for c in chunk_text(lines) if c.strip()
            )
    flush()
    return sections


def _image(block: Image) -> dict[str, Any] | None:
    if not block.url.startswith("https://") or len(block.url) > 3000:
        return None
    return {"type": "image", "image_url": block.url, "alt_text": clip(block.alt or " ", 2000)}


def _button(button: Button, action_id: str) -> dict[str, Any] | None:
    if len(button.args) > VALUE_LIMIT:
        return None
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": _plain(button.label, BUTTON_LABEL_LIMIT),
        "value": button.args,
    }
    if button.style in ("primary", "danger"):
        element["style"] = button.style
    return element


def _render(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    """Every block as Block Kit, with no message-level limit applied yet."""
    out: list[dict[str, Any]] = []
    counter = 0
    skip_image: Image | None = None
    for i, block in enumerate(blocks):
        if isinstance(block, Header):
            out.append({"type": "header", "text": _plain(block.text, HEADER_LIMIT)})
        elif isinstance(block, Image):
            following = blocks[i + 1] if i + 1 < len(blocks) else None
            if isinstance(following, Text):
                skip_image = block  # shown as the accessory of the next section
                continue
            image = _image(block)
            if image:
                out.append(image)
        elif isinstance(block, Text):
            accessory = _image(skip_image) if skip_image else None
            skip_image = None
            out.extend(_text_sections(block, accessory))
        elif isinstance(block, Fields):
            out.extend(_field_sections(block))
        elif isinstance(block, Buttons):
            elements = []
            for button in block.buttons:
                element = _button(button, f"{BUTTON_PREFIX}:{button.verb}:{counter}")
                counter += 1
                if element:
                    elements.append(element)
            for start in range(0, len(elements), ACTIONS_PER_BLOCK):
                out.append({"type": "actions", "elements": elements[start : start + 25]})
        elif isinstance(block, Context):
            out.append(_context(block.text))
    return out


def _share_button(origin: Origin) -> dict[str, Any] | None:
    value = Origin(origin.verb, origin.args).encode()
    if value is None:
        return None
    return {
        "type": "button",
        "action_id": SHARE_ACTION,
        "text": _plain(texts.SHARE, BUTTON_LABEL_LIMIT),
        "value": value,
    }


def blocks_from_reply(
    reply: Reply,
    *,
    origin: Origin | None = None,
    share: bool = False,
    limit: int = MESSAGE_BLOCKS,
    shared_by: str | None = None,
) -> list[dict[str, Any]]:
    """The Block Kit blocks of a reply (one page of it when it is too long).

    ``origin`` is the command the reply answers (its ``page`` picks the part to show);
    ``share`` adds the "Share in channel" button; ``shared_by`` marks a shared copy.
    """
    rendered = _render(reply.blocks)
    if shared_by:
        rendered.append(_context(texts.SHARED_BY.format(name=shared_by)))
    share_button = _share_button(origin) if share and origin else None
    tail = 1 if share_button else 0
    if len(rendered) + tail <= limit:
        if share_button:
            rendered.append({"type": "actions", "elements": [share_button]})
        return rendered
    size = limit - 2  # room for the "part N of M" note and its buttons
    pages = math.ceil(len(rendered) / size)
    page = min(max(origin.page if origin else 1, 1), pages)
    shown = rendered[(page - 1) * size : page * size]
    buttons: list[dict[str, Any]] = []
    more = Origin(origin.verb, origin.args, page + 1).encode() if origin and page < pages else None
    if more:
        buttons.append(
            {
                "type": "button",
                "action_id": MORE_ACTION,
                "text": _plain(texts.MORE, BUTTON_LABEL_LIMIT),
                "value": more,
            }
        )
    if share_button and page == 1:
        buttons.append(share_button)
    if page < pages and not more:
        note = texts.PART_CUT
    else:
        note = texts.PART.format(page=page, pages=pages)
    shown.append({"type": "context", "elements": [_mrkdwn(note)]})
    if buttons:
        shown.append({"type": "actions", "elements": buttons})
    return shown


def fallback_text(reply: Reply) -> str:
    """The notification text of a message (what Slack shows where blocks are not shown)."""
    return clip(escape_mrkdwn(reply.summary), TEXT_LIMIT) or " "


def shareable(reply: Reply) -> bool:
    """Content worth showing the channel (not errors, acknowledgements or suggestions)."""
    return reply.kind in ("card", "fit", "list", "health", "stats", "history", "help")


def message_from_reply(
    reply: Reply,
    *,
    origin: Origin | None = None,
    share: bool = False,
    in_channel: bool = False,
    shared_by: str | None = None,
) -> dict[str, Any]:
    """A chat.postMessage / response_url / slash-command-ack message for a reply: only the
    asker sees it (with "Share in channel" when ``share``) unless the reply is meant for
    everyone or ``in_channel`` asks for a visible copy."""
    visible = in_channel or not reply.ephemeral
    return {
        "response_type": "in_channel" if visible else "ephemeral",
        "text": fallback_text(reply),
        "blocks": blocks_from_reply(
            reply,
            origin=origin,
            share=share and not visible and shareable(reply),
            shared_by=shared_by,
        ),
    }


def modal_from_reply(reply: Reply, *, origin: Origin | None = None) -> dict[str, Any]:
    """A reply shown in a modal (clicks in App Home or in another modal have no channel)."""
    title = reply.summary if len(reply.summary) <= MODAL_TITLE_LIMIT else texts.MODAL_TITLE
    return {
        "type": "modal",
        "title": _plain(title, MODAL_TITLE_LIMIT),
        "close": _plain(texts.MODAL_CLOSE, MODAL_TITLE_LIMIT),
        "blocks": blocks_from_reply(reply, origin=origin, limit=VIEW_BLOCKS)
        or [{"type": "section", "text": _mrkdwn(fallback_text(reply))}],
    }


def feedback_modal(key: str, name: str, thanks: str, *, channel: str = "") -> dict[str, Any]:
    """The optional-comment modal a 👎 opens; its submission becomes ``feedback KEY ...``."""
    prompt = texts.FEEDBACK_PROMPT.format(thanks=thanks, name=name)
    return {
        "type": "modal",
        "callback_id": FEEDBACK_CALLBACK,
        "private_metadata": json.dumps({"k": key, "c": channel}),
        "title": _plain(texts.FEEDBACK_TITLE, MODAL_TITLE_LIMIT),
        "submit": _plain(texts.FEEDBACK_SUBMIT, MODAL_TITLE_LIMIT),
        "close": _plain(texts.FEEDBACK_CLOSE, MODAL_TITLE_LIMIT),
        "blocks": [
            {"type": "section", "text": _mrkdwn(clip(escape_mrkdwn(prompt), TEXT_LIMIT))},
            {
                "type": "input",
                "block_id": FEEDBACK_BLOCK,
                "optional": True,
                "label": _plain(texts.FEEDBACK_LABEL, 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": FEEDBACK_BLOCK,
                    "multiline": True,
                    "max_length": 2000,
                },
            },
        ],
    }


def is_user_id(value: str) -> bool:
    return bool(_USER_ID.match(value))
