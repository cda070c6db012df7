"""Two processing workers on PostgreSQL: a reply processed while its parent is being
processed elsewhere still joins the parent's ticket, opening tickets in one mailbox does
not make one worker wait for the other's transaction, and a message caught in a deadlock
between their transactions is retried at once.

On SQLite one writer runs every transaction in turn, so the race cannot happen there.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

import gateway.inbound.on_ticket as on_ticket
from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from gateway.models import Contact, InboundEmail, InboundStatus, Mailbox, Ticket, new_public_id, utcnow
from gateway.settings import Settings
from gateway.storage.database import Database, open_database, orm
from tests.mailflow import ALICE, build_mail
from tests.support import SUPPORT

BOB = "bob@customer.test"


@pytest.fixture(autouse=True)
def _postgres_only(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite runs one transaction at a time")


async def _claimed_by_this_worker(gateway: Gateway, row_id: int) -> None:
    """The row is leased to `gateway`'s processor, as its claim would leave it."""

    def claimed(session: Session) -> None:
        session.execute(update(InboundEmail).where(InboundEmail.id == row_id).values(
            status=InboundStatus.PROCESSING, attempts=1, lease_expires_at=utcnow().replace(year=2100)))

    await gateway.db.write(claimed)


OtherWorker = Callable[[], tuple[threading.Thread, list[BaseException]]]


@pytest.fixture
def other_worker(settings: Settings, database_url: tuple[str, dict[str, Any]], resolver: FixedResolver) -> OtherWorker:
    """Starts a second node's processor, with its own connections, on a thread: it drains what
    is pending and commits. The caller joins the thread; the errors it raised are in the list."""

    async def drain() -> None:
        db = open_database(settings, **database_url[1])
        other = Gateway(settings, db, resolver=resolver)
        await other.start()
        try:
            await other.processor.drain()
        finally:
            await other.stop()
            await db.dispose()

    def start() -> tuple[threading.Thread, list[BaseException]]:
        errors: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(drain())
            except BaseException as error:  # noqa: BLE001 - reported by the caller
                errors.append(error)

        worker = threading.Thread(target=run)
        worker.start()
        return worker, errors

    return start


async def test_a_reply_whose_parent_commits_while_it_is_threaded_joins_the_parents_ticket(
    gateway: Gateway, db: Database, other_worker: OtherWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bob writes in and Alice, a colleague he forwarded it to, replies to his mail.
    parent = build_mail(sender=BOB, to=SUPPORT, subject="Printer jammed", body="Floor 3 again.")
    parent_id = parent.split(b"Message-ID: ")[1].split(b"\n")[0].strip().decode()
    reply = build_mail(sender=ALICE, to=SUPPORT, subject="Re: Printer jammed", body="Still jammed.",
                       in_reply_to=parent_id)
    await gateway.receive(parent, mail_from=BOB, rcpt_tos=(SUPPORT,))
    reply_row = await gateway.receive(reply, mail_from=ALICE, rcpt_tos=(SUPPORT,))

    await _claimed_by_this_worker(gateway, reply_row)
    find, raced = on_ticket.find_conversation, []

    def find_then_parent_commits(*args: Any, **kwargs: Any) -> Any:
        found = find(*args, **kwargs)  # the parent is not stored yet: no ticket
        if not raced:
            raced.append(found.ticket)
            worker, errors = other_worker()  # meanwhile the parent's worker commits
            worker.join(30)
            assert not errors, errors
        return found

    monkeypatch.setattr(on_ticket, "find_conversation", find_then_parent_commits)
    await gateway.processor.process(reply_row)

    def tickets_and_statuses(session: Session) -> tuple[int, list[str]]:
        count = len(session.scalars(select(Ticket.id)).all())
        return count, list(session.scalars(select(InboundEmail.status).order_by(InboundEmail.id)))

    assert raced == [None]
    assert await db.read(orm(tickets_and_statuses)) == (1, [InboundStatus.DELIVERED, InboundStatus.DELIVERED])


async def test_a_worker_opening_a_ticket_does_not_wait_for_another_workers_transaction_that_opened_one(
    gateway: Gateway, db: Database, other_worker: OtherWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A processing transaction commits up to 32 messages. If opening a ticket locked the
    # mailbox's ticket counter until that commit, a second worker opening a ticket in the
    # same mailbox would wait for the whole transaction, and two workers would take turns.
    first = await gateway.receive(build_mail(sender=ALICE, to=SUPPORT, subject="Printer jammed", body="Floor 3."),
                                  mail_from=ALICE, rcpt_tos=(SUPPORT,))  # fmt: skip

    await _claimed_by_this_worker(gateway, first)
    await gateway.receive(build_mail(sender=BOB, to=SUPPORT, subject="New badge", body="Lost mine."),
                          mail_from=BOB, rcpt_tos=(SUPPORT,))  # fmt: skip
    opened, ours, finished = on_ticket.open_ticket, threading.get_ident(), []

    def open_then_other_worker_opens_one(*args: Any, **kwargs: Any) -> Any:
        ticket = opened(*args, **kwargs)
        if threading.get_ident() == ours and not finished:  # our transaction is open: the other worker opens Bob's
            worker, errors = other_worker()
            worker.join(5)
            finished.append((not worker.is_alive(), worker, errors))
        return ticket

    monkeypatch.setattr(on_ticket, "open_ticket", open_then_other_worker_opens_one)
    await gateway.processor.process(first)
    [(in_time, worker, errors)] = finished
    worker.join(30)
    assert not errors, errors
    assert in_time, "the other worker waited for this worker's transaction to open its ticket"

    def refs(session: Session) -> list[int]:
        return list(session.scalars(select(Ticket.ref)))

    opened_refs = await db.read(orm(refs))
    assert len(set(opened_refs)) == 2


async def test_a_message_that_deadlocks_with_another_worker_is_retried_at_once_with_its_attempt_kept(
    gateway: Gateway, db: Database, database_url: tuple[str, dict[str, Any]], mailbox: Mailbox
) -> None:
    # Two workers commit several messages per transaction, so they lock rows in whatever
    # order their messages come: one added a contact (Bob, new) and then wants a ticket the
    # other touched, while the other wants to add the same contact. PostgreSQL breaks the
    # cycle by failing one statement. That message did nothing wrong: it goes
    # back to the queue at once without spending an attempt, and its worker commits what it
    # has, so the other worker's wait ends too.
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
            for _ in range(100):  # until the processor, having added Bob, waits for the ticket
                if await watcher.scalar(waiting):
                    break
                await asyncio.sleep(0.05)
            bob = {"email": BOB, "name": "", "public_id": new_public_id(), "created_at": utcnow()}
            await worker.execute(pg_insert(Contact).values(bob).on_conflict_do_nothing(index_elements=["email"]))
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
