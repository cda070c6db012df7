"""Read-only views of tickets for operators (`wicket tickets list/show`), as plain dicts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from gateway.models import Contact, Mailbox, Message, Ticket
from gateway.storage.database import Database


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
    async with db.sessions() as session:
        rows = (await session.execute(query)).all()
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
    async with db.sessions() as session:
        mailbox_query = select(Mailbox).order_by(Mailbox.id)
        if mailbox_address:
            mailbox_query = mailbox_query.where(Mailbox.address == mailbox_address.lower())
        mailbox = (await session.execute(mailbox_query.limit(1))).scalar_one_or_none()
        ticket = mailbox and await session.scalar(
            select(Ticket).where(Ticket.mailbox_id == mailbox.id, Ticket.ref == ref)
        )
        if mailbox is None or ticket is None:
            raise TicketNotFound(f"no ticket #{ref}" + (f" in {mailbox_address}" if mailbox_address else ""))
        requester = await session.get_one(Contact, ticket.requester_id)
        messages = (
            await session.execute(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id))
        ).scalars()
        return {
            "ref": ticket.ref,
            "public_id": ticket.public_id,
            "mailbox": mailbox.address,
            "subject": ticket.subject,
            "status": ticket.status,
            "flag": ticket.flag,
            "requester": requester.email,
            "messages": [
                {
                    "from": m.from_email,
                    "author_type": m.author_type,
                    "internal": m.internal,
                    "classification": m.classification,
                    "thread_rule": m.thread_rule,
                    "subject": m.subject,
                    "reply_text": m.reply_text,
                    "body_text": m.body_text,
                    "created_at": m.created_at.isoformat(timespec="seconds"),
                }
                for m in messages
            ],
        }
