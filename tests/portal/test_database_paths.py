"""The portal's database paths: inline reads, and units of work that share one commit.

`Database.read` runs a synchronous function on a connection (inline on SQLite, through
`run_sync` on PostgreSQL) and `Database.write` runs a unit of work as a transaction
(on SQLite batched with the units queued beside it, each in its own savepoint). Every
test here runs on whichever database the suite runs on, so both executions give the same
answers.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import Contact, InboundStatus, Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database
from gateway.tickets.lists import own_tickets
from tests.portal.helpers import add_contact, add_ticket
from tests.support import ReceiveEmail


def _emails(connection: Connection) -> list[str]:
    return list(connection.scalars(select(Contact.email).order_by(Contact.email)))


def _add(address: str) -> Callable[[Session], int]:
    def unit(session: Session) -> int:
        contact = Contact(email=address)
        session.add(contact)
        session.flush()
        return contact.id

    return unit


def _fail(session: Session) -> None:
    session.add(Contact(email="nobody@customer.test"))
    session.flush()
    raise ValueError("this unit changes its mind")


async def test_a_read_sees_what_was_committed_by_either_write_path(db: Database) -> None:
    await add_contact(db, "alice@customer.test")
    await db.write(_add("bob@customer.test"))
    assert await db.read(_emails) == ["alice@customer.test", "bob@customer.test"]


async def test_concurrent_units_commit_together_and_a_failing_one_stores_nothing(db: Database) -> None:
    units = [_add(f"user{n}@customer.test") for n in range(5)]
    results = await asyncio.gather(
        *(db.write(unit) for unit in units[:2]),
        db.write(_fail),
        *(db.write(unit) for unit in units[2:]),
        return_exceptions=True,
    )
    assert isinstance(results[2], ValueError)
    assert all(isinstance(result, int) for position, result in enumerate(results) if position != 2)
    assert await db.read(_emails) == [f"user{n}@customer.test" for n in range(5)]


async def test_a_unit_that_breaks_a_constraint_fails_alone(db: Database) -> None:
    await add_contact(db, "alice@customer.test")
    duplicate, fresh = _add("alice@customer.test"), _add("bob@customer.test")
    first, second = await asyncio.gather(db.write(duplicate), db.write(fresh), return_exceptions=True)
    assert isinstance(first, Exception) and isinstance(second, int)
    assert await db.read(_emails) == ["alice@customer.test", "bob@customer.test"]


async def test_the_ticket_list_reads_the_same_rows_as_the_tickets_stored(db: Database, mailbox: Mailbox) -> None:
    alice = await add_contact(db)
    stored = [await add_ticket(db, mailbox, alice, subject=f"Question {n}") for n in range(3)]
    page = await db.read(lambda connection: own_tickets(connection, alice.id))
    assert page.total == 3 and page.pages == 1
    assert sorted(row.public_id for row in page.rows) == sorted(ticket.public_id for ticket in stored)
    assert {row.subject for row in page.rows} == {"Question 0", "Question 1", "Question 2"}
    assert not any(row.unread for row in page.rows)


@pytest.mark.parametrize("page_asked", [0, 2, 99])
async def test_a_page_past_the_end_shows_the_last_page(db: Database, mailbox: Mailbox, page_asked: int) -> None:
    alice = await add_contact(db)
    for n in range(3):
        await add_ticket(db, mailbox, alice, subject=f"Question {n}")
    page = await db.read(lambda connection: own_tickets(connection, alice.id, page=page_asked, per_page=2))
    expected = 1 if page_asked == 0 else 2
    assert (page.page, page.pages, page.total, len(page.rows)) == (expected, 2, 3, 2 if expected == 1 else 1)


async def test_the_kept_reader_sees_each_commit_and_never_writes(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL reads through the async engine")
    assert await db.read(_emails) == []
    await add_contact(db, "alice@customer.test")
    assert await db.read(_emails) == ["alice@customer.test"]  # the same kept connection, a fresh snapshot
    with pytest.raises(OperationalError, match="readonly"):
        await db.read(lambda connection: connection.execute(text("DELETE FROM contact")))
    await db.write(_add("bob@customer.test"))
    assert await db.read(_emails) == ["alice@customer.test", "bob@customer.test"]


async def test_a_sqlite_file_has_one_reader_and_one_writer_shared_by_the_store_and_the_processor(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    if not gateway.db.is_sqlite or not Path("/proc/self/fd").is_dir():
        pytest.skip("SQLite on Linux: counts the process's open handles on the database file")
    reader, writer = gateway.db.engines
    committed: list[Engine] = []
    for engine in (reader, writer):
        event.listen(engine, "commit", lambda _conn, engine=engine: committed.append(engine))
    inbound = await receive_email("new-request.eml")  # the store's insert, then the processor's units
    assert inbound.status == InboundStatus.DELIVERED
    assert committed and set(committed) == {writer}
    path = str(make_url(settings.database_url).database)
    handles = [fd for fd in Path("/proc/self/fd").iterdir() if _points_at(fd, path)]
    # The reader's connection on the event loop's thread and the writer's; the checkpointer,
    # once it has run, reads through the reader's engine on a thread of its own.
    assert 2 <= len(handles) <= 3


def _points_at(fd: Path, path: str) -> bool:
    try:
        return os.readlink(fd) == path
    except OSError:
        return False
