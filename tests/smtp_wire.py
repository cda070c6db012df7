"""A raw SMTP conversation over a real socket, for tests that must send what no polite
client sends: pipelined floods, overlong lines, NUL bytes, bare LF, stalled sessions.

`WireSession` writes bytes exactly as given and reads whole (multi-line) replies; it never
fixes anything up. `still_serving` is the bystander check: one ordinary transaction from
another connection that must get its 250 while the abuse goes on.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from tests.support import SUPPORT, Server, send, simple_mail


@dataclass
class Reply:
    code: int
    text: str


class WireSession:
    """One TCP connection to the listener, driven byte by byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, server: Server, *, greet: bool = True) -> WireSession:
        reader, writer = await asyncio.open_connection(*server, limit=1024 * 1024)
        session = cls(reader, writer)
        if greet:
            greeting = await session.reply()
            assert greeting.code == 220, greeting
        return session

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self, timeout: float = 30) -> Reply:
        """One complete reply (continuation lines joined)."""
        lines: list[str] = []
        async with asyncio.timeout(timeout):
            while True:
                line = await self.reader.readline()
                if not line:
                    raise ConnectionError(f"connection closed after {lines!r}")
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                lines.append(text[4:])
                if len(text) < 4 or text[3] != "-":
                    return Reply(int(text[:3]), "\n".join(lines))

    async def replies(self, count: int, timeout: float = 60) -> list[Reply]:
        async with asyncio.timeout(timeout):
            return [await self.reply(timeout) for _ in range(count)]

    async def command(self, line: bytes) -> Reply:
        await self.send(line + b"\r\n")
        return await self.reply()

    async def closed_by_server(self, within: float) -> bool:
        """True when the server closes the connection within `within` seconds."""
        deadline = time.monotonic() + within
        try:
            while time.monotonic() < deadline:
                async with asyncio.timeout(deadline - time.monotonic()):
                    if not await self.reader.read(65536):
                        return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return False

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def still_serving(server: Server, within: float = 10.0) -> None:
    """Another client's ordinary transaction gets its 250 within `within` seconds."""
    async with asyncio.timeout(within):
        code, reply = await send(server, simple_mail("bystander"), [SUPPORT])
    assert code == 250, reply
