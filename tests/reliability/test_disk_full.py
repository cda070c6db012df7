"""A disk that fills up while a message's attachments are being stored: the message stays
failed (with the reason, retried with backoff), nothing of it is half-written — no ticket,
no message, no attachment row — and once there is room again it is delivered whole, by
the running processor, without anyone stepping in.

SQLite gets a real SQLITE_FULL ("database or disk is full") from a page limit just above
the database's size; PostgreSQL gets SQLSTATE 53100 `disk_full` on attachment inserts.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from gateway.models import Attachment, InboundEmail, InboundStatus, Mailbox, Message, Ticket
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.portal.helpers import with_settings
from tests.reliability.faults import DiskFull
from tests.support import SUPPORT

pytestmark = pytest.mark.timeout(90)

SIZES = (60_000, 90_000, 120_000)


def mail_with_attachments() -> tuple[bytes, dict[str, str]]:
    mail = EmailMessage()
    mail["From"] = "alice@customer.test"
    mail["To"] = SUPPORT
    mail["Subject"] = "Logs attached"
    mail["Message-ID"] = "<logs-1@customer.test>"
    mail.set_content("The logs you asked for.")
    digests = {}
    for n, size in enumerate(SIZES):
        data = os.urandom(size)
        digests[f"log-{n}.bin"] = hashlib.sha256(data).hexdigest()
        mail.add_attachment(data, maintype="application", subtype="octet-stream", filename=f"log-{n}.bin")
    return mail.as_bytes(), digests


async def counts(db: Database) -> tuple[int, int, int]:
    def look(session: Session):
        tickets = session.scalar(select(func.count(Ticket.id)))
        messages = session.scalar(select(func.count(Message.id)))
        attachments = session.scalar(select(func.count(Attachment.id)))
        return tickets, messages, attachments

    tickets, messages, attachments = await db.read(orm(look))
    return tickets or 0, messages or 0, attachments or 0


async def row(db: Database, inbound_id: int) -> InboundEmail:
    return await db.read(orm(lambda session: session.get_one(InboundEmail, inbound_id)))


async def until(check: Callable[[], Awaitable[bool]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "gave up waiting"
        await asyncio.sleep(0.05)


async def test_a_full_disk_while_storing_attachments_leaves_the_message_unwritten_and_later_delivered_whole(
    settings: Settings, db: Database, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    patient = with_settings(
        settings, process_retry_base_seconds=0.05, process_max_attempts=30, process_lease_seconds=2,
        process_poll_seconds=0.1,
    )
    gateway = Gateway(patient, db, resolver=FixedResolver())
    await gateway.start()
    try:
        raw, digests = mail_with_attachments()
        inbound_id = await gateway.receive(raw, mail_from="alice@customer.test", rcpt_tos=(SUPPORT,))
        async with DiskFull(db, tables=("attachment",)):
            gateway.run_processor()

            async def refused_twice() -> bool:
                # PostgreSQL: the delivery fails and is recorded. SQLite: with no page to
                # spare even the claim cannot be written, so the row stays pending.
                found = await row(db, inbound_id)
                full = [r for r in caplog.records if "disk is full" in r.getMessage()]
                return (found.status == InboundStatus.FAILED and found.attempts >= 2) or len(full) >= 2

            await until(refused_twice, seconds=30)
            waiting = await row(db, inbound_id)
            assert waiting.status in (InboundStatus.PENDING, InboundStatus.FAILED)
            if waiting.status == InboundStatus.FAILED:
                assert waiting.next_attempt_at is not None, "a full disk is worth retrying"
                assert "no space left" in (waiting.last_error or "").lower()
            assert await counts(db) == (0, 0, 0), "something of the message was half-written"

        async def delivered() -> bool:
            return (await row(db, inbound_id)).status == InboundStatus.DELIVERED

        await until(delivered, seconds=30)
    finally:
        await gateway.stop()
    assert await counts(db) == (1, 1, len(SIZES))
    stored = await db.read(orm(lambda session: session.scalars(select(Attachment)).all()))
    assert {a.filename: hashlib.sha256(a.data).hexdigest() for a in stored} == digests
    assert sorted(a.size for a in stored) == sorted(SIZES)
