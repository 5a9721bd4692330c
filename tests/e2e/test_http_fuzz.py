"""Every HTTP endpoint of ``persona-bot serve`` under bad input, on a real server on 127.0.0.1.

Malformed, truncated, deeply nested, oversized and mistyped requests, wrong methods, huge
headers and generated bodies (Hypothesis, a fixed number of examples from a fixed seed)
get a 4xx, or the 2xx acknowledgement a platform's own odd shapes get; never a 5xx, never a
crash in the log, and the server keeps serving: after every batch a properly signed Slack
command and a Teams activity with a real token are answered as usual.

Slack requests are signed (also the malformed ones, so the parser behind the signature check
is what gets fuzzed) and Teams activities carry tokens from the fake issuer, so the body
parser and the bot are reached. ``test_slack_security`` and ``test_teams_auth`` cover the
signature and token checks themselves and a first set of malformed bodies; this file covers
every route, and what those leave out.
"""

from __future__ import annotations

import asyncio
import copy
import gzip
import io
import json
import logging
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from aiohttp import ClientResponse
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from slack_sdk.errors import SlackApiError
from sqlalchemy import text

from bot.dashboard import dashboard_secret, sign
from bot.web import MAX_BODY
from persona_store.schema import load_sample_personas
from tests.e2e.platforms_kit import Platforms, both_platforms, install_slack
from tests.e2e.slack.conftest import SECRET
from tests.e2e.slack.test_slack_commands import ask, texts_of
from tests.e2e.teams_kit import APP_ID, edited
from tests.e2e.test_teams_messages import card_texts
from tests.fakes.slack_wire import (
    FORM,
    actions_payload,
    event_body,
    interactivity_body,
    recorded,
    signed_headers,
    slash_body,
)

T = TypeVar("T")
JSON = "application/json"

# Every route the app serves, with its methods (HEAD comes with GET). A new route fails
# test_every_route_is_covered until it is added here and to the batches below.
ROUTES = {
    "/": {"GET", "HEAD"},
    "/healthz": {"GET", "HEAD"},
    "/readyz": {"GET", "HEAD"},
    "/metrics": {"GET", "HEAD"},
    "/dashboard": {"GET", "HEAD"},
    "/dashboard/summary.csv": {"GET", "HEAD"},
    "/dashboard/events.csv": {"GET", "HEAD"},
    "/slack/events": {"POST"},
    "/slack/install": {"GET", "HEAD"},
    "/slack/oauth_redirect": {"GET", "HEAD"},
    "/api/messages": {"POST"},
}


@dataclass
class Target:
    platforms: Platforms
    team: str  # the Slack workspace that is installed (and has the sample personas)

    @property
    def client(self) -> Any:
        return self.platforms.client


@pytest.fixture
async def target(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[Target]:
    """The app with Slack (OAuth unless parametrized "single") and Teams."""
    mode = getattr(request, "param", "oauth")
    async with both_platforms(sqlite_url, slack_mode=mode) as platforms:
        team = "T1" if mode == "single" else "TA"
        if mode == "oauth":
            org_id = await install_slack(platforms.slack, team)
            platforms.runtime.store.import_personas(org_id, load_sample_personas(), "test")
        platforms.slack.fake.add_user(team, "U1", "sam.seller@tallyworks.example", "sam.seller")
        yield Target(platforms, team)


# checks -----------------------------------------------------------------------------------


# What Bolt logs (as an error) for a request from a workspace the app is not installed in.
NOT_INSTALLED = "Although the app should be installed into this workspace"


def crashes(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Errors logged by the app. Slack API refusals of the fake (a generated user id that
    does not exist) and requests of workspaces without the app are answers, not crashes."""
    found = []
    for record in caplog.records:
        if record.levelno < logging.ERROR:
            continue
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, SlackApiError) or record.getMessage().startswith(NOT_INSTALLED):
            continue
        found.append(f"{record.name}: {record.getMessage()} {error!r}")
    return found


async def assert_still_serving(target: Target) -> None:
    """A signed slash command, a Teams activity with a token and the health check work."""
    message = await ask(target.platforms.slack, "fiona", team=target.team)
    assert "Finance Fiona" in texts_of(message)
    teams = target.platforms.teams
    before = len(teams.connector.sent())
    response = await teams.post(teams.payload("personal_message"))
    assert response.status == 201, await response.text()
    sent = await teams.connector.wait_for(count=before + 1)
    card = sent[-1].card
    assert card is not None and "Finance Fiona" in card_texts(card)
    assert (await target.client.get("/healthz")).status == 200


async def statuses(
    requests: Iterable[Callable[[], Awaitable[ClientResponse]]], concurrency: int = 8
) -> list[int]:
    """Send requests a few at a time; their statuses, bodies read."""
    gate = asyncio.Semaphore(concurrency)

    async def one(send: Callable[[], Awaitable[ClientResponse]]) -> int:
        async with gate:
            response = await send()
            await response.read()
            return response.status

    return list(await asyncio.gather(*(one(send) for send in requests)))


def examples(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """``count`` values drawn from ``strategy`` with Hypothesis' fixed seed (derandomize),
    for tests to send; a failing check prints the body it failed on."""
    found: list[T] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(value: T) -> None:
        found.append(value)

    collect()
    return found


async def raw_request(target: Target, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes as they are (headers the client library would refuse); the status line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", target.client.server.port)
    try:
        writer.write(head + body)
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()


def status_of(line: bytes) -> int:
    return int(line.split()[1])


# generated JSON: no ":" in any string, so no generated value is an absolute URL the bot
# would ever try to post to (every address it reaches stays on 127.0.0.1)
TEXT = st.text(st.characters(blacklist_characters=":", blacklist_categories=["Cs"]), max_size=40)
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=10,
)


@st.composite
def mutations(
    draw: st.DrawFn, base: Mapping[str, Any], paths: list[tuple[str, ...]]
) -> dict[str, Any]:
    """``base`` with a few of ``paths`` removed or replaced by any JSON value."""
    body = copy.deepcopy(dict(base))
    for path in draw(st.lists(st.sampled_from(paths), max_size=4, unique=True)):
        holder: Any = body
        for part in path[:-1]:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if not isinstance(holder, dict):
            continue
        if draw(st.booleans()):
            holder.pop(path[-1], None)
        else:
            holder[path[-1]] = draw(JSON_VALUES)
    return body


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# routes and methods ------------------------------------------------------------------------


async def test_every_route_is_covered(target: Target) -> None:
    served: dict[str, set[str]] = {}
    for route in target.client.app.router.routes():
        served.setdefault(route.resource.canonical, set()).add(route.method)
    assert served == ROUTES


async def test_wrong_methods_get_405_and_unknown_paths_404(target: Target) -> None:
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
    sends = [
        (lambda m=method, p=path: target.client.request(m, p, data=b"{}"))
        for path, allowed in ROUTES.items()
        for method in methods
        if method not in allowed
    ]
    assert set(await statuses(sends)) == {405}
    unknown = [
        "/nope",
        "/slack/events/",
        "/api/messages/x",
        "/%ff%fe",
        "/dashboard/../../etc/passwd",
        "/metrics.csv",
        "/" + "a" * 4000,
    ]
    found = await statuses([lambda p=path: target.client.get(p) for path in unknown])
    assert set(found) == {404}, dict(zip(unknown, found, strict=True))
    await assert_still_serving(target)


# sizes ------------------------------------------------------------------------------------


async def test_bodies_are_capped_at_one_megabyte_quickly_however_they_arrive(
    target: Target,
) -> None:
    """The web app's client_max_size: a body one byte over the cap is refused with 413
    (counted after decompression, streamed or not); one at the cap is read and judged."""
    at_cap = b"{" + b" " * (MAX_BODY - 2) + b"}"
    over = at_cap + b" "
    bomb = gzip.compress(b" " * (10 * MAX_BODY))  # 10 kB that inflate to 10 MB

    async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
        for start in range(0, len(data), size):
            yield data[start : start + size]

    for path in ("/slack/events", "/api/messages"):
        headers = {"Content-Type": JSON}
        sign = path == "/slack/events"
        cases: list[tuple[str, bytes | AsyncIterator[bytes], dict[str, str], int]] = [
            ("at the cap", at_cap, headers, 400),
            ("one byte over", over, headers, 413),
            ("20 MB", b"x" * (20 * MAX_BODY), headers, 413),
            ("streamed, no length", chunks(b"x" * (3 * MAX_BODY)), headers, 413),
            ("gzip bomb", bomb, {**headers, "Content-Encoding": "gzip"}, 413),
            *(
                (f"not {enc} at all", b"{}" * 100, {**headers, "Content-Encoding": enc}, 400)
                for enc in ("gzip", "deflate", "br", "zstd")
            ),
            (
                "deflate bomb",
                zlib.compress(b" " * (10 * MAX_BODY)),
                {**headers, "Content-Encoding": "deflate"},
                413,
            ),
        ]
        for name, body, sent_headers, expected in cases:
            if sign and isinstance(body, bytes) and "Content-Encoding" not in sent_headers:
                sent_headers = signed_headers(SECRET, body, content_type=JSON)
            started = time.monotonic()
            data = io.BytesIO(body) if isinstance(body, bytes) else body
            response = await target.client.post(path, data=data, headers=sent_headers)
            await response.read()
            took = time.monotonic() - started
            assert response.status == expected, (path, name, response.status)
            assert took < 3, (path, name, took)
    assert target.platforms.slack.usage() == []
    await assert_still_serving(target)


async def test_huge_headers_urls_and_header_counts_get_4xx(target: Target) -> None:
    lines = []
    for path in ROUTES:
        method = b"POST" if "POST" in ROUTES[path] else b"GET"
        start = method + b" " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        end = b"Content-Length: 0\r\n\r\n"
        lines.append(await raw_request(target, start + b"X-Big: " + b"a" * 100_000 + b"\r\n" + end))
        lines.append(
            await raw_request(
                target, start + b"".join(b"X-%d: a\r\n" % i for i in range(20_000)) + end
            )
        )
        lines.append(
            await raw_request(target, start + b"Cookie: " + b"c=1; " * 20_000 + b"\r\n" + end)
        )
        query = method + b" " + path.encode() + b"?q=" + b"x" * 100_000 + b" HTTP/1.1\r\n"
        lines.append(await raw_request(target, query + b"Host: 127.0.0.1\r\n" + end))
    found = {status_of(line) for line in lines}
    assert found and all(400 <= s < 500 for s in found), found
    await assert_still_serving(target)


# Slack ------------------------------------------------------------------------------------


async def test_slack_headers_the_signature_check_could_choke_on_get_401(target: Target) -> None:
    """Unsigned requests whose timestamp or signature header is not what the check expects
    (other digits, thousands of digits, non-ASCII) are refused like any bad signature."""
    now = str(int(time.time())).encode()
    body = slash_body("fiona", team=target.team).encode()
    cases = [
        (b"\xc2\xb2", b"v0=" + b"0" * 64),  # "²" is a digit to str.isdigit, not to int()
        ("١٧٠٠٠٠٠٠٠٠".encode(), b"v0=" + b"0" * 64),  # Arabic-Indic digits
        (b"1" * 5000, b"v0=" + b"0" * 64),  # more digits than int() converts
        (now, "v0=é".encode()),  # hmac.compare_digest refuses non-ASCII text
        (now, b"v0=\xff\xfe"),  # not even UTF-8
        (b"-1", b"v0=0"),
        (b" " + now, b"v0=0"),
        (now, b""),
    ]
    lines = []
    for stamp, signature in cases:
        head = (
            b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"X-Slack-Request-Timestamp: " + stamp + b"\r\n"
            b"X-Slack-Signature: " + signature + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        lines.append(status_of(await raw_request(target, head, body)))
    assert lines == [401] * len(cases)
    assert target.platforms.slack.usage() == []
    await assert_still_serving(target)


def slack_malformed_bodies(team: str) -> list[tuple[str, bytes, str]]:
    """(name, body, content type): what a signed request may carry that Slack never sends."""
    event = json.dumps({**event_body("app_mention.json", event_id="EvTRUNC"), "team_id": team})
    click = json.dumps(actions_payload("pb:lookup:0", "finance-fiona", team=team))
    slash = slash_body("fiona", team=team)
    cases: list[tuple[str, bytes, str]] = [
        (f"event cut at {n}", event[:n].encode(), JSON)
        for n in (1, 2, 10, len(event) // 2, len(event) - 1)
    ]
    cases += [
        (f"click cut at {n}", interactivity_body(click[:n]).encode(), FORM)
        for n in (1, 50, len(click) - 1)
    ]
    cases += [
        ("slash cut mid-escape", slash[: slash.index("%2F") + 2].encode(), FORM),
        ("invalid UTF-8 in JSON", b'{"type": "event_callback", "x": "\xc3\x28"}', JSON),
        ("overlong UTF-8", b'{"type": "\xc0\xafurl_verification"}', JSON),
        ("bad percent-encoding", b"command=%2Fpersona&text=%zz%&user_id=%", FORM),
        ("percent-encoded invalid UTF-8", b"payload=%ff%fe%fd", FORM),
        ("percent-encoded NUL", b"command=%2Fpersona%00&text=%00&user_id=U1%00", FORM),
        ("only separators", b"&&&===&&&", FORM),
        ("empty", b"", FORM),
        ("JSON scalar", b"42", JSON),
        ("JSON string", b'"event_callback"', JSON),
        ("JSON null", b"null", JSON),
        ("JSON true", b"true", JSON),
        ("JSON array of events", json.dumps([json.loads(event)]).encode(), JSON),
        ("type not a string", b'{"type": ["event_callback"]}', JSON),
        ("event not an object", b'{"type": "event_callback", "event_id": "E", "event": []}', JSON),
        (
            "event id not a string",
            b'{"type": "event_callback", "event_id": 7, "event": {"type": "x"}}',
            JSON,
        ),
        ("payload a scalar", interactivity_body("7").encode(), FORM),
        ("payload null", interactivity_body("null").encode(), FORM),
        ("payload without type", interactivity_body('{"user": {"id": "U1"}}').encode(), FORM),
        (
            "view_submission without view",
            interactivity_body('{"type": "view_submission", "user": {"id": "U1"}}').encode(),
            FORM,
        ),
        (
            "actions not objects",
            interactivity_body(
                '{"type": "block_actions", "user": {"id": "U1"}, "actions": [1]}'
            ).encode(),
            FORM,
        ),
        ("slash form sent as JSON", slash.encode(), JSON),
        (
            "multipart",
            b"--b\r\nContent-Disposition: form-data; name=command\r\n\r\n/persona\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
        ),
        # a readable event, but nested deeper than any Slack payload
        ("event nested 70 deep", (event[:-1] + ', "x": ' + nested(70) + "}").encode(), JSON),
        ("event nested 975 deep", (event[:-1] + ', "x": ' + nested(975) + "}").encode(), JSON),
        ("nested 100,000 deep", nested(100_000).encode(), JSON),
        ("payload nested 100,000 deep", interactivity_body(nested(100_000)).encode(), FORM),
        (
            "payload nested 975 deep",
            interactivity_body(click[:-1] + ', "x": ' + nested(975) + "}").encode(),
            FORM,
        ),
    ]
    return cases


@pytest.mark.parametrize("target", ["single", "oauth"], indirect=True)
async def test_signed_malformed_slack_bodies_get_400_and_change_nothing(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    slack = target.platforms.slack
    cases = slack_malformed_bodies(target.team)
    found = await statuses(
        lambda body=body, kind=kind: slack.post(body, kind) for _, body, kind in cases
    )
    assert dict(zip([c[0] for c in cases], found, strict=True)) == {c[0]: 400 for c in cases}
    await slack.adapter.drain(within=5)
    assert slack.usage() == []
    assert [
        c.method for c in slack.fake.calls if c.method not in ("auth.test", "oauth.v2.access")
    ] == []
    assert crashes(caplog) == []
    await assert_still_serving(target)


@pytest.mark.parametrize("target", ["single", "oauth"], indirect=True)
async def test_signed_odd_but_readable_slack_bodies_are_answered(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    """Shapes Slack does not send but that read as a request (a charset Python does not
    know, a JSON event labelled text/plain, percent-escapes that decode to nothing useful)
    are answered like the request they read as, not refused with a 500."""
    caplog.set_level(logging.INFO)
    slack = target.platforms.slack
    envelope = event_body("app_mention.json", event_id="EvODD1", user="U1", team=target.team)
    event = json.dumps({**envelope, "team_id": target.team})
    click = actions_payload(
        "pb:lookup:0", "finance-fiona", team=target.team, response_url=slack.fake.response_url()
    )
    slash = slash_body("fiona", team=target.team)
    cases = [
        ("event, unknown charset", event, JSON + "; charset=nope"),
        ("event, UTF-16 charset", event.replace("EvODD1", "EvODD2"), JSON + "; charset=utf-16"),
        ("event as text/plain", event.replace("EvODD1", "EvODD3"), "text/plain"),
        ("click, unknown charset", interactivity_body(click), FORM + "; charset=nope"),
        ("slash, unknown charset", slash, FORM + "; charset=nope"),
        ("slash, bad escapes in the text", slash.replace("text=fiona", "text=%zz%E0%A4%A"), FORM),
        ("slash, NUL in the text", slash.replace("text=fiona", "text=fi%00ona"), FORM),
        ("challenge with a lone surrogate",
         '{"type": "url_verification", "challenge": "\\ud800", "token": "t"}', JSON),
    ]  # fmt: skip
    found = [(await slack.post(body, kind)).status for _, body, kind in cases]
    assert dict(zip([c[0] for c in cases], found, strict=True)) == {c[0]: 200 for c in cases}
    await slack.adapter.drain(within=5)
    assert crashes(caplog) == []
    await assert_still_serving(target)


def slack_generated(target: Target, count: int) -> list[tuple[str, str]]:
    """Generated signed-request bodies: slash command forms, clicks, modal submissions and
    events as Slack would send them, with fields dropped or replaced by any JSON value."""
    team, fake = target.team, target.platforms.slack.fake
    response_urls = st.sampled_from([fake.response_url("fuzz"), "", "not a url", 7, None, []])

    @st.composite
    def slash(draw: st.DrawFn) -> tuple[str, str]:
        form = {k: v for k, v in recorded_form(team).items() if draw(st.integers(0, 9)) > 0}
        for key in draw(st.lists(st.sampled_from(sorted(form) or ["text"]), max_size=3)):
            form[key] = draw(TEXT)
        form["text"] = draw(st.sampled_from(VERBS) | TEXT)
        if "response_url" in form:
            form["response_url"] = fake.response_url("fuzz")
        return urlencode(form), FORM

    @st.composite
    def click(draw: st.DrawFn) -> tuple[str, str]:
        base = actions_payload(
            draw(st.sampled_from(ACTION_IDS) | TEXT), draw(TEXT), team=team, response_url=""
        )
        payload = draw(mutations(base, CLICK_PATHS))
        payload["response_url"] = draw(response_urls)
        return interactivity_body(payload), FORM

    @st.composite
    def submission(draw: st.DrawFn) -> tuple[str, str]:
        base = copy.deepcopy(recorded("view_submission.json"))
        base["team"]["id"] = team
        base["user"]["team_id"] = team
        base["view"]["callback_id"] = draw(st.sampled_from(["pb_feedback", "pb_form", "other"]))
        payload = draw(mutations(base, VIEW_PATHS))
        return interactivity_body(payload), FORM

    @st.composite
    def event(draw: st.DrawFn) -> tuple[str, str]:
        name = draw(
            st.sampled_from(["app_mention.json", "message_im.json", "app_home_opened.json"])
        )
        base = event_body(name, event_id=f"Ev{draw(st.integers(0, 10**9))}")
        base["team_id"] = team
        body = draw(mutations(base, EVENT_PATHS))
        return json.dumps(body), JSON

    generated = examples(st.one_of(slash(), click(), submission(), event()), count)
    # Slack never sends the same signed request twice (that is a replay, refused with 401).
    return list(dict.fromkeys(generated))


def recorded_form(team: str) -> dict[str, str]:
    return dict(parse_qsl(slash_body("fiona", team=team), keep_blank_values=True))


VERBS = ["fiona", "list", "stats", "health", "history fiona", "help", "fit CFO at a bank",
         "feedback fiona good", "deal D-1 won", "review fiona", "edit fiona", "new",
         "dashboard", "archive fiona", "rate finance-fiona up", "confirm D-1 finance-fiona",
         "save x", ""]  # fmt: skip
ACTION_IDS = ["pb:lookup:0", "pb:rate:1", "pb:fit:0", "pb:edit:2", "pbx:share", "pbx:more"]
CLICK_PATHS = [
    ("type",), ("user",), ("user", "id"), ("team",), ("team", "id"), ("channel",),
    ("channel", "id"), ("actions",), ("container",), ("view",), ("trigger_id",), ("message",),
]  # fmt: skip
VIEW_PATHS = [
    ("type",), ("user",), ("user", "id"), ("team",), ("view",), ("view", "state"),
    ("view", "private_metadata"), ("view", "callback_id"), ("view", "blocks"), ("view", "id"),
]  # fmt: skip
EVENT_PATHS = [
    ("type",), ("event",), ("event_id",), ("team_id",), ("event", "type"), ("event", "user"),
    ("event", "text"), ("event", "channel"), ("event", "channel_type"), ("event", "subtype"),
    ("event", "tab"), ("event", "thread_ts"), ("event", "blocks"), ("event", "bot_id"),
]  # fmt: skip


@pytest.mark.parametrize("target", ["single", "oauth"], indirect=True)
async def test_generated_signed_slack_requests_never_crash(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    slack = target.platforms.slack
    bodies = slack_generated(target, 150)
    found = await statuses(lambda b=body, k=kind: slack.post(b, k) for body, kind in bodies)
    await slack.adapter.drain(within=10)
    # 200: answered or acknowledged; 400: refused by the parser; 404: Bolt's answer to a
    # signed request no listener handles (an interactivity type persona-bot does not use).
    problems = [
        (status, body[:300])
        for status, (body, _) in zip(found, bodies, strict=True)
        if status not in (200, 400, 404)
    ]
    assert problems == []
    assert 200 in found and 400 in found  # both the parser and the listeners were reached
    assert slack.usage() != []  # ... and the commands behind them ran
    assert crashes(caplog) == []
    await assert_still_serving(target)


# Teams ------------------------------------------------------------------------------------

ACTIVITY_PATHS = [
    ("type",), ("text",), ("textFormat",), ("id",), ("timestamp",), ("localTimestamp",),
    ("channelId",), ("from",), ("from", "id"), ("from", "name"), ("from", "aadObjectId"),
    ("conversation",), ("conversation", "id"), ("conversation", "tenantId"),
    ("conversation", "conversationType"), ("conversation", "isGroup"), ("recipient",),
    ("recipient", "id"), ("entities",), ("channelData",), ("channelData", "tenant"),
    ("value",), ("name",), ("attachments",), ("replyToId",), ("locale",), ("membersAdded",),
    ("membersRemoved",), ("action",), ("serviceUrl",),
]  # fmt: skip
ACTIVITY_TYPES = ["message", "invoke", "conversationUpdate", "installationUpdate",
                  "messageReaction", "typing", "event", "endOfConversation"]  # fmt: skip


def teams_generated(target: Target, count: int) -> list[dict[str, Any]]:
    teams = target.platforms.teams

    @st.composite
    def activity(draw: st.DrawFn) -> dict[str, Any]:
        base = teams.payload(
            draw(
                st.sampled_from(
                    [
                        "personal_message",
                        "channel_message",
                        "submit_thumbs_down",
                        "invoke_action_execute",
                        "conversation_update_members_added",
                        "installation_update",
                    ]
                )
            )
        )
        base["type"] = draw(st.sampled_from(ACTIVITY_TYPES) | st.just(base["type"]))
        base["text"] = draw(st.sampled_from(VERBS) | TEXT)
        if base["type"] == "invoke":
            base["name"] = draw(st.sampled_from(["adaptiveCard/action", "task/fetch", ""]) | TEXT)
        return draw(mutations(base, ACTIVITY_PATHS))

    return examples(activity(), count)


async def test_generated_teams_activities_with_valid_tokens_never_crash(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    teams = target.platforms.teams
    issuer = teams.issuer
    assert issuer is not None
    activities = teams_generated(target, 120)

    def send(body: dict[str, Any]) -> Callable[[], Awaitable[ClientResponse]]:
        url = body.get("serviceUrl")
        token = issuer.token(
            audience=APP_ID, service_url=url if isinstance(url, str) else teams.connector.url
        )
        return lambda: teams.post(body, token=token)

    found = await statuses([send(body) for body in activities], concurrency=4)
    problems = [
        (status, json.dumps(body)[:300])
        for status, body in zip(found, activities, strict=True)
        if status >= 500
    ]
    assert problems == []
    assert {200, 201} & set(found) and 400 in found
    assert teams.connector.sent() != []  # the bot answered the activities it could read
    assert crashes(caplog) == []
    await assert_still_serving(target)


async def test_malformed_teams_bodies_get_4xx_even_with_a_valid_token(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    teams = target.platforms.teams
    issuer = teams.issuer
    assert issuer is not None
    good = json.dumps(teams.payload("personal_message"))
    token = issuer.token(audience=APP_ID, service_url=teams.connector.url)
    cases: list[tuple[str, bytes, str, int]] = [
        (f"cut at {n}", good[:n].encode(), JSON, 400)
        for n in (1, 2, 40, len(good) // 2, len(good) - 1)
    ]
    cases += [
        (
            "invalid UTF-8 in the text",
            good.encode().replace(b'"text": "fiona"', b'"text": "fi\xc3\x28ona"'),
            JSON,
            400,
        ),
        ("nested 100,000 deep", nested(100_000).encode(), JSON, 400),
        (
            "activity nested 100,000 deep",
            (good[:-1] + ', "value": ' + nested(100_000) + "}").encode(),
            JSON,
            400,
        ),
        ("number", b"1e999", JSON, 400),
        ("null", b"null", JSON, 400),
        ("empty", b"", JSON, 400),
        (
            "timestamp not a date",
            json.dumps(edited(json.loads(good), timestamp="yesterday")).encode(),
            JSON,
            400,
        ),
        (
            "an invoke the bot does not implement",
            json.dumps(edited(json.loads(good), type="invoke", name="task/fetch")).encode(),
            JSON,
            400,
        ),
        ("form", urlencode({"type": "message"}).encode(), FORM, 415),
        ("text/plain", good.encode(), "text/plain", 415),
        ("text/json", good.encode(), "text/json", 415),
        ("multipart", good.encode(), "multipart/form-data; boundary=x", 415),
        ("no content type", good.encode(), "", 415),
    ]
    found = []
    for _name, body, kind, _ in cases:
        headers = {"Authorization": f"Bearer {token}"}
        if kind:
            headers["Content-Type"] = kind
        response = await teams.client.post("/api/messages", data=body, headers=headers)
        found.append(response.status)
    assert found == [c[3] for c in cases], list(zip([c[0] for c in cases], found, strict=True))
    # The valid activity with a charset parameter, or in UTF-16 (JSON's other encoding), is
    # read as itself.
    for data, kind in ((good.encode(), JSON + "; charset=utf-8"), (good.encode("utf-16"), JSON)):
        headers = {"Authorization": f"Bearer {token}", "Content-Type": kind}
        ok = await teams.client.post("/api/messages", data=data, headers=headers)
        assert ok.status == 201
    assert teams.usage_events() == 2
    assert crashes(caplog) == []
    await assert_still_serving(target)


# the GET routes -------------------------------------------------------------------------------


async def test_junk_queries_cookies_and_bodies_on_the_get_routes(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    queries = [
        "",
        "x=%ff%fe",
        "%zz=%",
        "t=&t=&t=",
        "days=" + "9" * 5000,
        "a=" + quote("é\u0000\U0001f600"),
        "&&&===",
        "t=" + "." * 2000,
    ]
    cookies = ["", "a=b", "=;=;;", "slack-app-oauth-state=" + "x" * 4000, "\u00e9=\u00e9"]
    sends = [
        (
            lambda p=path, q=query, c=cookie: target.client.get(
                f"{p}?{q}" if q else p,
                headers={"Cookie": c.encode().decode("latin-1")} if c else {},
                data=b"\xff\xfe body on a GET",
            )
        )
        for path, allowed in ROUTES.items()
        if "GET" in allowed
        for query in queries
        for cookie in cookies
    ]
    found = await statuses(sends)
    assert all(s < 500 for s in found), sorted(set(found))
    assert crashes(caplog) == []
    assert target.platforms.slack.fake.of("oauth.v2.access")[1:] == []  # only the set-up's
    await assert_still_serving(target)


async def test_generated_dashboard_tokens_are_refused_and_generated_days_never_crash(
    target: Target,
) -> None:
    runtime = target.platforms.runtime
    secret = await dashboard_secret(runtime)
    valid = sign(secret, runtime.default_org_id, runtime.clock() + timedelta(hours=1))
    org, stamp, mac = valid.split(".")
    tokens = examples(
        st.one_of(
            st.text(max_size=80),
            st.builds(
                lambda a, b, c: f"{a}.{b}.{c}",
                st.text(max_size=25),
                st.text(max_size=25),
                st.text(max_size=70),
            ),
            st.builds(lambda c: f"{org}.{stamp}.{c}", st.text(max_size=70)),
            st.builds(
                lambda o: f"{o}.{stamp}.{mac}",
                st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=30),
            ),
        ),
        100,
    )
    tokens = [t for t in tokens if t.strip() != valid]
    paths = ["/dashboard", "/dashboard/summary.csv", "/dashboard/events.csv"]
    found = await statuses(
        lambda p=paths[i % 3], t=token: target.client.get(p, params={"t": t})
        for i, token in enumerate(tokens)
    )
    assert set(found) == {403}
    days = examples(st.text(max_size=12) | st.integers().map(str), 40)
    found = await statuses(
        lambda p=paths[i % 3], d=day: target.client.get(p, params={"t": valid, "days": d})
        for i, day in enumerate(days)
    )
    assert set(found) == {200}
    await assert_still_serving(target)


async def test_oauth_redirects_that_were_not_issued_install_nothing(target: Target) -> None:
    """Generated codes, states, errors and cookies on /slack/oauth_redirect: refused (or
    Slack's cancelled-install page), and Slack's oauth.v2.access is never called."""
    params = examples(
        st.dictionaries(
            st.sampled_from(["code", "state", "error", "x"]), st.text(max_size=60), max_size=4
        ),
        60,
    )
    calls = len(target.platforms.slack.fake.of("oauth.v2.access"))
    found = await statuses(
        lambda p=param: target.client.get(
            "/slack/oauth_redirect",
            params=p,
            headers={"Cookie": "slack-app-oauth-state=" + quote(p.get("state", ""))},
        )
        for param in params
    )
    assert all(s in (200, 400, 401, 403) for s in found), sorted(set(found))
    assert len(target.platforms.slack.fake.of("oauth.v2.access")) == calls
    with target.platforms.runtime.engine.connect() as conn:
        teams = conn.execute(text("SELECT team_id FROM slack_bots")).scalars().all()
    assert teams == [target.team]
    await assert_still_serving(target)
