"""Read-only views of tickets for operators (`wicket tickets list/show`), as plain dicts.

A shown ticket's messages list their files: name, type, size and sha256.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.mail.parse import shown_headers
from gateway.models import Attachment, Contact, InboundEmail, Mailbox, Message, Ticket
from gateway.storage.database import Database, orm


class TicketNotFound(LookupError):
    pass


async def list_tickets(db: Database, *, limit: int = 50) -> list[dict[str, Any]]:
    counts = (
        select(Message.ticket_id, func.count(Message.id).label("messages"))
        .group_by(Message.ticket_id)
        .subquery()
    )
    query = (
        select(Ticket, Mailbox.address, Contact.email, counts.c.messages)
        .join(Mailbox, Mailbox.id == Ticket.mailbox_id)
        .join(Contact, Contact.id == Ticket.requester_id)
        .outerjoin(counts, counts.c.ticket_id == Ticket.id)
        .order_by(Ticket.last_activity_at.desc(), Ticket.id.desc())
        .limit(limit)
    )
    rows = await db.read(orm(lambda session: session.execute(query).all()))
    return [
        {
            "ref": ticket.ref,
            "public_id": ticket.public_id,
            "mailbox": address,
            "status": ticket.status,
            "flag": ticket.flag,
            "requester": requester,
            "subject": ticket.subject,
            "messages": messages or 0,
            "last_activity_at": ticket.last_activity_at.isoformat(timespec="seconds"),
        }
        for ticket, address, requester, messages in rows
    ]


async def show_ticket(db: Database, ref: int, mailbox_address: str | None = None) -> dict[str, Any]:
    """One ticket and its thread; each message with its Message-ID and shown headers."""
    return await db.read(orm(lambda session: _show(session, ref, mailbox_address)), large=True)


def _show(session: Session, ref: int, mailbox_address: str | None) -> dict[str, Any]:
    mailbox_query = select(Mailbox).order_by(Mailbox.id)
    if mailbox_address:
        mailbox_query = mailbox_query.where(Mailbox.address == mailbox_address.lower())
    mailbox = session.scalars(mailbox_query.limit(1)).first()
    ticket = mailbox and session.scalar(select(Ticket).where(Ticket.mailbox_id == mailbox.id, Ticket.ref == ref))
    if mailbox is None or ticket is None:
        raise TicketNotFound(f"no ticket #{ref}" + (f" in {mailbox_address}" if mailbox_address else ""))
    requester = session.get_one(Contact, ticket.requester_id)
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
        "flag": ticket.flag,
        "requester": requester.email,
        "messages": [
            _message(m, raw_by_inbound.get(m.inbound_email_id or 0), files.get(m.id, [])) for m in messages
        ],
    }


def _message(message: Message, raw: bytes | None, files: list[dict[str, Any]]) -> dict[str, Any]:
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
