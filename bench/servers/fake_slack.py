"""A minimal fake of Slack's Web API and response_url for the load benchmark.

``persona-bot serve`` asks ``auth.test`` once (which workspace its token belongs to) and
``users.info`` once per user (the email); replies too slow for the ack go to
``response_url``. This process answers those in Slack's wire format and counts the calls;
``GET /calls`` returns the counts so the benchmark can tell what reached Slack. (The richer
fake in the test suite records every payload, which would grow without bound under load.)

    python bench/servers/fake_slack.py PORT TOKEN TEAM_ID
"""

from __future__ import annotations

import sys
from collections import Counter
from urllib.parse import parse_qsl

from aiohttp import web

USER_EMAIL = "bench.seller@bench.example"


def build(token: str, team_id: str) -> web.Application:
    calls: Counter[str] = Counter()

    async def api(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        calls[method] += 1
        raw = await request.text()
        params = dict(parse_qsl(raw)) if raw and not raw.startswith("{") else {}
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
        return web.json_response({"ok": True})

    async def response_url(request: web.Request) -> web.Response:
        calls["response_url"] += 1
        await request.read()
        return web.Response(text="ok")

    async def counts(request: web.Request) -> web.Response:
        return web.json_response(dict(calls))

    app = web.Application()
    app.router.add_route("*", "/api/{method}", api)
    app.router.add_post("/response/{key}", response_url)
    app.router.add_get("/calls", counts)
    return app


def main() -> None:
    port, token, team_id = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    web.run_app(build(token, team_id), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
