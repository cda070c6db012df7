"""Which ticket a message belongs to: DESIGN.md's threading rules, in order.

1. `reply_address` — the envelope recipient is a signed reply address of a ticket.
2. `headers` — a Message-ID in In-Reply-To or References (or, for a bounce, the original
   message's id) matches a stored message or a sent outbox email of this mailbox.
3. `marker` — the body carries the ticket marker we put into outbound mail.
4. `subject_tag` — the subject carries `[#<ref>]` and the sender already takes part in
   that ticket (a stranger quoting someone's tag gets a new ticket).

The first rule that matches wins and its name is stored on the message. Subjects are never
compared for similarity.
"""

from __future__ import annotations

import re
from enum import StrEnum

from sqlalchemy import bindparam, select, union_all
from sqlalchemy.orm import Session

from gateway.models import Message, OutboxMessage, Ticket
from gateway.parse import ParsedEmail
from gateway.reply_address import ReplyAddress
from gateway.tickets import is_participant

_MARKER = re.compile(r"\[wicket:([a-z2-7]{16})\]")
_SUBJECT_TAG = re.compile(r"\[#(\d{1,9})\]")

# Statements built once: building and cache-keying an expression costs more than running it.
_TICKET_BY_PUBLIC_ID = select(Ticket).where(
    Ticket.public_id == bindparam("public_id"), Ticket.mailbox_id == bindparam("mailbox_id")
)
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


def ticket_marker(ticket: Ticket) -> str:
    """The marker outbound mail carries in its body (rule 3)."""
    return f"[wicket:{ticket.public_id}]"


def subject_tag(ticket: Ticket) -> str:
    return f"[#{ticket.ref}]"


def find_conversation(
    session: Session,
    mailbox_id: int,
    mail: ParsedEmail,
    reply: ReplyAddress | None,
    sender_contact_id: int,
) -> tuple[Ticket | None, ThreadRule]:
    """The ticket the message continues and the rule that said so, or (None, NEW)."""
    if reply is not None:
        ticket = _by_public_id(session, mailbox_id, reply.ticket_public_id)
        if ticket is not None:
            return ticket, ThreadRule.REPLY_ADDRESS

    ids = [*mail.in_reply_to, *reversed(mail.references)]
    if mail.delivery_report is not None and mail.delivery_report.original_message_id:
        ids.insert(0, mail.delivery_report.original_message_id)
    ticket = _by_message_ids(session, mailbox_id, ids)
    if ticket is not None:
        return ticket, ThreadRule.HEADERS

    for public_id in _MARKER.findall(f"{mail.text}\n{mail.html or ''}"):
        ticket = _by_public_id(session, mailbox_id, public_id)
        if ticket is not None:
            return ticket, ThreadRule.MARKER

    for ref in _SUBJECT_TAG.findall(mail.subject):
        ticket = session.scalar(
            select(Ticket).where(Ticket.mailbox_id == mailbox_id, Ticket.ref == int(ref))
        )
        if ticket is not None and is_participant(session, ticket.id, sender_contact_id):
            return ticket, ThreadRule.SUBJECT_TAG

    return None, ThreadRule.NEW


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
