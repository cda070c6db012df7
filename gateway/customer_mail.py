"""The one path every email to a customer takes: a fresh link, the signed reply address, the outbox.

`mail_customer` issues a new single-use, ticket-scoped magic link for the recipient (in the
caller's transaction), composes the email with that link and its code, and queues it. The
customer's signed `t` reply address is both the Reply-To and the envelope sender, so
replies and bounces come back to the ticket even when every header is lost. A contact
whose address cannot be written into a header (or sits in `.invalid`) is skipped with a
warning, so one odd address never fails the change that mails it.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.compose import LinkBlock, OutboundKind, compose, conversation_thread, mail_address
from gateway.models import (
    Agent,
    Contact,
    Mailbox,
    Message,
    OutboxMessage,
    Ticket,
    TicketParticipant,
)
from gateway.outbox import enqueue
from gateway.reply_address import ReplyAddress, format_reply_address
from gateway.settings import Settings
from gateway.tokens import LinkPurpose, format_code, issue_link

log = logging.getLogger(__name__)


def customer_reply_address(settings: Settings, mailbox: Mailbox, ticket: Ticket) -> str:
    return format_reply_address(ReplyAddress(mailbox.address, "t", ticket.public_id), settings.keys[0])


async def customer_recipients(session: AsyncSession, ticket: Ticket) -> list[Contact]:
    """The ticket's participants who are not agents, requester first."""
    rows = await session.scalars(
        select(Contact)
        .join(TicketParticipant, TicketParticipant.contact_id == Contact.id)
        .where(TicketParticipant.ticket_id == ticket.id, Contact.email.not_in(select(Agent.email)))
        .order_by(Contact.id != ticket.requester_id, TicketParticipant.id)
    )
    return list(rows.all())


async def mail_customer(
    session: AsyncSession,
    settings: Settings,
    *,
    mailbox: Mailbox,
    ticket: Ticket,
    contact: Contact,
    template: str,
    context: dict[str, Any],
    kind: OutboundKind,
    automatic: bool,
    message: Message | None = None,
) -> OutboxMessage | None:
    """Queue one email to `contact` with a fresh link; None when their address cannot be mailed."""
    try:
        to = mail_address(contact.name, contact.email)
    except ValueError as error:
        log.warning("not mailing contact %d on ticket %d: %s", contact.id, ticket.id, error)
        return None
    issued = await issue_link(session, settings, contact, ticket=ticket, purpose=LinkPurpose.REPLY)
    address = customer_reply_address(settings, mailbox, ticket)
    email = compose(
        settings,
        mailbox,
        ticket,
        to=to,
        template=template,
        context={"contact_name": contact.name or contact.email, **context},
        reply_to=address,
        thread=await conversation_thread(session, ticket, for_customer=True),
        automatic=automatic,
        link=LinkBlock(issued.url(settings), format_code(issued.code)),
    )
    return await enqueue(
        session,
        mailbox=mailbox,
        to=[contact.email],
        email=email,
        kind=kind,
        ticket=ticket,
        message=message,
        envelope_from=address,
    )
