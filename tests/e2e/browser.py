"""A headless Chromium driven over the DevTools protocol (a websocket), for browser tests.

Only what the tests need: open a page, wait for it to load, evaluate an expression, collect
console errors and uncaught exceptions, take a screenshot. Chromium is Debian's ``chromium``
package (``.ci/run`` installs it); ``find_chromium()`` returns None when it is missing so
that tests can skip with the reason.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.polling import eventually

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",  # Chromium picks a free port and writes it down
)
WAIT = 20.0  # seconds for any one DevTools answer or event


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


class Page:
    """One tab, spoken to over its DevTools websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._event_added = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._ws:
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self.events.append(data)
                self._event_added.set()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        await self._ws.send_str(json.dumps({"id": call_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, WAIT)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    async def wait_for_event(self, method: str, since: int) -> dict[str, Any]:
        """The first event called ``method`` at or after index ``since`` of ``events``."""
        deadline = time.monotonic() + WAIT
        while True:
            for event in self.events[since:]:
                if event.get("method") == method:
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {method} within {WAIT} s")
            self._event_added.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event_added.wait(), remaining)

    async def open(self, url: str) -> tuple[int, int]:
        """Navigate and wait for the load event; return (document status, first event index)."""
        since = len(self.events)
        await self.send("Page.navigate", url=url)
        await self.wait_for_event("Page.loadEventFired", since)
        status = next(
            (
                int(e["params"]["response"]["status"])
                for e in self.events[since:]
                if e.get("method") == "Network.responseReceived"
                and e["params"].get("type") == "Document"
            ),
            0,
        )
        return status, since

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def errors(self, since: int = 0) -> list[str]:
        """Console errors, log errors and uncaught exceptions since event ``since``."""
        found = []
        for event in self.events[since:]:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(" ".join(str(a.get("value", a)) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                found.append(str(params.get("exceptionDetails", {}).get("text")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(str(params["entry"].get("text")))
        return found

    async def screenshot(self, path: Path) -> bytes:
        result = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        data = base64.b64decode(result["data"])
        await asyncio.to_thread(_write_file, path, data)
        return data

    async def close(self) -> None:
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def chromium_page(binary: str, profile: Path, width: int = 1280) -> AsyncIterator[Page]:
    """Start Chromium with a throw-away profile, yield its first tab, stop it afterwards."""
    process = await asyncio.create_subprocess_exec(
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"

        def port_written() -> str:
            if process.returncode is not None:
                raise RuntimeError(f"chromium exited with {process.returncode}")
            return port_file.read_text().strip() if port_file.exists() else ""

        written = await eventually(port_written, within=30, what="chromium's DevTools port")
        port = int(written.split()[0])
        async with aiohttp.ClientSession() as session:

            async def first_page() -> dict[str, Any] | None:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    targets: list[dict[str, Any]] = await resp.json()
                return next((t for t in targets if t.get("type") == "page"), None)

            target = await eventually(first_page, within=30, what="chromium to open a page")
            ws = await session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
            page = Page(ws)
            try:
                for domain in ("Page", "Runtime", "Log", "Network"):
                    await page.send(f"{domain}.enable")
                await page.send(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=900,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                yield page
            finally:
                await page.close()
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
