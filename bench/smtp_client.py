"""A small asyncio SMTP client: the fallback load generator and the paced latency probe.

`blast` drives a server as hard as `sessions` concurrent connections can, each sending
`per_connection` messages before it says QUIT; it is used only when Postfix's
smtp-source is not installed. `paced` keeps persistent connections and starts message
number i at t0 + i/rate, recording for each message the time from the end of DATA (the
final "." line leaving the client) to the 250 reply: the latency a sending MTA sees
while the server is loaded at that rate. Every reply is checked; a refusal is counted,
never mistaken for an acceptance.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.databases import SUPPORT

SENDER = "bench@client.test"
MESSAGE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class LoadResult:
    accepted: int
    refused: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


class SmtpError(RuntimeError):
    """The server answered with an unexpected code."""


def to_data(raw: bytes) -> bytes:
    """A stored message as DATA sends it: CRLF line ends, leading dots doubled."""
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)


def make_message(seq: int, size: int = MESSAGE_SIZE, subject: str = "load test") -> bytes:
    """A plain-text message of exactly `size` bytes with a unique Message-ID, ready for DATA."""
    head = (
        f"From: Bench Client <{SENDER}>\r\nTo: {SUPPORT}\r\nSubject: {subject} {seq}\r\n"
        f"Message-ID: <bench-{seq}-{time.monotonic_ns()}@client.test>\r\n"
        "Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\n"
    ).encode()
    line = b"x" * 76 + b"\r\n"
    body = line * ((size - len(head)) // len(line))
    return head + body + b"y" * (size - len(head) - len(body) - 2) + b"\r\n"


class Connection:
    """One SMTP session over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        connection = cls(reader, writer)
        await connection._expect(220)
        await connection.command(b"EHLO bench.client.test", 250)
        return connection

    async def _reply(self) -> int:
        while True:
            line = await self._reader.readline()
            if len(line) < 4:
                raise SmtpError(f"connection closed or bad reply: {line!r}")
            if line[3:4] != b"-":
                return int(line[:3])

    async def _expect(self, code: int) -> None:
        got = await self._reply()
        if got != code:
            raise SmtpError(f"expected {code}, got {got}")

    async def command(self, line: bytes, code: int) -> None:
        self._writer.write(line + b"\r\n")
        await self._expect(code)

    async def send(self, message: bytes, mail_from: str = SENDER) -> float:
        """One transaction (`message` ready for DATA); seconds from the end of DATA to the 250."""
        await self.command(f"MAIL FROM:<{mail_from}>".encode(), 250)
        await self.command(f"RCPT TO:<{SUPPORT}>".encode(), 250)
        await self.command(b"DATA", 354)
        self._writer.write(message + b".\r\n")
        await self._writer.drain()
        sent = time.perf_counter()
        code = await self._reply()
        if code != 250:
            raise SmtpError(f"DATA answered {code}")
        return time.perf_counter() - sent

    async def close(self) -> None:
        try:
            await self.command(b"QUIT", 221)
        finally:
            self._writer.close()
            await self._writer.wait_closed()


def load_message(seq: int) -> tuple[str, bytes]:
    """The default load: envelope sender and a 4 KB message."""
    return SENDER, make_message(seq)


async def blast(
    host: str, port: int, *, total: int, sessions: int, per_connection: int,
    messages: Callable[[int], tuple[str, bytes]] = load_message,
) -> LoadResult:
    """Send messages 0..total-1 over `sessions` concurrent connections, `per_connection` each."""
    counter = itertools.count()
    accepted = refused = 0

    async def worker() -> None:
        nonlocal accepted, refused
        while True:
            seqs = [next(counter) for _ in range(per_connection)]
            seqs = [s for s in seqs if s < total]
            if not seqs:
                return
            connection = await Connection.open(host, port)
            for seq in seqs:
                mail_from, message = messages(seq)
                try:
                    await connection.send(message, mail_from)
                    accepted += 1
                except SmtpError:
                    refused += 1
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(sessions)))
    return LoadResult(accepted, refused, time.perf_counter() - started)


async def paced(
    host: str, port: int, *, rate: float, seconds: float, connections: int,
    accepted: Callable[[int, float], None] | None = None, subject: str = "load test",
) -> list[float]:
    """DATA-to-250 latencies of messages started at a steady `rate` for `seconds`.

    `accepted(seq, when)` hears of each 250 as it arrives (`time.perf_counter()`).
    """
    total = max(1, int(rate * seconds))
    counter = itertools.count()
    latencies: list[float] = []
    start = time.perf_counter() + 0.2

    async def worker() -> None:
        connection = await Connection.open(host, port)
        while (seq := next(counter)) < total:
            delay = start + seq / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            latencies.append(await connection.send(make_message(seq, subject=subject)))
            if accepted is not None:
                accepted(seq, time.perf_counter())
        await connection.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies
