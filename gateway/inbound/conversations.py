"""Which ticket a message belongs to: the threading rules, in order (docs/architecture.md).

1. `reply_address` — the envelope recipient is a signed reply address of a ticket.
2. `headers` — a Message-ID in In-Reply-To or References (or, for a bounce, the original
   message's id) matches a stored message or a sent outbox email of this mailbox.
3. `marker` — the body carries a signed ticket marker we put into outbound mail
   (gateway/tickets/markers.py) and the sender already takes part in that ticket.
4. `subject_tag` — the subject carries `[#<ref>]` and the sender already takes part in
   that ticket.

Rules 3 and 4 never apply to mail that failed DMARC for its From domain: anyone can write
a From header, and only DMARC says the domain stands behind it.

The first rule that matches wins and its name is stored on the message. Subjects are never
compared for similarity. A marker or tag that names a ticket the sender does not take part
in threads nothing: the mail opens a ticket of its own, and the tickets it mentioned are
returned so agents can be told (a public id or ref is an identifier, never a capability).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import bindparam, select, union_all
from sqlalchemy.orm import Session

from gateway.mail.parse import ParsedEmail
from gateway.models import Contact, Mailbox, Message, OutboxMessage, Ticket, TicketParticipant
from gateway.settings import SecretKey
from gateway.tickets.markers import find_markers, mentioned_public_ids, verifies
from gateway.tickets.reply_address import ReplyAddress

_SUBJECT_TAG = re.compile(r"\[#(\d{1,9})\]")

# Statements built once: building and cache-keying an expression costs more than running it.
_TICKET_BY_PUBLIC_ID = select(Ticket).where(
    Ticket.public_id == bindparam("public_id"), Ticket.mailbox_id == bindparam("mailbox_id")
)
_PARTICIPANTS = select(TicketParticipant.contact_id, Contact.email).join(
    Contact, Contact.id == TicketParticipant.contact_id
).where(TicketParticipant.ticket_id == bindparam("ticket_id"))
_TICKET_BY_REF = select(Ticket).where(Ticket.mailbox_id == bindparam("mailbox_id"), Ticket.ref == bindparam("ref"))
_TICKETS_BY_MESSAGE_ID = union_all(
    select(Message.rfc_message_id, Message.ticket_id).where(
        Message.mailbox_id == bindparam("mailbox_id"),
        Message.rfc_message_id.in_(bindparam("ids", expanding=True)),
    ),
    select(OutboxMessage.rfc_message_id, OutboxMessage.ticket_id).where(
        OutboxMessage.mailbox_id == bindparam("mailbox_id"),
        OutboxMessage.ticket_id.is_not(None),
        OutboxMessage.rfc_message_id.in_(bindparam("ids", expanding=True)),
    ),
)


class ThreadRule(StrEnum):
    REPLY_ADDRESS = "reply_address"
    HEADERS = "headers"
    MARKER = "marker"
    SUBJECT_TAG = "subject_tag"
    NEW = "new"


@dataclass(frozen=True, slots=True)
class Conversation:
    """Where a message goes: its ticket (None for a new one), the rule, and what it mentioned."""

    ticket: Ticket | None
    rule: ThreadRule
    mentions: tuple[Ticket, ...] = ()




def find_conversation(
    session: Session,
    mailbox: Mailbox,
    keys: tuple[SecretKey, ...],
    mail: ParsedEmail,
    reply: ReplyAddress | None,
    sender_contact_id: int | None,
    *,
    sender_trusted: bool = True,
) -> Conversation:
    """The ticket the message continues and the rule that said so, or a new conversation.

    Rules 3 and 4 rest on the sender being who From says; for mail that failed DMARC
    (`sender_trusted` False) they thread nothing, and the tickets they name are mentions.
    """
    if reply is not None:
        ticket = _by_public_id(session, mailbox.id, reply.ticket_public_id)
        if ticket is not None:
            return Conversation(ticket, ThreadRule.REPLY_ADDRESS)

    ids = [*mail.in_reply_to, *reversed(mail.references)]
    if mail.delivery_report is not None and mail.delivery_report.original_message_id:
        ids.insert(0, mail.delivery_report.original_message_id)
    ticket = _by_message_ids(session, mailbox.id, ids)
    if ticket is not None:
        return Conversation(ticket, ThreadRule.HEADERS)

    body = f"{mail.text}\n{mail.html or ''}"
    mentions: dict[int, Ticket] = {}
    for marker in find_markers(body):
        ticket = _by_public_id(session, mailbox.id, marker.ticket_public_id)
        if ticket is None:
            continue
        emails = _participant_emails(session, ticket.id)
        if sender_trusted and sender_contact_id in emails and verifies(marker, keys, mailbox.address, emails.values()):
            return Conversation(ticket, ThreadRule.MARKER)
    for public_id in mentioned_public_ids(body):
        ticket = _by_public_id(session, mailbox.id, public_id)
        if ticket is not None:
            mentions[ticket.id] = ticket

    for ref in _SUBJECT_TAG.findall(mail.subject):
        ticket = session.scalar(_TICKET_BY_REF, {"mailbox_id": mailbox.id, "ref": int(ref)})
        if ticket is None:
            continue
        if sender_trusted and sender_contact_id in _participant_emails(session, ticket.id):
            return Conversation(ticket, ThreadRule.SUBJECT_TAG)
        mentions[ticket.id] = ticket

    return Conversation(None, ThreadRule.NEW, tuple(mentions.values()))


def _participant_emails(session: Session, ticket_id: int) -> dict[int, str]:
    rows = session.connection().execute(_PARTICIPANTS, {"ticket_id": ticket_id})
    return {contact_id: email for contact_id, email in rows}


def _by_public_id(session: Session, mailbox_id: int, public_id: str) -> Ticket | None:
    return session.scalar(_TICKET_BY_PUBLIC_ID, {"public_id": public_id, "mailbox_id": mailbox_id})


def _by_message_ids(session: Session, mailbox_id: int, ids: list[str]) -> Ticket | None:
    """The ticket of the first id (in the order given) that names a stored message."""
    wanted = [i for i in dict.fromkeys(ids) if i][:100]
    if not wanted:
        return None
    rows = session.connection().execute(_TICKETS_BY_MESSAGE_ID, {"mailbox_id": mailbox_id, "ids": wanted})
    ticket_by_id = {message_id: ticket_id for message_id, ticket_id in rows}
    for message_id in wanted:
        if message_id in ticket_by_id:
            return session.get(Ticket, ticket_by_id[message_id])
    return None
