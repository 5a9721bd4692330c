"""Requests in Slack's exact wire format, built from the recorded payloads and signed.

Slash commands are form-encoded, interactivity is a form with one ``payload=`` JSON field,
events are JSON; each is signed the way Slack signs (``v0=`` HMAC-SHA256 of
``v0:TIMESTAMP:BODY`` with the signing secret), which slack_sdk's SignatureVerifier checks.
Like Slack, every slash command and click built here carries a fresh ``trigger_id`` (and
``action_ts``), so two requests are never byte-identical: persona-bot refuses a signed
request it has seen before as a replay.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "slack"
FORM = "application/x-www-form-urlencoded"
TRIGGER_PREFIX = "13345224609.738474920."  # the recorded payloads' trigger ids start so
_sequence = itertools.count(1)


def fresh_trigger_id() -> str:
    """A trigger id shaped like Slack's, different for every request."""
    return f"{TRIGGER_PREFIX}{next(_sequence):019x}"


def _fresh_action_ts() -> str:
    return f"{time.time():.6f}"


def recorded(name: str) -> Any:
    """A recorded payload: ``.json`` files parsed, ``.txt`` files as text."""
    path = PAYLOADS / name
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else text


def signature(secret: str, timestamp: int, body: str | bytes) -> str:
    raw = body.encode() if isinstance(body, str) else body
    base = f"v0:{timestamp}:".encode() + raw
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, body: str | bytes, *, content_type: str, timestamp: int | None = None
) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature(secret, ts, body),
    }


def slash_body(
    text: str,
    *,
    user: str = "U1",
    user_name: str = "sam.seller",
    team: str = "T1",
    channel: str = "C1",
    response_url: str = "",
    command: str = "/persona",
) -> str:
    """The recorded slash command form with these values."""
    form = dict(parse_qsl(recorded("slash_command.txt"), keep_blank_values=True))
    form.update(
        text=text,
        user_id=user,
        user_name=user_name,
        team_id=team,
        channel_id=channel,
        command=command,
        trigger_id=fresh_trigger_id(),
    )
    if response_url:
        form["response_url"] = response_url
    return urlencode(form)


def actions_payload(
    action_id: str,
    value: str,
    *,
    user: str = "U1",
    team: str = "T1",
    channel: str = "C1",
    response_url: str = "",
    label: str = "button",
) -> dict[str, Any]:
    """A block_actions payload for a click on a message button."""
    payload = copy.deepcopy(recorded("block_actions.json"))
    payload["user"].update(id=user, team_id=team)
    payload["team"]["id"] = team
    payload["channel"]["id"] = channel
    payload["container"]["channel_id"] = channel
    payload["response_url"] = response_url
    payload["trigger_id"] = fresh_trigger_id()
    payload["actions"][0].update(action_id=action_id, value=value, action_ts=_fresh_action_ts())
    payload["actions"][0]["text"]["text"] = label
    return payload  # type: ignore[no-any-return]


def home_actions_payload(
    action_id: str, value: str, *, user: str = "U1", team: str = "T1"
) -> dict[str, Any]:
    """A block_actions payload for a click in the App Home tab (no response_url)."""
    payload = copy.deepcopy(recorded("block_actions_home.json"))
    payload["user"].update(id=user, team_id=team)
    payload["team"]["id"] = team
    payload["trigger_id"] = fresh_trigger_id()
    payload["actions"][0].update(action_id=action_id, value=value, action_ts=_fresh_action_ts())
    return payload  # type: ignore[no-any-return]


def interactivity_body(payload: dict[str, Any] | str) -> str:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return urlencode({"payload": raw})


def event_body(name: str, *, event_id: str | None = None, **event: Any) -> dict[str, Any]:
    """A recorded event envelope with the event's fields overridden."""
    body = copy.deepcopy(recorded(name))
    body["event"].update(event)
    if event_id:
        body["event_id"] = event_id
    return body  # type: ignore[no-any-return]


def _input_state(element: dict[str, Any], typed: str | None) -> dict[str, Any]:
    """An input's entry in ``view.state.values`` as Slack sends it: what was typed, else
    the pre-filled value (Slack sends ``null`` for an empty text input)."""
    kind = element["type"]
    if kind in ("radio_buttons", "static_select"):
        if typed is None:
            chosen = element.get("initial_option")
        else:
            chosen = next(o for o in element["options"] if o["value"] == typed)
        return {"type": kind, "selected_option": chosen}
    value = element.get("initial_value") if typed is None else typed
    return {"type": kind, "value": value or None}


def view_submission_payload(
    view: dict[str, Any],
    typed: dict[str, str] | None = None,
    *,
    user: str = "U1",
    user_name: str = "sam.seller",
    team: str = "T1",
    view_id: str = "V0EDITOR",
) -> dict[str, Any]:
    """The view_submission Slack sends when ``view`` (as the bot opened it) is submitted
    with ``typed`` changes (block id -> new text); other inputs keep their initial values."""
    typed = typed or {}
    payload = copy.deepcopy(recorded("view_submission.json"))
    payload["user"].update(id=user, team_id=team, username=user_name, name=user_name)
    payload["team"]["id"] = team
    payload["trigger_id"] = fresh_trigger_id()
    values = {
        block["block_id"]: {
            block["element"]["action_id"]: _input_state(
                block["element"], typed.get(block["block_id"])
            )
        }
        for block in view["blocks"]
        if block["type"] == "input"
    }
    payload["view"].update(
        id=view_id,
        root_view_id=view_id,
        blocks=view["blocks"],
        callback_id=view.get("callback_id", ""),
        private_metadata=view.get("private_metadata", ""),
        title=view["title"],
        state={"values": values},
    )
    return payload  # type: ignore[no-any-return]


def view_actions_payload(
    view: dict[str, Any],
    action_id: str,
    value: str,
    *,
    user: str = "U1",
    team: str = "T1",
    view_id: str = "V0EDITOR",
) -> dict[str, Any]:
    """A block_actions payload for a click on a button inside a modal (no response_url)."""
    payload = copy.deepcopy(recorded("block_actions_home.json"))
    payload["user"].update(id=user, team_id=team)
    payload["team"]["id"] = team
    payload["container"] = {"type": "view", "view_id": view_id}
    payload["view"].update(
        id=view_id,
        root_view_id=view_id,
        type="modal",
        blocks=view["blocks"],
        callback_id=view.get("callback_id", ""),
        private_metadata=view.get("private_metadata", ""),
    )
    payload["trigger_id"] = fresh_trigger_id()
    payload["actions"][0].update(action_id=action_id, value=value, action_ts=_fresh_action_ts())
    return payload  # type: ignore[no-any-return]
