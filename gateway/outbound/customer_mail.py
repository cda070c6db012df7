"""The one path every email to a customer takes: a fresh link, the signed reply address, the outbox.

`mail_customer` queues a draft (gateway/outbound/drafts.py) that is rendered at delivery with a new
single-use, ticket-scoped magic link for the recipient and that link's code. The
customer's signed `t` reply address is both the Reply-To and the envelope sender, so
replies and bounces come back to the ticket even when every header is lost. A contact
whose address cannot be written into a header (or sits in `.invalid`) is skipped with a
warning, so one odd address never fails the change that mails it. `is_mailbox_address` says
whether an address is the mailbox's own, which is never acknowledged.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import Agent, Contact, Mailbox, Message, Ticket, TicketParticipant
from gateway.outbound.compose import OutboundKind, mail_address
from gateway.outbound.drafts import Draft, queue_draft
from gateway.settings import Settings
from gateway.tickets.reply_address import ReplyAddress, format_reply_address, split_plus

log = logging.getLogger(__name__)


def customer_reply_address(settings: Settings, mailbox: Mailbox, ticket: Ticket) -> str:
    return format_reply_address(ReplyAddress(mailbox.address, "t", ticket.public_id), settings.keys[0])


def is_mailbox_address(mailbox: Mailbox, address: str) -> bool:
    """Whether `address` is the mailbox's own (its plain address or any plus form of it).

    Anyone can write it into From, and mail answering it would only come back to Wicket.
    """
    return split_plus(address.strip())[0] == mailbox.address.lower()


def customer_recipients(session: Session, ticket: Ticket) -> list[Contact]:
    """The ticket's participants who are not agents, requester first."""
    rows = session.scalars(
        select(Contact)
        .join(TicketParticipant, TicketParticipant.contact_id == Contact.id)
        .where(TicketParticipant.ticket_id == ticket.id, Contact.email.not_in(select(Agent.email)))
        .order_by(Contact.id != ticket.requester_id, TicketParticipant.id)
    )
    return list(rows.all())


def mail_customer(
    session: Session,
    settings: Settings,
    *,
    mailbox: Mailbox,
    ticket: Ticket,
    contact: Contact,
    template: str,
    context: dict[str, str],
    kind: OutboundKind,
    automatic: bool,
    message: Message | None = None,
) -> None:
    """Queue one email to `contact` that will carry a fresh link; skipped when unmailable."""
    try:
        mail_address(contact.name, contact.email)
    except ValueError as error:
        log.warning("not mailing contact %d on ticket %d: %s", contact.id, ticket.id, error)
        return
    address = customer_reply_address(settings, mailbox, ticket)
    draft = Draft(
        template=template,
        context={"contact_name": contact.name or contact.email, **context},
        to_name=contact.name,
        to_email=contact.email,
        reply_to=address,
        automatic=automatic,
        for_customer=True,
        link_contact_id=contact.id,
    )
    queue_draft(
        session, mailbox=mailbox, ticket=ticket, kind=kind, draft=draft, envelope_from=address, message=message
    )
