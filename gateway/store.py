"""The durable raw store: InboundEmail rows committed before the SMTP client hears 250.

Concurrent SMTP sessions hand their messages to one writer task, which inserts everything
waiting in a single transaction (group commit): one fsync covers the whole batch, so
durability does not cost a disk flush per message. Each caller's future resolves with its
row id only after the commit returned; if the commit fails, every caller in the batch gets
`StoreUnavailable` and nothing of the batch is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import insert

from gateway.db import Database
from gateway.models import InboundEmail, utcnow

log = logging.getLogger(__name__)

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


class StoreUnavailable(Exception):
    """The database could not commit; the client should retry later."""


@dataclass(frozen=True, slots=True)
class IncomingMail:
    raw: bytes
    mail_from: str
    rcpt_tos: tuple[str, ...]
    peer: str
    source: str = "smtp"


def header_message_id(raw: bytes) -> str | None:
    """The Message-ID as written in the header block, without brackets (cheap, no parsing)."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    match = _MESSAGE_ID.search(head)
    if not match:
        return None
    value = match.group(1).decode("utf-8", "replace").strip().strip("<>").strip()
    return value[:998] or None


def _row(mail: IncomingMail) -> dict[str, object]:
    now = utcnow()
    return {
        "raw": mail.raw,
        "sha256": hashlib.sha256(mail.raw).hexdigest(),
        "message_id": header_message_id(mail.raw),
        "mail_from": mail.mail_from[:320],
        "rcpt_tos": list(mail.rcpt_tos),
        "peer": mail.peer[:100],
        "source": mail.source,
        "received_at": now,
        "next_attempt_at": now,
    }


class InboundStore:
    """Group-committing writer of InboundEmail rows."""

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 200,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._max_batch = max_batch
        self._on_stored = on_stored
        self._queue: asyncio.Queue[tuple[dict[str, object], asyncio.Future[int]]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_forever(), name="inbound-store")

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    async def save(self, mail: IncomingMail) -> int:
        """Store one message durably and return its InboundEmail id."""
        if self._writer is None:
            raise RuntimeError("InboundStore.save() before start()")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put((_row(mail), future))
        return await future

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[dict[str, object], asyncio.Future[int]]]) -> None:
        rows = [row for row, _ in batch]
        statement = insert(InboundEmail).returning(InboundEmail.id, sort_by_parameter_order=True)
        try:
            async with self._db.engine.begin() as conn:
                ids = (await conn.execute(statement, rows)).scalars().all()
        except Exception as error:  # any database failure refuses the whole batch
            log.error("inbound store could not commit %d message(s): %s", len(batch), error)
            for _, future in batch:
                if not future.done():
                    future.set_exception(StoreUnavailable(str(error)))
            return
        for (_, future), row_id in zip(batch, ids, strict=True):
            if not future.done():
                future.set_result(row_id)
        if self._on_stored is not None:
            self._on_stored()
