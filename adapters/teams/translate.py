"""Pure translators between Bot Framework activities and the neutral model.

``command_from_activity`` reads a Teams message (typed text with the bot's @mention removed,
or a card submission's ``value``) into a ``Command``; ``card_from_reply`` renders a ``Reply``
as an Adaptive Card. No I/O: everything here is tested on recorded payloads.

Text in a Reply is plain text. Cards show it in ``RichTextBlock``/``TextRun`` elements, which
Adaptive Cards never read as markdown or as ``{{DATE()}}`` functions, so a persona text can
not restyle the card or forge a link; fact sets (which do read markdown) get escaped text.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from botbuilder.schema import Activity, ActivityTypes, Attachment
from msrest.serialization import Model

from bot.grammar import MAX_INPUT, clean, parse
from bot.model import (
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

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
# 1.5 is the newest Adaptive Card version Teams renders on desktop, web and mobile alike.
CARD_VERSION = "1.5"
# Teams refuses a message over about 28 KB; the card may use this much of it.
CARD_LIMIT = 24_000
MAX_COMMENT = 2000
ID_LIMIT = 128  # usage events keep user and channel ids in 128 characters

_TAG = re.compile(r"<[^>]{0,200}>")
_VERB = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_MARKDOWN = re.compile(r"([\\*_\[\]`~<>])")
_LINE_START = re.compile(r"^(\s*)([-+#]|\d+(?=[.)]))", re.MULTILINE)

# activity reading ----------------------------------------------------------------------


def _channel_data(activity: Activity) -> Mapping[str, Any]:
    data = activity.channel_data
    return data if isinstance(data, Mapping) else {}


def tenant_of(activity: Activity) -> str | None:
    """The Entra ID tenant of an activity (Teams puts it in channelData and conversation)."""
    tenant = _channel_data(activity).get("tenant")
    if isinstance(tenant, Mapping) and isinstance(tenant.get("id"), str) and tenant["id"]:
        return str(tenant["id"])[:64]
    conversation = activity.conversation
    if conversation is not None:
        # botbuilder maps "tenantID"; Teams sends "tenantId" (kept as an extra property).
        value = conversation.tenant_id or (
            getattr(conversation, "additional_properties", None) or {}
        ).get("tenantId")
        if isinstance(value, str) and value:
            return value[:64]
    return None


def base_conversation_id(conversation_id: str) -> str:
    """A channel thread id without its ``;messageid=`` suffix: the channel conversation."""
    return conversation_id.split(";", 1)[0]


def conversation_type(activity: Activity) -> str:
    conversation = activity.conversation
    kind = conversation.conversation_type if conversation is not None else None
    if kind in ("personal", "groupChat", "channel"):
        return str(kind)
    return "groupChat" if conversation is not None and conversation.is_group else "personal"


def channel_id_of(activity: Activity) -> str | None:
    """The Teams channel id of a channel conversation (None in chats)."""
    channel = _channel_data(activity).get("channel")
    if isinstance(channel, Mapping) and isinstance(channel.get("id"), str):
        return str(channel["id"])
    if conversation_type(activity) == "channel" and activity.conversation is not None:
        return base_conversation_id(activity.conversation.id or "")
    return None


def short_id(value: str, limit: int = ID_LIMIT) -> str:
    """An id that fits a column of ``limit`` characters and stays unique."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:24]
    return f"{value[: limit - 25]}~{digest}"


def user_from_activity(activity: Activity, email: str | None = None) -> UserRef:
    """The sender: AAD object id when Teams gives one (stable across bots), else the
    Bot Framework user id."""
    sender = activity.from_property
    aad = getattr(sender, "aad_object_id", None) if sender is not None else None
    user_id = (aad or (sender.id if sender is not None else None) or "unknown").lower()
    name = (sender.name if sender is not None else None) or ""
    return UserRef(id=short_id(user_id), name=name[:200], email=(email or None))


def conversation_from_activity(activity: Activity, tenant: str) -> ConversationRef:
    conversation_id = activity.conversation.id if activity.conversation is not None else ""
    channel = channel_id_of(activity) or base_conversation_id(conversation_id or "")
    return ConversationRef(platform="teams", workspace=tenant, channel=short_id(channel))


def strip_mentions(activity: Activity) -> str:
    """The typed text without the bot's own @mention; other mentions keep their names."""
    text = activity.text or ""
    bot_id = activity.recipient.id if activity.recipient is not None else None
    for entity in activity.entities or []:
        if (getattr(entity, "type", "") or "").lower() != "mention":
            continue
        props = getattr(entity, "additional_properties", None) or {}
        mentioned = props.get("mentioned") or {}
        if bot_id and isinstance(mentioned, Mapping) and mentioned.get("id") == bot_id:
            mention_text = props.get("text")
            if isinstance(mention_text, str) and mention_text:
                text = text.replace(mention_text, " ")
    text = _TAG.sub(" ", text)
    return clean(html.unescape(text))


def real_attachments(activity: Activity) -> list[Attachment]:
    """Files and images; Teams adds a text/html copy of most messages, which is not one."""
    return [
        a
        for a in activity.attachments or []
        if (getattr(a, "content_type", "") or "").lower() != "text/html"
    ]


Unusable = Literal["empty", "attachment", "foreign"]


def unusable_reason(activity: Activity) -> Unusable:
    """Why a message gave no command: nothing typed, only a file, or an unknown submission."""
    if isinstance(activity.value, Mapping) and activity.value:
        return "foreign"
    return "attachment" if real_attachments(activity) else "empty"


def _submission(value: Any) -> tuple[str, str, str] | None:
    """(verb, args, comment) of a card button's data, or None if it is not ours."""
    if not isinstance(value, Mapping):
        return None
    verb, args, comment = value.get("verb"), value.get("args", ""), value.get("comment", "")
    if not isinstance(verb, str) or not _VERB.match(verb):
        return None
    if not isinstance(args, str) or not isinstance(comment, str):
        return None
    return verb, clean(args)[:MAX_INPUT], clean(comment)[:MAX_COMMENT]


def command_from_activity(
    activity: Activity,
    *,
    verbs: frozenset[str] = frozenset(),
    tenant: str | None = None,
    email: str | None = None,
) -> Command | None:
    """The command in a message: a card submission or typed text; None when there is none
    (see ``unusable_reason``). ``tenant`` defaults to the activity's own."""
    value = activity.value
    if activity.type == ActivityTypes.invoke:
        # Action.Execute sends {"action": {"data": ...}}; an msteams invoke button its data.
        action = value.get("action") if isinstance(value, Mapping) else None
        if activity.name == "adaptiveCard/action":
            value = action.get("data") if isinstance(action, Mapping) else None
        elif activity.name:
            return None
    elif activity.type != ActivityTypes.message:
        return None
    tenant = tenant or tenant_of(activity) or ""
    user = user_from_activity(activity, email)
    conversation = conversation_from_activity(activity, tenant)
    submitted = _submission(value)
    if submitted is not None:
        verb, args, comment = submitted
        fields = {"comment": comment} if comment else {}
        return Command(user, conversation, verb, args, f"{verb} {args}".strip(), "button", fields)
    if value or activity.type != ActivityTypes.message:
        return None
    text = strip_mentions(activity)
    if not text:
        return None
    parsed = parse(text, extra_verbs=verbs)
    return Command(user, conversation, parsed.verb, parsed.args, text)


def feedback_follow_up(command: Command) -> Command | None:
    """A 👎 with a comment is two commands: the rating, then the comment as feedback."""
    comment = command.fields.get("comment", "").strip()
    if command.verb != "rate" or not comment:
        return None
    key = command.args.split(" ", 1)[0]
    return Command(
        command.user,
        command.conversation,
        "feedback",
        f"{key} {comment}",
        f"feedback {key} {comment}",
        "form",
    )


# card rendering ---------------------------------------------------------------------------


def teams_wording(text: str) -> str:
    """Teams has no slash commands: people type ``persona list`` (or @mention the bot)."""
    return text.replace("/persona ", "persona ").replace("/persona`", "persona`")


def _escape_line_start(found: re.Match[str]) -> str:
    indent, marker = found.group(1), found.group(2)
    # "1." becomes "1\." (a list number needs its dot); "-", "+" and "#" are escaped.
    return indent + marker + "\\" if marker[0].isdigit() else indent + "\\" + marker


def escape_markdown(text: str) -> str:
    """Text for the card fields that read markdown (fact titles and values)."""
    text = _MARKDOWN.sub(r"\\\1", text)
    text = _LINE_START.sub(_escape_line_start, text)
    return text.replace("{{", "{\u200b{")


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": teams_wording(text), **style}


def _rich(text: str, spacing: str | None = None, **style: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "RichTextBlock", "inlines": [_run(text, **style)]}
    if spacing:
        block["spacing"] = spacing
    return block


def _action(button: Button) -> dict[str, Any]:
    data = {"verb": button.verb, "args": button.args}
    if button.verb == "rate" and button.args.endswith(" down"):
        # 👎 opens a small form: an optional comment, sent with the rating.
        return {
            "type": "Action.ShowCard",
            "title": button.label,
            "card": {
                "type": "AdaptiveCard",
                "version": CARD_VERSION,
                "body": [
                    {
                        "type": "Input.Text",
                        "id": "comment",
                        "label": "What is wrong or missing? (optional)",
                        "isMultiline": True,
                        "maxLength": MAX_COMMENT,
                    }
                ],
                "actions": [{"type": "Action.Submit", "title": "Send 👎", "data": data}],
            },
        }
    action: dict[str, Any] = {"type": "Action.Submit", "title": button.label, "data": data}
    if button.style == "primary":
        action["style"] = "positive"
    elif button.style == "danger":
        action["style"] = "destructive"
    return action


def _body(reply: Reply) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    body: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    for block in reply.blocks:
        if isinstance(block, Header) and block.text:
            body.append(_rich(block.text, size="Large", weight="Bolder"))
        elif isinstance(block, Image) and block.url.startswith("https://"):
            body.append({"type": "Image", "url": block.url, "altText": block.alt, "size": "Medium"})
        elif isinstance(block, Text):
            if block.title:
                body.append(_rich(block.title, spacing="Medium", weight="Bolder"))
            if block.text:
                body.append(_rich(block.text, spacing="Small" if block.title else None))
            for item in block.items:
                if item:
                    body.append(_rich(f"• {item}", spacing="None"))
        elif isinstance(block, Fields):
            facts = [
                {"title": escape_markdown(label), "value": escape_markdown(teams_wording(value))}
                for label, value in block.pairs
                if label and value
            ]
            if not facts:
                continue
            if block.title:
                body.append(_rich(block.title, spacing="Medium", weight="Bolder"))
            body.append({"type": "FactSet", "facts": facts, "spacing": "Small"})
        elif isinstance(block, Context) and block.text:
            body.append(_rich(block.text, spacing="Medium", isSubtle=True, size="Small"))
        elif isinstance(block, Buttons):
            actions.extend(_action(b) for b in block.buttons if b.label)
    if not body:
        body.append(_rich(reply.summary or "Done."))
    return body, actions


def card_from_reply(reply: Reply, *, limit: int = CARD_LIMIT) -> dict[str, Any]:
    """The Adaptive Card of a Reply, cut with "…" to stay within ``limit`` bytes of JSON."""
    body, actions = _body(reply)
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if actions:
        card["actions"] = actions
    return fit_card(card, limit)


def card_size(card: Mapping[str, Any]) -> int:
    # surrogatepass: a lone surrogate a client sent back (echoed in a form) is measured, not fatal.
    text = json.dumps(card, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


def _texts(body: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], str]]:
    """Every (element, key) in the body that holds display text, for shortening."""
    for element in body:
        if element.get("type") == "RichTextBlock":
            for inline in element.get("inlines", []):
                yield inline, "text"
        elif element.get("type") == "FactSet":
            for fact in element.get("facts", []):
                yield fact, "value"
                yield fact, "title"


def _cut(text: str, length: int) -> str:
    return text if len(text) <= length else text[: max(length - 1, 1)].rstrip("\\") + "…"


def fit_card(card: dict[str, Any], limit: int = CARD_LIMIT) -> dict[str, Any]:
    """Shorten the longest texts, then drop trailing elements, until the card fits.

    Each step is proportionate (halve a text, keep the share of elements that fits) so that
    even a reply of thousands of lines takes only a few passes.
    """
    size = card_size(card)
    if size <= limit:
        return card
    body: list[dict[str, Any]] = card["body"]
    marker = _rich("…", spacing="None")
    while size > limit:
        holder = max(_texts(body), key=lambda h: len(h[0][h[1]]), default=None)
        longest = len(holder[0][holder[1]]) if holder else 0
        content = [e for e in body if e is not marker]
        if holder is not None and (longest > 300 or (len(content) <= 1 and longest > 20)):
            element, key = holder
            element[key] = _cut(element[key], longest // 2)
        elif len(content) > 1:
            keep = max(1, min(len(content) - 1, int(len(content) * limit / size)))
            body[:] = [*content[:keep], marker]
        elif card.pop("actions", None) is None:
            break
        size = card_size(card)
    return card


class CardContent(Model):
    """An Adaptive Card as attachment content that botbuilder sends exactly as it is.

    Plain dict content is walked node by node by msrest's serializer on every send (most of
    a turn's CPU for a persona card), and TurnContext deep-copies every activity it sends.
    A card is built fresh for one reply and never changed afterwards, so both are skipped:
    msrest copies ``additional_properties`` of an empty model verbatim.
    """

    _attribute_map = {"additional_properties": {"key": "", "type": "{object}"}}  # noqa: RUF012 - msrest reads it from the class

    def __init__(self, card: dict[str, Any]) -> None:
        super().__init__()
        self.additional_properties = card

    @property
    def card(self) -> dict[str, Any]:
        card: dict[str, Any] = self.additional_properties
        return card

    def __deepcopy__(self, memo: dict[int, Any]) -> CardContent:
        return self


def activity_from_reply(reply: Reply, content: CardContent | None = None) -> Activity:
    """A message activity carrying the reply's card (``content``, when already rendered)."""
    if content is None:
        content = CardContent(card_from_reply(reply))
    return Activity(
        type=ActivityTypes.message,
        attachments=[Attachment(content_type=CARD_CONTENT_TYPE, content=content)],
        summary=reply.summary[:200] if reply.summary else None,
    )
