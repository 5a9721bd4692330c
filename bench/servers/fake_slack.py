"""A minimal fake of Slack's Web API and response_url for the load and soak benchmarks.

``persona-bot serve`` asks ``auth.test`` once (which workspace its token belongs to) and
``users.info`` once per user (the email); replies too slow for the ack, and the answers to
clicks, go to ``response_url``; modals open through ``views.open``; the scheduler's messages
go out through ``chat.postMessage`` (to a user id, or to the user ``users.lookupByEmail``
finds). This process answers those in Slack's wire format and counts the calls; ``GET
/calls`` returns the counts so the benchmark can tell what reached Slack. (The richer fake in
the test suite records every payload, which would grow without bound under load.)

What a benchmark must check is kept in bounded mailboxes until it takes it:
``GET /take/response/KEY`` (what was posted to ``/response/KEY``), ``GET /take/view/TRIGGER``
(the modal opened with that trigger id) and ``GET /drain/posts`` (every ``chat.postMessage``
since the last drain). Like Slack, ``chat.postMessage`` refuses a channel that is no Slack id
(``channel_not_found``) and ``users.lookupByEmail`` knows only ``USER_EMAIL``.

    python bench/servers/fake_slack.py PORT TOKEN TEAM_ID
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from bench.servers.mailbox import Feed, Mailbox, take_route

USER_EMAIL = "bench.seller@bench.example"
USER_ID = "UBENCH"  # who USER_EMAIL belongs to
SLACK_ID = re.compile(r"^[CDGUW][A-Z0-9]{2,}$")
VIEW_METHODS = ("views.open", "views.push", "views.update")


def build(token: str, team_id: str) -> web.Application:
    calls: Counter[str] = Counter()
    boxes = {"response": Mailbox(), "view": Mailbox()}
    posts = Feed()
    stamps = itertools.count(1)

    async def api(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        calls[method] += 1
        raw = await request.text()
        params: dict[str, Any] = {}
        if raw.startswith("{"):
            params = json.loads(raw)
        elif raw:
            params = dict(parse_qsl(raw))
        params.update(request.query)
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {token}" and params.get("token") != token:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if method == "auth.test":
            return web.json_response(
                {
                    "ok": True,
                    "url": "https://bench.slack.example/",
                    "team": "Bench",
                    "user": "persona-bot",
                    "team_id": team_id,
                    "user_id": "UBOT",
                    "bot_id": "BBOT",
                    "is_enterprise_install": False,
                }
            )
        if method == "users.info":
            user = params.get("user", "")
            return web.json_response(
                {
                    "ok": True,
                    "user": {
                        "id": user,
                        "team_id": team_id,
                        "name": "bench.seller",
                        "is_bot": False,
                        "profile": {"email": USER_EMAIL, "real_name": "Bench Seller"},
                    },
                }
            )
        if method == "users.lookupByEmail":
            if str(params.get("email", "")).lower() != USER_EMAIL:
                return web.json_response({"ok": False, "error": "users_not_found"})
            return web.json_response(
                {"ok": True, "user": {"id": USER_ID, "team_id": team_id, "name": "bench.seller"}}
            )
        if method == "chat.postMessage":
            channel = str(params.get("channel", ""))
            if not SLACK_ID.match(channel):
                return web.json_response({"ok": False, "error": "channel_not_found"})
            posts.put(params)
            ts = f"1700000000.{next(stamps):06d}"
            return web.json_response({"ok": True, "channel": channel, "ts": ts})
        if method in VIEW_METHODS:
            view = params.get("view")
            if isinstance(view, str):
                view = json.loads(view)
            boxes["view"].put(str(params.get("trigger_id") or params.get("view_id")), view)
            return web.json_response({"ok": True, "view": {"id": f"V{next(stamps)}"}})
        return web.json_response({"ok": True})

    async def response_url(request: web.Request) -> web.Response:
        calls["response_url"] += 1
        body = await request.read()
        boxes["response"].put(request.match_info["key"], json.loads(body or b"{}"))
        return web.Response(text="ok")

    async def counts(request: web.Request) -> web.Response:
        return web.json_response(dict(calls))

    async def drain(request: web.Request) -> web.Response:
        return web.json_response(posts.drain())

    async def held(request: web.Request) -> web.Response:
        """How much the mailboxes hold and dropped (a benchmark that reads everything
        sees zeros)."""
        return web.json_response(
            {
                "response": len(boxes["response"]),
                "view": len(boxes["view"]),
                "posts_dropped": posts.dropped,
                "dropped": sum(b.dropped for b in boxes.values()),
            }
        )

    async def take(request: web.Request) -> web.Response:
        return await take_route(boxes, request)

    app = web.Application()
    app.router.add_route("*", "/api/{method}", api)
    app.router.add_post("/response/{key}", response_url)
    app.router.add_get("/calls", counts)
    app.router.add_get("/take/{box}/{key}", take)
    app.router.add_get("/drain/posts", drain)
    app.router.add_get("/held", held)
    return app


def main() -> None:
    port, token, team_id = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    web.run_app(build(token, team_id), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
