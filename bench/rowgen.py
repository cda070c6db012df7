"""The direct row generator: a SQLite database holding N delivered messages, fast.

Growth is measured at a million stored messages, and processing a million emails first
would take hours, so this writes the rows that processing would have left behind, with
SQLAlchemy Core over the models' own tables (so it follows the schema as it changes):
contacts, tickets with their requester as participant, and per message a delivered
InboundEmail and its Message, four messages to a ticket. The mailbox's `next_ref` is
moved past the generated refs, so tickets opened afterwards by the real code do not
collide. Only what is measured afterwards goes through the real code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, update

from bench.databases import SUPPORT
from gateway.models import Contact, InboundEmail, Mailbox, Message, Ticket, TicketParticipant, utcnow

PER_TICKET = 4
TICKETS_PER_CONTACT = 5
CHUNK = 20_000


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
    tickets = max(1, stored // PER_TICKET)
    contacts = max(1, tickets // TICKETS_PER_CONTACT)
    start = utcnow() - timedelta(days=365)
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
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
                "status": "open", "requester_id": t // TICKETS_PER_CONTACT % contacts + 1,
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
        for chunk in _chunks(_message_pairs(stored, tickets, contacts, mailbox_id, start)):
            conn.execute(insert(InboundEmail), [pair["inbound"] for pair in chunk])
            conn.execute(insert(Message), [pair["message"] for pair in chunk])
    engine.dispose()


def _message_pairs(
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
                "ticket_id": ticket + 1, "mailbox_id": mailbox_id,
                "dedupe_key": "mid:" + hashlib.sha256(f"gen-{n}@generated.test".encode()).hexdigest(),
                "inbound_email_id": n + 1, "author_contact_id": contact + 1,
                "thread_rule": "new" if n < tickets else "headers", "rfc_message_id": f"gen-{n}@generated.test",
                "subject": f"Generated question {ticket}", "from_email": email,
                "body_text": f"Generated body of message {n} on ticket {ticket}.", "created_at": at,
            },
        }
