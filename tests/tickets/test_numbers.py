"""Ticket numbers: unique in a mailbox, reserved in blocks outside processing transactions,
the unused rest given back at a clean stop (gateway/tickets/numbers.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from gateway.models import Mailbox, Ticket
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from gateway.tickets.numbers import NumbersNeeded, TicketNumbers
from gateway.tickets.service import open_ticket
from tests.mailflow import ALICE, build_mail
from tests.support import SUPPORT

BOB = "bob@customer.test"


async def _mail_in(gateway: Gateway, sender: str, subject: str) -> None:
    await gateway.receive(build_mail(sender=sender, to=SUPPORT, subject=subject, body="Hello."),
                          mail_from=sender, rcpt_tos=(SUPPORT,))  # fmt: skip
    await gateway.processor.drain()


async def _refs(db: Database) -> list[int]:
    return await db.read(orm(lambda session: list(session.scalars(select(Ticket.ref).order_by(Ticket.id)))))


async def _counter(db: Database, mailbox: Mailbox) -> int:
    return await db.read(lambda connection: connection.scalar(select(Mailbox.next_ref).where(Mailbox.id == mailbox.id)))


async def test_a_node_stopped_and_started_again_numbers_its_tickets_without_a_gap(
    gateway: Gateway, db: Database, settings: Settings, resolver: FixedResolver, mailbox: Mailbox
) -> None:
    await _mail_in(gateway, ALICE, "Printer jammed")
    await _mail_in(gateway, BOB, "New badge")
    await gateway.stop()
    restarted = Gateway(settings, db, resolver=resolver)
    await restarted.start()
    try:
        await _mail_in(restarted, "carol@customer.test", "VPN down")
    finally:
        await restarted.stop()
        await gateway.start()  # the fixture stops it again
    assert await _refs(db) == [1001, 1002, 1003]
    assert await _counter(db, mailbox) == 1004


async def test_numbers_another_worker_reserved_after_ours_are_never_given_back_twice(
    db: Database, mailbox: Mailbox
) -> None:
    ours, theirs = TicketNumbers(block=10), TicketNumbers(block=10)
    await ours.reserve(db, mailbox.id)
    await theirs.reserve(db, mailbox.id)
    assert (ours.take(mailbox.id), theirs.take(mailbox.id)) == (1001, 1011)
    await db.write(ours.give_back)  # the counter has moved past our block: ours stay spent
    assert await _counter(db, mailbox) == 1021
    await db.write(theirs.give_back)
    assert await _counter(db, mailbox) == 1012
    assert not ours.holding() and not theirs.holding()


async def test_a_ticket_opened_outside_processing_takes_the_next_number_in_its_own_transaction(
    db: Database, mailbox: Mailbox
) -> None:
    def opened(session: Session) -> int:
        return open_ticket(session, session.get_one(Mailbox, mailbox.id), None, "By hand").ref

    assert [await db.write(opened), await db.write(opened)] == [1001, 1002]


async def test_a_block_whose_transaction_did_not_commit_is_never_handed_out(db: Database, mailbox: Mailbox) -> None:
    # The counter never moved, so another worker may take the same numbers: handing them
    # out here as well would give two tickets one number.
    def commit_fails(_connection: object) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    ours = TicketNumbers(block=10)
    for engine in db.engines:
        event.listen(engine, "commit", commit_fails)
    try:
        with pytest.raises(OperationalError):
            await ours.reserve(db, mailbox.id)
    finally:
        for engine in db.engines:
            event.remove(engine, "commit", commit_fails)
    assert await _counter(db, mailbox) == 1001
    assert not ours.holding()
    with pytest.raises(NumbersNeeded):
        ours.take(mailbox.id)
