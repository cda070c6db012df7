"""The durable raw store: InboundEmail rows committed before the SMTP client hears 250.

Concurrent SMTP sessions hand their messages to writer tasks, each of which inserts
everything waiting in a single transaction (group commit): one fsync covers the whole
batch, so durability does not cost a disk flush per message. Each caller's future resolves
with its row id only after the commit returned; if the commit fails, every caller in the
batch gets `StoreUnavailable` and nothing of the batch is stored.
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

from gateway.mail.charsets import storable
from gateway.models import InboundEmail, utcnow
from gateway.storage.database import OUTAGE, Appender, Database

log = logging.getLogger(__name__)

_INSERT = insert(InboundEmail).returning(InboundEmail.id, sort_by_parameter_order=True)
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
    send_mail: bool = True
    helo: str | None = None  # the EHLO/HELO name; None for mail that did not come over SMTP


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
    message_id = header_message_id(mail.raw)
    return {
        "raw": mail.raw,
        "sha256": hashlib.sha256(mail.raw).hexdigest(),
        "message_id": storable(message_id)[:998] if message_id else None,
        "mail_from": storable(mail.mail_from)[:320],
        "rcpt_tos": [storable(address) for address in mail.rcpt_tos],
        "peer": storable(mail.peer)[:100],
        "helo": storable(mail.helo)[:255] if mail.helo else None,
        "source": mail.source,
        "send_mail": mail.send_mail,
        "received_at": now,
        "next_attempt_at": now,
    }


class InboundStore:
    """Group-committing writer of InboundEmail rows.

    Batches go through the database's appender (gateway/storage/database.py): on SQLite
    the one writer thread, whose commit they share with whatever else is writing; on
    PostgreSQL two writers, each a kept connection, so one batch is written while the
    other's commit is being flushed.
    """

    POSTGRES_WRITERS = 2

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
        self.writers: list[Appender] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self._tasks:
            return
        count = 1 if self._db.is_sqlite else self.POSTGRES_WRITERS
        self.writers = [self._db.appender(_INSERT, batch=self._max_batch) for _ in range(count)]
        self._tasks = [
            asyncio.create_task(self._write_forever(writer), name=f"inbound-store-{n}")
            for n, writer in enumerate(self.writers)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for writer in self.writers:
            await writer.close()
        self._tasks, self.writers = [], []

    async def save(self, mail: IncomingMail) -> int:
        """Store one message durably and return its InboundEmail id."""
        if not self._tasks:
            raise RuntimeError("InboundStore.save() before start()")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put((_row(mail), future))
        return await future

    async def _write_forever(self, writer: Appender) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._commit(writer, batch)

    async def _commit(self, writer: Appender, batch: list[tuple[dict[str, object], asyncio.Future[int]]]) -> None:
        try:
            ids = await writer.insert([row for row, _ in batch])
        except Exception as error:  # any database failure refuses the whole batch
            if len(batch) > 1 and not isinstance(error, OUTAGE):
                # A row the database refuses (bad data, not an outage) must not refuse its
                # neighbours, so the batch is retried one message at a time.
                log.warning("inbound store: a batch of %d was refused (%s); storing one by one", len(batch), error)
                for item in batch:
                    await self._commit(writer, [item])
                return
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
