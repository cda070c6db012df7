"""The direct row generator: a SQLite database holding N delivered messages, fast.

Growth is measured at a million stored messages, and processing a million emails first
would take hours, so this writes the rows that processing would have left behind, with
SQLAlchemy Core over the models' own tables (so it follows the schema as it changes):
contacts with five tickets each, tickets (the newest tenth open, the rest resolved) with
their requester as participant, and per message a delivered InboundEmail, its Message
(four to a ticket, a second apart from a year ago) and the sent agent notification it
caused in the outbox, plus the sent acknowledgement of each ticket, as processing leaves
them. The mailbox's `next_ref` is moved past the generated refs, so tickets opened
afterwards by the real code do not collide. `generate` writes a SQLite file; `fill` takes
any connection (the PostgreSQL plans were checked with it). Only what is measured
afterwards goes through the real code.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, insert, update

from bench.databases import AGENT, SUPPORT
from gateway.models import (
    Contact,
    InboundEmail,
    Mailbox,
    Message,
    OutboxMessage,
    OutboxStatus,
    Ticket,
    TicketParticipant,
    utcnow,
)

PER_TICKET = 4
TICKETS_PER_CONTACT = 5
OPEN_SHARE = 0.1  # the newest tenth of the tickets is still open
CHUNK = 20_000
CACHE_KIB = 1_000_000  # SQLite page cache while generating


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _raw(n: int, ticket: int, email: str) -> bytes:
    return (
        f"From: {email}\nTo: {SUPPORT}\n"
        f"Subject: Generated question {ticket}\nMessage-ID: <gen-{n}@generated.test>\n\n"
        f"Generated body of message {n} on ticket {ticket}.\n"
    ).encode()


def generate(path: Path, stored: int, mailbox_id: int) -> None:
    """Add `stored` delivered messages to the prepared SQLite database at `path`."""
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        # A scratch file written once: no journal, and room for the indexes in the page cache.
        # The gateway's own connections switch the file back to WAL (gateway/storage/database.py).
        conn.exec_driver_sql("PRAGMA journal_mode=OFF")
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        conn.exec_driver_sql(f"PRAGMA cache_size=-{CACHE_KIB}")
        fill(conn, stored, mailbox_id)
        conn.commit()
    engine.dispose()
    # Written without syncing, the file would still be going to disk during the measured
    # rounds: the first checkpoint's fsync of the database file would flush gigabytes of the
    # generator's writes, and the growth run would time the generator's I/O, not Wicket's.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fill(conn: Connection, stored: int, mailbox_id: int) -> None:
    """Add `stored` delivered messages through `conn`, on a prepared database without tickets yet."""
    tickets = max(1, stored // PER_TICKET)
    contacts = max(1, tickets // TICKETS_PER_CONTACT)
    start = utcnow() - timedelta(days=365)
    first_ref = conn.execute(
        update(Mailbox).where(Mailbox.id == mailbox_id)
        .values(next_ref=Mailbox.next_ref + tickets).returning(Mailbox.next_ref - tickets)
    ).scalar_one()
    contact_rows = (
        {"id": c + 1, "email": f"customer{c}@generated.test", "name": f"Customer {c}", "created_at": start}
        for c in range(contacts)
    )
    ticket_rows = (
        {
            "id": t + 1, "mailbox_id": mailbox_id, "ref": first_ref + t, "subject": f"Generated question {t}",
            "status": "open" if t >= tickets * (1 - OPEN_SHARE) else "resolved",
            "requester_id": t // TICKETS_PER_CONTACT % contacts + 1,
            "created_at": start, "last_activity_at": start + timedelta(seconds=t),
        }
        for t in range(tickets)
    )
    participant_rows = (
        {"ticket_id": t + 1, "contact_id": t // TICKETS_PER_CONTACT % contacts + 1,
         "role": "requester", "created_at": start}
        for t in range(tickets)
    )
    for model, rows in ((Contact, contact_rows), (Ticket, ticket_rows), (TicketParticipant, participant_rows)):
        for chunk in _chunks(rows):
            conn.execute(insert(model), chunk)
    for chunk in _chunks(_message_rows(stored, tickets, contacts, mailbox_id, start)):
        conn.execute(insert(InboundEmail), [rows["inbound"] for rows in chunk])
        conn.execute(insert(Message), [rows["message"] for rows in chunk])
        conn.execute(insert(OutboxMessage), [row for rows in chunk for row in rows["outbox"]])
    if conn.dialect.name == "postgresql":  # explicit ids leave the id sequences behind
        for model in (Contact, Ticket, InboundEmail, Message):
            table = model.__tablename__
            sequence = f"pg_get_serial_sequence('{table}', 'id')"
            conn.exec_driver_sql(f"SELECT setval({sequence}, (SELECT max(id) FROM {table}))")


def _sent(n: int, kind: str, ticket: int, to: str, mailbox_id: int, at: Any) -> dict[str, Any]:
    rfc_message_id = f"{kind}-{n}@example.test"
    raw = f"From: {SUPPORT}\nTo: {to}\nMessage-ID: <{rfc_message_id}>\nSubject: [#{ticket}]\n\nSent.\n".encode()
    return {
        "kind": kind, "mailbox_id": mailbox_id, "ticket_id": ticket + 1, "message_id": n + 1, "mail_from": SUPPORT,
        "rcpt_tos": [to], "rfc_message_id": rfc_message_id, "raw": raw, "status": OutboxStatus.SENT,
        "attempts": 1, "next_attempt_at": None, "created_at": at, "sent_at": at,
    }


def _message_rows(
    stored: int, tickets: int, contacts: int, mailbox_id: int, start: Any
) -> Iterator[dict[str, Any]]:
    for n in range(stored):
        ticket = n % tickets
        contact = ticket // TICKETS_PER_CONTACT % contacts
        email = f"customer{contact}@generated.test"
        raw = _raw(n, ticket, email)
        at = start + timedelta(seconds=n)
        yield {
            "inbound": {
                "id": n + 1, "raw": raw, "sha256": hashlib.sha256(raw).hexdigest(),
                "message_id": f"gen-{n}@generated.test", "mail_from": email, "rcpt_tos": [SUPPORT],
                "peer": "127.0.0.1:25", "source": "smtp", "received_at": at, "status": "delivered", "attempts": 1,
                "next_attempt_at": None, "outcome": "normal", "ticket_id": ticket + 1,
            },
            "message": {
                "id": n + 1, "ticket_id": ticket + 1, "mailbox_id": mailbox_id,
                "dedupe_key": "mid:" + hashlib.sha256(f"gen-{n}@generated.test".encode()).hexdigest(),
                "inbound_email_id": n + 1, "author_contact_id": contact + 1,
                "thread_rule": "new" if n < tickets else "headers", "rfc_message_id": f"gen-{n}@generated.test",
                "subject": f"Generated question {ticket}", "from_email": email,
                "body_text": f"Generated body of message {n} on ticket {ticket}.", "created_at": at,
            },
            "outbox": [_sent(n, "notification", ticket, AGENT, mailbox_id, at)]
            + ([_sent(n, "acknowledgement", ticket, email, mailbox_id, at)] if n < tickets else []),
        }
