"""The framework's floor: slack-bolt's AsyncApp acking a constant slash command reply, with
request verification, in ``process_before_response`` mode, mounted in aiohttp."""

from __future__ import annotations

import sys

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult


def build(signing_secret: str) -> web.Application:
    async def authorize(**kwargs: object) -> AuthorizeResult:
        # A fixed installation: no auth.test call leaves this machine.
        return AuthorizeResult(
            enterprise_id=None,
            team_id="TBENCH",
            bot_token="xoxb-bench",
            bot_user_id="UBOT",
            bot_id="BBOT",
        )

    bolt = AsyncApp(
        signing_secret=signing_secret,
        authorize=authorize,
        process_before_response=True,
        request_verification_enabled=True,
    )

    @bolt.command("/persona")
    async def persona(ack: AsyncAck) -> None:
        await ack({"response_type": "ephemeral", "text": "ok"})

    async def events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        bolt_response = await bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    app = web.Application()
    app.router.add_post("/slack/events", events)
    return app


def main() -> None:
    port, secret = int(sys.argv[1]), sys.argv[2]
    web.run_app(build(secret), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
