"""``ConnectorSerializer`` (what the Bot Connector clients serialize request bodies with)
sends exactly what msrest's own serializer sends: compared on every recorded activity, on
replies as botbuilder sends them (conversation reference applied), and on msrest's harder
cases (flattened keys, read-only attributes, dates, enums, lists of models)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes, Attachment, ChannelAccount, Mention
from botframework.connector import models
from botframework.connector.aio import ConnectorClient
from msrest import Serializer
from msrest.authentication import Authentication
from msrest.serialization import Model

from adapters.teams.connector import ConnectorSerializer, use_connector_serializer
from adapters.teams.translate import activity_from_reply
from bot.model import Button, Buttons, Context, Fields, Header, Image, Reply, Text

PAYLOADS = sorted((Path(__file__).parent / "payloads" / "teams").glob("*.json"))
CLIENT_MODELS = {k: v for k, v in models.__dict__.items() if isinstance(v, type)}

CARD = Reply(
    summary="Finance Fiona: VP Finance",
    blocks=(
        Header("Finance Fiona"),
        Image("https://example.com/fiona.png", "Photo of Finance Fiona"),
        Text("Owns budget approval for tools over $50k.", title="VP Finance"),
        Fields((("Job titles", "CFO, VP Finance"), ("Employees", "200–2,000")), title="Firmo"),
        Text(title="Goals", items=("Close the books in 3 days", "Audit-ready numbers")),
        Context("Owner: fiona@example.com · never reviewed · key: finance-fiona"),
        Buttons((Button("👍 Helpful", "rate", "finance-fiona up"),)),
    ),
    kind="card",
    persona_key="finance-fiona",
)


def both(data: Any, data_type: str) -> tuple[Any, Any]:
    """(msrest's body, ConnectorSerializer's body) of the same data."""
    expected = Serializer(CLIENT_MODELS).body(copy.deepcopy(data), data_type)
    actual = ConnectorSerializer(CLIENT_MODELS).body(copy.deepcopy(data), data_type)
    return expected, actual


def incoming(path: Path) -> Activity:
    return Activity().deserialize(json.loads(path.read_text(encoding="utf-8")))


def as_sent(reply_activity: Activity, to: Activity) -> Activity:
    """An outgoing activity as TurnContext.send_activities hands it to the connector."""
    reference = TurnContext.get_conversation_reference(to)
    sent = TurnContext.apply_conversation_reference(copy.deepcopy(reply_activity), reference)
    sent.input_hint = "acceptingInput"
    sent.id = None
    return sent


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.stem)
def test_recorded_activities_serialize_the_same(path: Path) -> None:
    expected, actual = both(incoming(path), "Activity")
    assert actual == expected
    assert json.dumps(actual, sort_keys=True) == json.dumps(expected, sort_keys=True)


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.stem)
@pytest.mark.parametrize(
    "reply",
    [CARD, Reply.text("No persona matches 'pirat'.", kind="error"), Reply(summary="")],
    ids=["card", "text", "empty"],
)
def test_replies_as_botbuilder_sends_them_serialize_the_same(path: Path, reply: Reply) -> None:
    expected, actual = both(as_sent(activity_from_reply(reply), incoming(path)), "Activity")
    assert actual == expected
    assert actual["attachments"][0]["content"]["body"], "the card went missing"


def test_typing_indicators_and_models_with_dates_and_lists_serialize_the_same() -> None:
    typing = as_sent(Activity(type=ActivityTypes.typing), incoming(PAYLOADS[0]))
    assert both(typing, "Activity")[1] == both(typing, "Activity")[0]
    busy = Activity(
        type="message",
        timestamp=datetime(2026, 11, 2, 9, 57, 50, 123000, tzinfo=UTC),
        local_timestamp=datetime(2026, 11, 2, 10, 57, 50, tzinfo=UTC),
        text="hello <at>Ann</at>",
        entities=[Mention(mentioned=ChannelAccount(id="29:1", name="Ann"), text="<at>Ann</at>")],
        attachments=[Attachment(content_type="text/plain", content={"a": [1, {"b": None}]})],
        channel_data={"tenant": {"id": "t1"}, "notification": {"alert": True}},
        members_added=[ChannelAccount(id="29:2", name="Bo", aad_object_id="x")],
        value={"verb": "lookup", "args": "fiona"},
    )
    expected, actual = both(busy, "Activity")
    assert actual == expected
    assert actual["timestamp"] == "2026-11-02T09:57:50.123Z"


class _Inner(Model):
    _attribute_map = {"name": {"key": "name", "type": "str"}}  # noqa: RUF012

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self.name = name


class _Flattened(Model):
    _validation = {"server_id": {"readonly": True}}  # noqa: RUF012
    _attribute_map = {  # noqa: RUF012
        "server_id": {"key": "id", "type": "str"},
        "display": {"key": "properties.display", "type": "str"},
        "count": {"key": "properties.count", "type": "int"},
        "dotted": {"key": "a\\.b", "type": "str"},
        "inner": {"key": "inner", "type": "_Inner"},
        "items": {"key": "items", "type": "[_Inner]"},
        "tags": {"key": "tags", "type": "{str}"},
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        for name in self._attribute_map:
            setattr(self, name, kwargs.get(name))


def test_msrest_corner_cases_serialize_the_same() -> None:
    classes = {"_Inner": _Inner, "_Flattened": _Flattened}
    value = _Flattened(
        server_id="never sent",
        display="shown",
        count=3,
        dotted="escaped dot",
        inner=_Inner("x"),
        items=[_Inner("y"), _Inner()],
        tags={"k": "v"},
    )
    expected = Serializer(classes).body(value, "_Flattened")
    actual = ConnectorSerializer(classes).body(value, "_Flattened")
    assert actual == expected
    assert actual["properties"] == {"display": "shown", "count": 3}
    assert "id" not in actual and actual["a.b"] == "escaped dot"
    sparse = _Flattened(count=0)
    assert ConnectorSerializer(classes).body(sparse, "_Flattened") == Serializer(classes).body(
        sparse, "_Flattened"
    )


def test_no_connector_model_declares_a_validation_rule() -> None:
    """ConnectorSerializer skips client-side validation, which can only fail on a rule."""
    assert [name for name, cls in CLIENT_MODELS.items() if getattr(cls, "_validation", None)] == []


def test_connector_clients_use_it_for_every_operation() -> None:
    client = ConnectorClient(Authentication(), base_url="https://example.com/")
    use_connector_serializer(client)
    assert isinstance(client._serialize, ConnectorSerializer)
    assert client.conversations._serialize is client._serialize
    assert client.attachments._serialize is client._serialize
