"""A minimal fake Bot Connector for the load and soak benchmarks: the ``serviceUrl`` of
their activities.

The bot posts every reply (and typing indicator) to
``POST /v3/conversations/{conversation}/activities/{reply_to}``, proactive messages (review
nudges, digests) to ``POST /v3/conversations/{conversation}/activities``, and may ask for a
member's email once; this process answers those as the Bot Connector does, counts the
activities by type and keeps the last message, which ``GET /last`` returns
(``{"count": {...}, "proactive": N, "last": ACTIVITY}``) so the benchmark can check that the
reply arrived and carries an Adaptive Card.

For checking every answer of a long run, replies are also kept in a bounded mailbox under the
id of the activity they answer (``GET /take/replies/ACTIVITY_ID?timeout=S`` waits for them and
removes them), and proactive messages in a bounded feed (``GET /drain/proactive``).

    python bench/servers/fake_connector.py PORT
"""

from __future__ import annotations

import itertools
import json
import sys
from collections import Counter
from typing import Any

from aiohttp import web

from bench.servers.mailbox import Feed, Mailbox, take_route


def build() -> web.Application:
    count: Counter[str] = Counter()
    last: dict[str, Any] = {}
    ids = itertools.count(1)
    boxes = {"replies": Mailbox()}
    proactive = Feed()

    async def activity(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        kind = str(body.get("type", ""))
        count[kind] += 1
        if kind == "message":
            last["message"] = body
            reply_to = request.match_info.get("reply_to")
            if reply_to:
                boxes["replies"].put(reply_to, body)
            else:
                proactive.put(body)
        return web.json_response({"id": f"activity-{next(ids)}"}, status=201)

    async def member(request: web.Request) -> web.Response:
        member_id = request.match_info["member"]
        return web.json_response(
            {"id": member_id, "name": "Bench Seller", "email": "bench.seller@bench.example"}
        )

    async def report(request: web.Request) -> web.Response:
        return web.json_response(
            {"count": dict(count), "proactive": proactive.total, "last": last.get("message")}
        )

    async def drain(request: web.Request) -> web.Response:
        return web.json_response(proactive.drain())

    async def held(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "replies": len(boxes["replies"]),
                "dropped": boxes["replies"].dropped,
                "proactive_dropped": proactive.dropped,
            }
        )

    async def take(request: web.Request) -> web.Response:
        return await take_route(boxes, request)

    app = web.Application()
    app.router.add_post("/v3/conversations/{conversation}/activities", activity)
    app.router.add_post("/v3/conversations/{conversation}/activities/{reply_to}", activity)
    app.router.add_get("/v3/conversations/{conversation}/members/{member}", member)
    app.router.add_get("/last", report)
    app.router.add_get("/take/{box}/{key}", take)
    app.router.add_get("/drain/proactive", drain)
    app.router.add_get("/held", held)
    return app


def main() -> None:
    port = int(sys.argv[1])
    web.run_app(build(), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
