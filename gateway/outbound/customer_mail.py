"""The one path every email to a customer takes: a fresh link, the signed reply address, the outbox.

`mail_customer` queues a draft (gateway/outbound/drafts.py) that is rendered at delivery with a new
single-use, ticket-scoped magic link for the recipient and that link's code. The
customer's signed `t` reply address is both the Reply-To and the envelope sender, so
replies and bounces come back to the ticket even when every header is lost. A contact
whose address cannot be written into a header (or sits in `.invalid`) is skipped with a
warning, so one odd address never fails the change that mails it. An agent's reply shows
the requester in To and the other participants in Cc (`reply_all_headers`), though each
copy goes to its own recipient alone, with a link only that recipient can use. `is_mailbox_address` says
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


def greeting_name(contact: Contact) -> str:
    """The name a mail greets the contact by, or "" for a plain "Hello,": never an address."""
    name = " ".join((contact.name or "").split())
    return "" if "@" in name else name


def customer_recipients(session: Session, ticket: Ticket) -> list[Contact]:
    """The ticket's participants who are not agents, requester first."""
    rows = session.scalars(
        select(Contact)
        .join(TicketParticipant, TicketParticipant.contact_id == Contact.id)
        .where(TicketParticipant.ticket_id == ticket.id, Contact.email.not_in(select(Agent.email)))
        .order_by(Contact.id != ticket.requester_id, TicketParticipant.id)
    )
    return list(rows.all())


Pairs = tuple[tuple[str, str], ...]
Shown = tuple[Pairs, Pairs]  # the To and Cc headers as (name, address) pairs


def mailable(contact: Contact) -> bool:
    try:
        mail_address(contact.name, contact.email)
    except ValueError:
        return False
    return True


def reply_all_headers(contacts: list[Contact]) -> Shown:
    """To the first of `contacts` (the requester), Cc the others: one conversation for all."""
    pairs = tuple((c.name, c.email) for c in contacts if mailable(c))
    return pairs[:1], pairs[1:]


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
    shown: Shown = ((), ()),
) -> None:
    """Queue one email to `contact` that will carry a fresh link; skipped when unmailable.

    `shown` is the To and Cc the email displays; with `message`, its files go along.
    """
    try:
        mail_address(contact.name, contact.email)
    except ValueError as error:
        log.warning("not mailing contact %d on ticket %d: %s", contact.id, ticket.id, error)
        return
    address = customer_reply_address(settings, mailbox, ticket)
    draft = Draft(
        template=template,
        context={"contact_name": greeting_name(contact), **context},
        to_name=contact.name,
        to_email=contact.email,
        reply_to=address,
        automatic=automatic,
        for_customer=True,
        link_contact_id=contact.id,
        shown_to=shown[0],
        shown_cc=shown[1],
        with_files=message is not None,
    )
    queue_draft(
        session, mailbox=mailbox, ticket=ticket, kind=kind, draft=draft, envelope_from=address, message=message
    )
