"""The yardstick: a bare aiohttp handler returning fixed JSON, nothing else."""

from __future__ import annotations

import sys

from aiohttp import web

BODY = b'{"ok": true}'


async def handle(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=BODY, content_type="application/json")


def main() -> None:
    port = int(sys.argv[1])
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
