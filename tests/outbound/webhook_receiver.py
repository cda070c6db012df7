"""A real webhook receiver for the tests: an aiohttp server on a free port that records
every request and answers from a script (e.g. 500 three times, then 200)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival


@dataclass
class Receiver:
    """Answers with `script` in turn (the last one repeats); `requests` holds what arrived."""

    script: list[int] = field(default_factory=lambda: [200])
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(dict(request.headers), await request.read(), time.monotonic()))
        status = self.script[min(len(self.requests), len(self.script)) - 1]
        self.arrived.set()
        return web.Response(status=status, text=f"answer {status}")

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            self.arrived.clear()
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{len(self.requests)} of {count} requests arrived"
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                pass
        return self.requests


@asynccontextmanager
async def running(receiver: Receiver, port: int = 0) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    receiver.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield receiver
    finally:
        await runner.cleanup()
