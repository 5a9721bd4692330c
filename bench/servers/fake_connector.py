"""A minimal fake Bot Connector for the load benchmark: the ``serviceUrl`` of its activities.

The bot posts every reply (and typing indicator) to
``POST /v3/conversations/{conversation}/activities[/{reply_to}]`` and may ask for a
member's email once; this process answers those as the Bot Connector does, counts the
activities by type and keeps the last message, which ``GET /last`` returns
(``{"count": {...}, "last": ACTIVITY}``) so the benchmark can check that the reply arrived
and carries an Adaptive Card.

    python bench/servers/fake_connector.py PORT
"""

from __future__ import annotations

import itertools
import json
import sys
from collections import Counter
from typing import Any

from aiohttp import web


def build() -> web.Application:
    count: Counter[str] = Counter()
    last: dict[str, Any] = {}
    ids = itertools.count(1)

    async def activity(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        kind = str(body.get("type", ""))
        count[kind] += 1
        if kind == "message":
            last["message"] = body
        return web.json_response({"id": f"activity-{next(ids)}"}, status=201)

    async def member(request: web.Request) -> web.Response:
        member_id = request.match_info["member"]
        return web.json_response(
            {"id": member_id, "name": "Bench Seller", "email": "bench.seller@bench.example"}
        )

    async def report(request: web.Request) -> web.Response:
        return web.json_response({"count": dict(count), "last": last.get("message")})

    app = web.Application()
    app.router.add_post("/v3/conversations/{conversation}/activities", activity)
    app.router.add_post("/v3/conversations/{conversation}/activities/{reply_to}", activity)
    app.router.add_get("/v3/conversations/{conversation}/members/{member}", member)
    app.router.add_get("/last", report)
    return app


def main() -> None:
    port = int(sys.argv[1])
    web.run_app(build(), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
