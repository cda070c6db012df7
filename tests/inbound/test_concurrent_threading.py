"""Two processing workers on PostgreSQL: a reply processed while its parent is being
processed elsewhere still joins the parent's ticket, and a message caught in a deadlock
between their transactions is retried at once.

On SQLite one writer runs every transaction in turn, so the race cannot happen there.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

import gateway.inbound.on_ticket as on_ticket
from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from gateway.models import InboundEmail, InboundStatus, Mailbox, Ticket, utcnow
from gateway.settings import Settings
from gateway.storage.database import Database, open_database, orm
from tests.mailflow import ALICE, build_mail
from tests.support import SUPPORT

BOB = "bob@customer.test"


def _other_worker_processes_everything(settings: Settings, options: dict[str, Any], resolver: FixedResolver) -> None:
    """A second node's processor, with its own connections, drains what is pending and commits."""

    async def drain() -> None:
        db = open_database(settings, **options)
        other = Gateway(settings, db, resolver=resolver)
        await other.start()
        try:
            await other.processor.drain()
        finally:
            await other.stop()
            await db.dispose()

    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(drain())
        except BaseException as error:  # noqa: BLE001 - reported by the caller
            errors.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(30)
    assert not errors, errors


async def test_a_reply_whose_parent_commits_while_it_is_threaded_joins_the_parents_ticket(
    gateway: Gateway,
    db: Database,
    settings: Settings,
    database_url: tuple[str, dict[str, Any]],
    resolver: FixedResolver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite runs one transaction at a time")
    # Bob writes in and Alice, a colleague he forwarded it to, replies to his mail.
    parent = build_mail(sender=BOB, to=SUPPORT, subject="Printer jammed", body="Floor 3 again.")
    parent_id = parent.split(b"Message-ID: ")[1].split(b"\n")[0].strip().decode()
    reply = build_mail(sender=ALICE, to=SUPPORT, subject="Re: Printer jammed", body="Still jammed.",
                       in_reply_to=parent_id)
    await gateway.receive(parent, mail_from=BOB, rcpt_tos=(SUPPORT,))
    reply_row = await gateway.receive(reply, mail_from=ALICE, rcpt_tos=(SUPPORT,))

    def claimed_by_this_worker(session: Session) -> None:
        session.execute(update(InboundEmail).where(InboundEmail.id == reply_row).values(
            status=InboundStatus.PROCESSING, attempts=1, lease_expires_at=utcnow().replace(year=2100)))

    await gateway.db.write(claimed_by_this_worker)
    find, raced = on_ticket.find_conversation, []

    def find_then_parent_commits(*args: Any, **kwargs: Any) -> Any:
        found = find(*args, **kwargs)  # the parent is not stored yet: no ticket
        if not raced:
            raced.append(found.ticket)
            _other_worker_processes_everything(settings, database_url[1], resolver)  # meanwhile the parent's worker commits
        return found

    monkeypatch.setattr(on_ticket, "find_conversation", find_then_parent_commits)
    await gateway.processor.process(reply_row)

    def tickets_and_statuses(session: Session) -> tuple[int, list[str]]:
        count = len(session.scalars(select(Ticket.id)).all())
        return count, list(session.scalars(select(InboundEmail.status).order_by(InboundEmail.id)))

    assert raced == [None]
    assert await db.read(orm(tickets_and_statuses)) == (1, [InboundStatus.DELIVERED, InboundStatus.DELIVERED])


async def test_a_message_that_deadlocks_with_another_worker_is_retried_at_once_with_its_attempt_kept(
    gateway: Gateway, db: Database, database_url: tuple[str, dict[str, Any]], mailbox: Mailbox
) -> None:
    # Two workers commit several messages per transaction, so they lock rows in whatever
    # order their messages come: one opened a ticket (the mailbox's ticket counter) and then
    # wants a ticket the other touched, while the other wants the counter. PostgreSQL
    # breaks the cycle by failing one statement. That message did nothing wrong: it goes
    # back to the queue at once without spending an attempt, and its worker commits what it
    # has, so the other worker's wait ends too.
    if db.is_sqlite:
        pytest.skip("SQLite runs one transaction at a time")
    first = build_mail(sender=ALICE, to=SUPPORT, subject="Printer jammed", body="Floor 3 again.")
    first_id = first.split(b"Message-ID: ")[1].split(b"\n")[0].strip().decode()
    await gateway.receive(first, mail_from=ALICE, rcpt_tos=(SUPPORT,))
    await gateway.processor.drain()
    printer = await db.read(lambda connection: connection.scalar(select(Ticket.id)))
    await gateway.receive(build_mail(sender=BOB, to=SUPPORT, subject="New badge", body="Lost mine."),
                          mail_from=BOB, rcpt_tos=(SUPPORT,))  # fmt: skip
    reply = build_mail(sender=ALICE, to=SUPPORT, subject="Re: Printer jammed", body="Still.", in_reply_to=first_id)
    reply_row = await gateway.receive(reply, mail_from=ALICE, rcpt_tos=(SUPPORT,))

    other = create_async_engine(database_url[0], **database_url[1])
    try:
        async with other.connect() as worker, other.connect() as watcher:
            await worker.execute(text("SET deadlock_timeout = '30s'"))  # the processor is the one to notice
            await worker.execute(update(Ticket).where(Ticket.id == printer).values(last_activity_at=utcnow()))
            processing = asyncio.ensure_future(gateway.processor.process_batch())
            waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            for _ in range(100):  # until the processor, holding the counter, waits for the ticket
                if await watcher.scalar(waiting):
                    break
                await asyncio.sleep(0.05)
            await worker.execute(update(Mailbox).where(Mailbox.id == mailbox.id).values(next_ref=Mailbox.next_ref))
            await worker.commit()
            await processing
    finally:
        await other.dispose()
    for _ in range(40):  # the reply is due again at once, or nearly
        if not await gateway.processor.drain():
            await asyncio.sleep(0.1)

    def outcome(session: Session) -> tuple[str, int | None, int]:
        row = session.get(InboundEmail, reply_row)
        assert row is not None
        return row.status, row.ticket_id, row.attempts

    assert await db.read(orm(outcome)) == (InboundStatus.DELIVERED, printer, 1)
