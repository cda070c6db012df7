"""The ticket service layer: contacts, new tickets and participants (status: status.py).

Mail processing, the portal and the agent API all change tickets through these functions,
so a ticket is numbered and joined the same way whichever door a message came in.
Like every ticket operation they are synchronous over an ORM `Session`: the processor runs
them in its unit of work and the portal, the agent API and the CLI through `Database.write`.
Statements on the processing path that need no ORM object run as Core on the session's
connection (`session.connection().execute`): through `Session.execute` each costs about
three times as much (150 against 50 µs on SQLite).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from gateway.directory.contacts import contact_for
from gateway.mail.addresses import is_valid_address
from gateway.models import (
    Agent,
    Contact,
    Mailbox,
    ParticipantRole,
    Ticket,
    TicketParticipant,
    TicketPriority,
    TicketStatus,
    loaded,
    new_public_id,
    utcnow,
)
from gateway.storage import statements
from gateway.storage.upsert import insert_ignore
from gateway.tickets.numbers import next_number
from gateway.tickets.reply_address import split_plus

_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|fw|fwd|wg|tr|rif|antw)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_SUBJECT_TAG = re.compile(r"\s*\[#\d+\]\s*")
MAX_CC_PARTICIPANTS = 20

# Statements built once: building and cache-keying an expression costs more than running it.
_INSERT_TICKET = statements.prepare("tickets.insert", insert(Ticket.__table__).returning(Ticket.__table__.c.id))
_INSERT_PARTICIPANT = statements.prepare("tickets.insert_participant", insert(TicketParticipant.__table__))


def clean_subject(subject: str) -> str:
    """A ticket subject: reply/forward prefixes and our own tag removed."""
    cleaned = _SUBJECT_TAG.sub(" ", _REPLY_PREFIX.sub("", subject)).strip()
    cleaned = _REPLY_PREFIX.sub("", cleaned).strip()
    return cleaned[:500] or "(no subject)"


def add_participant(
    session: Session, ticket: Ticket, contact: Contact, role: ParticipantRole = ParticipantRole.CC
) -> None:
    values = {"ticket_id": ticket.id, "contact_id": contact.id, "role": role, "created_at": utcnow()}
    session.connection().execute(insert_ignore(_dialect(session), TicketParticipant, values, ["ticket_id", "contact_id"]))


def add_cc_participants(session: Session, ticket: Ticket, addresses: Iterable[str]) -> None:
    """Addresses put in Cc by the requester or an agent join the ticket as participants.

    Callers decide who may add people (see gateway/inbound/on_ticket.py); this keeps our own
    mailbox addresses (plain or plus-tagged), the team and invalid addresses (no contact is
    made for an address mail cannot be answered at) out of the participants.
    """
    wanted = [a for a in dict.fromkeys(a.strip().lower() for a in addresses) if is_valid_address(a)]
    if not wanted:
        return
    wanted = wanted[:MAX_CC_PARTICIPANTS]
    bases = {address: split_plus(address)[0] for address in wanted}
    ours = set(session.scalars(select(Mailbox.address).where(Mailbox.address.in_(set(bases.values())))))
    team = set(session.scalars(select(Agent.email).where(Agent.email.in_(wanted))))
    for address in wanted:
        if bases[address] not in ours and address not in team:
            add_participant(session, ticket, contact_for(session, address))


def is_participant(session: Session, ticket_id: int, contact_id: int) -> bool:
    found = session.scalar(
        select(TicketParticipant.id).where(
            TicketParticipant.ticket_id == ticket_id, TicketParticipant.contact_id == contact_id
        )
    )
    return found is not None


def open_ticket(
    session: Session,
    mailbox: Mailbox,
    requester: Contact | None,
    subject: str,
    flag: str | None = None,
    *,
    unclear_from: str | None = None,
) -> Ticket:
    """A new ticket with the mailbox's next reference number (gateway/tickets/numbers.py).

    `requester` None: the mail named no usable sender (gateway/tickets/requester.py), and
    `unclear_from` keeps what its From header said.
    """
    ref = next_number(session, mailbox.id)  # first: `NumbersNeeded` leaves nothing half done
    rows = session.connection()
    now = utcnow()
    values = {
        "public_id": new_public_id(),
        "mailbox_id": mailbox.id,
        "ref": ref,
        "subject": clean_subject(subject),
        "requester_id": requester.id if requester is not None else None,
        "unclear_from": unclear_from,
        "flag": flag,
        "status": TicketStatus.OPEN,
        "created_at": now,
        "last_activity_at": now,
        "status_changed_at": now,
        "owner_agent_id": None,
        "priority": TicketPriority.NORMAL,
        "tags": [],
        "previous_ticket_id": None,
    }
    # A Core insert, then the row joins the session as a loaded object: the unit of work's
    # flush cost several times the INSERT itself on the processing path.
    ticket = loaded(Ticket, {"id": statements.scalar(_INSERT_TICKET, rows, values), **values})
    session.add(ticket)
    if requester is not None:
        statements.rows(
            _INSERT_PARTICIPANT,
            rows,
            {"ticket_id": ticket.id, "contact_id": requester.id, "role": ParticipantRole.REQUESTER, "created_at": now},
        )
    return ticket


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name
