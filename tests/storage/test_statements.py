"""Prepared statements store and return what the same statement through SQLAlchemy would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.models import Contact, InboundEmail, InboundStatus, Mailbox, OutboxMessage, loaded, utcnow
from gateway.storage import statements
from gateway.storage.database import Database, orm
from gateway.storage.statements import Prepared, Row, prepare

_ADD_CONTACT = Prepared(insert(Contact.__table__).returning(Contact.__table__.c.id, Contact.__table__.c.public_id))
_INBOUND = InboundEmail.__table__


async def test_insert_fills_python_defaults_and_converts_types(db: Database, mailbox: Mailbox) -> None:
    queue = Prepared(insert(OutboxMessage.__table__).returning(OutboxMessage.__table__.c.id))
    due = utcnow() + timedelta(minutes=5)

    def add(session: Session) -> int:
        return queue.scalar(session.connection(), {
            "kind": "notification", "mailbox_id": mailbox.id, "mail_from": "support@example.test", "rcpt_tos": ["tom@example.test"],
            "rfc_message_id": "n-1@example.test", "draft": {"template": "notification", "context": {"a": "é"}},
            "next_attempt_at": due,
        })  # fmt: skip

    row_id = await db.write(add)

    stored = await db.read(orm(lambda session: session.get_one(OutboxMessage, row_id)))
    assert stored.rcpt_tos == ["tom@example.test"]
    assert stored.draft == {"template": "notification", "context": {"a": "é"}}
    assert stored.next_attempt_at == due
    assert stored.status == "queued" and stored.attempts == 0  # column defaults
    assert len(stored.public_id) == 16 and stored.created_at <= utcnow()


async def test_update_with_literal_values_matches_the_orm_reading(db: Database) -> None:
    finish = Prepared(
        update(_INBOUND).where(_INBOUND.c.id == bindparam("row_id"))
        .values(status=InboundStatus.DELIVERED, outcome=bindparam("outcome"), lease_expires_at=None)
    )  # fmt: skip

    def change(session: Session):
        row = InboundEmail(raw=b"x", sha256="0" * 64, mail_from="a@b.test", rcpt_tos=["s@b.test"], peer="p",
                           status=InboundStatus.PROCESSING, lease_expires_at=utcnow())
        session.add(row)
        return row

    row = await db.write(change)
    await db.write(lambda session: finish.rows(session.connection(), {"row_id": row.id, "outcome": "normal"}))

    stored = await db.read(orm(lambda session: session.get_one(InboundEmail, row.id)))
    assert (stored.status, stored.outcome, stored.lease_expires_at) == (InboundStatus.DELIVERED, "normal", None)


async def test_a_refused_row_raises_integrity_error_without_its_values(db: Database) -> None:
    def add_twice(session: Session) -> None:
        for _ in range(2):
            _ADD_CONTACT.rows(session.connection(), {"email": "secret-address@example.test", "name": "N"})

    with pytest.raises(IntegrityError) as refused:
        await db.write(add_twice)

    assert "secret-address" not in str(refused.value)


async def test_rows_roll_back_with_their_savepoint(db: Database) -> None:
    def add_then_undo(session: Session) -> None:
        with session.begin_nested() as savepoint:
            _ADD_CONTACT.rows(session.connection(), {"email": "undone@example.test", "name": "U"})
            savepoint.rollback()
        _ADD_CONTACT.rows(session.connection(), {"email": "kept@example.test", "name": "K"})

    await db.write(add_then_undo)

    emails = await db.read(orm(lambda session: session.scalars(select(Contact.email)).all()))
    assert emails == ["kept@example.test"]


async def test_results_are_converted_as_sqlalchemy_would(db: Database) -> None:
    created = utcnow() - timedelta(days=3)
    by_email = Prepared(select(Contact.email, Contact.created_at).where(Contact.email == bindparam("email")))
    await db.write(lambda session: session.add(Contact(email="dora@example.test", name="Dora", created_at=created)))

    rows = await db.read(lambda connection: by_email.rows(connection, {"email": "dora@example.test"}))

    assert rows == [("dora@example.test", created)]


async def test_in_parameters_are_expanded_per_call(db: Database) -> None:
    among = Prepared(select(Contact.email).where(Contact.email.in_(bindparam("emails", expanding=True))))
    await db.write(lambda session: session.add_all(Contact(email=f"c{n}@example.test", name="") for n in range(3)))

    def both(connection: Connection) -> tuple[list[Row], list[Row]]:
        return among.rows(connection, {"emails": ["c0@example.test"]}), among.rows(
            connection, {"emails": ["c1@example.test", "c2@example.test", "nobody@example.test"]}
        )

    one, two = await db.read(both)

    assert one == [("c0@example.test",)]
    assert sorted(two) == [("c1@example.test",), ("c2@example.test",)]


async def test_the_other_parameters_of_a_statement_with_an_in_list_are_converted_too(db: Database) -> None:
    """An aware datetime beside an expanded IN list reaches the driver as the column stores it."""
    since = Prepared(
        select(Contact.email).where(
            Contact.email.in_(bindparam("emails", expanding=True)), Contact.created_at >= bindparam("since")
        )
    )
    await db.write(lambda session: session.add(Contact(email="c0@example.test", name="")))

    def recent(connection: Connection) -> list[Row]:
        return since.rows(connection, {"emails": ["c0@example.test"], "since": utcnow() - timedelta(hours=1)})

    assert await db.read(recent) == [("c0@example.test",)]


async def test_a_row_inserted_with_core_joins_the_session_as_a_loaded_contact(db: Database) -> None:
    def add_then_rename(session: Session) -> str:
        [(contact_id, _)] = _ADD_CONTACT.rows(session.connection(), {"email": "erin@example.test", "name": "E"})
        contact = loaded(Contact, {"id": contact_id, "email": "erin@example.test"})
        session.add(contact)
        assert contact not in session.new  # persistent already: no second INSERT
        contact.name = "Erin"  # a change to it flushes as an UPDATE of its row
        session.flush()
        return contact.public_id  # a column left out of `values` loads from the row

    public_id = await db.write(add_then_rename)

    def look(session: Session):
        stored = session.scalars(select(Contact).where(Contact.email == "erin@example.test")).one()
        return stored

    stored = await db.read(orm(look))
    assert (stored.name, stored.public_id) == ("Erin", public_id)


_NAME_OF = select(Contact.name).where(Contact.email == bindparam("email"))
_BY_EMAIL = prepare("test.contact_by_email", _NAME_OF)
_BY_EMAIL_UNCOMPILED = prepare("test.contact_by_email.uncompiled", _NAME_OF, compiled=False)


@pytest.mark.parametrize("name", [_BY_EMAIL, _BY_EMAIL_UNCOMPILED])
async def test_a_statement_is_run_by_the_name_it_was_registered_under(db: Database, name: str) -> None:
    await db.write(lambda session: session.add(Contact(email="alice@customer.test", name="Alice")))
    found = await db.read(lambda connection: statements.rows(name, connection, {"email": "alice@customer.test"}))
    assert found == [("Alice",)]
    nobody = {"email": "nobody@customer.test"}
    assert await db.read(lambda connection: statements.scalar(name, connection, nobody)) is None
    assert (name in statements.prepared_names()) is (name == _BY_EMAIL)


def test_a_name_is_prepared_once() -> None:
    with pytest.raises(ValueError, match="already prepared"):
        prepare(_BY_EMAIL, select(Contact.id))
