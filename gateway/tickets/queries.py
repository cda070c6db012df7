"""Read-only views of tickets for operators (`wicket tickets list/show`), as plain dicts.

`list_tickets` filters by status, owner (an agent's address or name), unassigned and age
(`older_than`, against the ticket's creation); both views name the owner, priority and
tags, and `show_ticket` marks every internal note as one. A ticket whose mail named no
usable sender has no requester (None) and shows what its From header said, escaped, as
`unclear_from` (docs/architecture.md, "Mail with no usable sender").
A shown ticket's messages list their files: name, type, size and sha256.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, func, or_, select
from sqlalchemy.orm import Session

from gateway.models import Agent, Attachment, Contact, InboundEmail, Mailbox, Message, Ticket, utcnow
from gateway.storage.database import Database, orm


class TicketNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class TicketFilter:
    statuses: tuple[str, ...] = ()
    owner: str | None = None  # an agent's address or name, any case
    unassigned: bool = False
    older_than: timedelta | None = None
    limit: int = 50


def _owner_names(connection: Connection) -> dict[int, str]:
    return {agent_id: email for agent_id, email in connection.execute(select(Agent.id, Agent.email))}


async def list_tickets(db: Database, wanted: TicketFilter | None = None) -> list[dict[str, Any]]:
    wanted = wanted or TicketFilter()
    counts = (
        select(Message.ticket_id, func.count(Message.id).label("messages"))
        .group_by(Message.ticket_id)
        .subquery()
    )
    query = (
        select(
            Ticket.__table__,
            Mailbox.address.label("mailbox_address"),
            Contact.email.label("requester_email"),
            counts.c.messages,
        )
        .join(Mailbox, Mailbox.id == Ticket.mailbox_id)
        .outerjoin(Contact, Contact.id == Ticket.requester_id)  # none while the sender is unclear
        .outerjoin(counts, counts.c.ticket_id == Ticket.id)
        .order_by(Ticket.last_activity_at.desc(), Ticket.id.desc())
        .limit(wanted.limit)
    )
    if wanted.statuses:
        query = query.where(Ticket.status.in_(wanted.statuses))
    if wanted.unassigned:
        query = query.where(Ticket.owner_agent_id.is_(None))
    if wanted.owner:
        who = wanted.owner.strip().lower()
        owners = select(Agent.id).where(or_(Agent.email == who, func.lower(Agent.name) == who))
        query = query.where(Ticket.owner_agent_id.in_(owners))
    if wanted.older_than is not None:
        query = query.where(Ticket.created_at < utcnow() - wanted.older_than)

    def read(connection: Connection) -> list[dict[str, Any]]:
        owners = _owner_names(connection)
        return [
            {
                "ref": ticket.ref,
                "public_id": ticket.public_id,
                "mailbox": ticket.mailbox_address,
                "status": ticket.status,
                "owner": owners.get(ticket.owner_agent_id) if ticket.owner_agent_id else None,
                "priority": ticket.priority,
                "tags": list(ticket.tags or []),
                "flag": ticket.flag,
                "requester": ticket.requester_email,  # None: the sender was unclear (see "unclear_from")
                "unclear_from": ticket.unclear_from,
                "subject": ticket.subject,
                "messages": ticket.messages or 0,
                "created_at": ticket.created_at.isoformat(timespec="seconds"),
                "last_activity_at": ticket.last_activity_at.isoformat(timespec="seconds"),
            }
            for ticket in connection.execute(query)
        ]

    return await db.read(read)


async def show_ticket(db: Database, ref: int, mailbox_address: str | None = None) -> dict[str, Any]:
    """One ticket and its thread; each message with its Message-ID and shown headers."""
    return await db.read(orm(lambda session: _show(session, ref, mailbox_address)), large=True)


def ticket_by_ref(session: Session, ref: int, mailbox_address: str | None = None) -> tuple[Mailbox, Ticket]:
    """Ticket `ref` of the mailbox with that address (default: the first); TicketNotFound if none."""
    mailbox_query = select(Mailbox).order_by(Mailbox.id)
    if mailbox_address:
        mailbox_query = mailbox_query.where(Mailbox.address == mailbox_address.strip().lower())
    mailbox = session.scalars(mailbox_query.limit(1)).first()
    ticket = mailbox and session.scalar(select(Ticket).where(Ticket.mailbox_id == mailbox.id, Ticket.ref == ref))
    if mailbox is None or ticket is None:
        raise TicketNotFound(f"no ticket #{ref}" + (f" in {mailbox_address}" if mailbox_address else ""))
    return mailbox, ticket


def _show(session: Session, ref: int, mailbox_address: str | None) -> dict[str, Any]:
    # Imported here: `wicket tickets list`, which loads this module, needs no ratings (nor links).
    from gateway.tickets.satisfaction import ratings_of

    mailbox, ticket = ticket_by_ref(session, ref, mailbox_address)
    requester = session.get(Contact, ticket.requester_id) if ticket.requester_id is not None else None
    owner = session.get(Agent, ticket.owner_agent_id) if ticket.owner_agent_id else None
    previous = session.get(Ticket, ticket.previous_ticket_id) if ticket.previous_ticket_id else None
    messages = list(session.scalars(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)))
    inbound_ids = [m.inbound_email_id for m in messages if m.inbound_email_id is not None]
    raw_by_inbound = dict(
        session.execute(select(InboundEmail.id, InboundEmail.raw).where(InboundEmail.id.in_(inbound_ids))).all()
    )
    files = _files_by_message(session, ticket.id)
    return {
        "ref": ticket.ref,
        "public_id": ticket.public_id,
        "mailbox": mailbox.address,
        "subject": ticket.subject,
        "status": ticket.status,
        "owner": owner.email if owner else None,
        "priority": ticket.priority,
        "tags": list(ticket.tags or []),
        "previous_ticket": previous.ref if previous else None,
        "flag": ticket.flag,
        "requester": requester.email if requester else None,
        "unclear_from": ticket.unclear_from,
        "messages": [
            _message(m, raw_by_inbound.get(m.inbound_email_id or 0), files.get(m.id, [])) for m in messages
        ],
        "ratings": [
            {"rating": "good" if r.good else "bad", "comment": r.comment, "by": session.get_one(Contact, r.contact_id).email,
             "resolved_at": r.resolved_at.isoformat(timespec="seconds"), "rated_at": r.created_at.isoformat(timespec="seconds")}
            for r in ratings_of(session, ticket.id)
        ],  # fmt: skip
    }


def _message(message: Message, raw: bytes | None, files: list[dict[str, Any]]) -> dict[str, Any]:
    # Imported here: `wicket tickets list`, which loads this module, needs no mail parser.
    from gateway.mail.parse import shown_headers

    headers = shown_headers(raw) if raw is not None else []
    return {
        "from": message.from_email,
        "author_type": message.author_type,
        "internal": message.internal,
        "classification": message.classification,
        "thread_rule": message.thread_rule,
        "message_id": message.rfc_message_id,
        "subject": message.subject,
        "headers": [{"name": name, "value": value} for name, value in [*headers, ("Subject", message.subject)]],
        "reply_text": message.reply_text,
        "body_text": message.body_text,
        "sender_verdicts": message.sender_verdicts,  # shape: gateway/mail/verdicts.py
        "created_at": message.created_at.isoformat(timespec="seconds"),
        "attachments": files,
    }


def _files_by_message(session: Session, ticket_id: int) -> dict[int, list[dict[str, Any]]]:
    """Each message's files as name, type, size and sha256 (never the bytes)."""
    rows = session.execute(
        select(Attachment.message_id, Attachment.filename, Attachment.content_type, Attachment.size, Attachment.sha256,
               Attachment.inline)
        .join(Message, Message.id == Attachment.message_id)
        .where(Message.ticket_id == ticket_id)
        .order_by(Attachment.id)
    )  # fmt: skip
    files: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for message_id, filename, content_type, size, sha256, inline in rows:
        files[message_id].append(
            {"filename": filename, "content_type": content_type, "size": size, "sha256": sha256, "inline": inline}
        )
    return files
