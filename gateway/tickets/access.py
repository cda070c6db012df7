"""What a contact may see of a ticket: the access rule, the customer's thread, read markers.

A contact reaches a ticket they take part in, or a ticket opened by a colleague in an
account that shares tickets (`gateway.directory.accounts`); anything else is None, so the portal
answers 404 and nobody learns whether the id exists. The customer's thread is every
message except internal notes and the mail system's own traffic (bounces, loops), oldest
first; attachments are reachable only through a message of that thread. `mark_read`
records when the contact last looked, for the ticket list's unread marker. Agents reach
every file on the tickets of the mailboxes they work, while they are active
(`file_for_agent`); for them too, anything else is None.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, and_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, defer, selectinload

from gateway.directory.accounts import SharingAccount, account_sharing_with
from gateway.mail.classify import MailKind
from gateway.models import (
    Agent,
    Attachment,
    Contact,
    MailboxMembership,
    Message,
    Ticket,
    TicketRead,
    utcnow,
)
from gateway.tickets.service import is_participant

HIDDEN_KINDS = (MailKind.BOUNCE, MailKind.LOOP)


@dataclass(frozen=True, slots=True)
class TicketAccess:
    """A ticket a contact may see, and how: as a participant or through a sharing account."""

    ticket: Ticket
    participant: bool
    account: SharingAccount | None = None

    @property
    def shared(self) -> bool:
        return not self.participant


def customer_visible() -> ColumnElement[bool]:
    """The messages a customer's thread shows: no internal notes, no bounces or loops."""
    # Plain comparisons rather than NOT IN (...): a list would be expanded into the SQL at
    # every execution, while these compile once into the statement cache.
    return and_(Message.internal.is_(False), *(Message.classification != str(kind) for kind in HIDDEN_KINDS))


def ticket_for_contact(session: Session, contact: Contact, public_id: str) -> TicketAccess | None:
    """The ticket with `public_id` if `contact` may see it, else None."""
    ticket = session.scalar(select(Ticket).where(Ticket.public_id == public_id))
    if ticket is None:
        return None
    if is_participant(session, ticket.id, contact.id):
        return TicketAccess(ticket, participant=True)
    if ticket.requester_id is None:  # the sender was unclear: no colleague's ticket to share
        return None
    account = account_sharing_with(session, contact, ticket.requester_id)
    return None if account is None else TicketAccess(ticket, participant=False, account=account)


def customer_thread(session: Session, ticket: Ticket) -> list[Message]:
    """The ticket's messages a customer sees, oldest first, with their attachments loaded.

    The HTML as sent is not loaded (readers see the sanitized copy; it can be megabytes).
    """
    rows = session.scalars(
        select(Message)
        .where(Message.ticket_id == ticket.id, customer_visible())
        .options(selectinload(Message.attachments), defer(Message.body_html, raiseload=True))
        .order_by(Message.created_at, Message.id)
    )
    return list(rows.all())


def visible_attachment(session: Session, ticket: Ticket, public_id: str) -> Attachment | None:
    """The attachment with `public_id` when it belongs to a message of `ticket`'s customer thread."""
    return session.scalar(
        select(Attachment)
        .join(Message, Message.id == Attachment.message_id)
        .where(Attachment.public_id == public_id, Message.ticket_id == ticket.id, customer_visible())
    )


@dataclass(frozen=True, slots=True)
class AgentFile:
    """A file an agent may fetch, and the ticket it is on."""

    filename: str
    content_type: str
    data: bytes
    ticket_id: int
    attachment_public_id: str


def file_for_agent(
    connection: Connection, agent_id: int, attachment_public_id: str, ticket_public_id: str | None = None
) -> AgentFile | None:
    """The attachment when the agent is active and works its ticket's mailbox (and it is on that ticket)."""
    query = (
        select(Attachment.filename, Attachment.content_type, Attachment.data, Ticket.id, Attachment.public_id)
        .join(Message, Message.id == Attachment.message_id)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .join(MailboxMembership, MailboxMembership.mailbox_id == Ticket.mailbox_id)
        .join(Agent, Agent.id == MailboxMembership.agent_id)
        .where(Attachment.public_id == attachment_public_id, Agent.id == agent_id, Agent.active.is_(True))
    )
    if ticket_public_id is not None:
        query = query.where(Ticket.public_id == ticket_public_id)
    row = connection.execute(query).first()
    return None if row is None else AgentFile(*row)


def mark_read(session: Session, contact: Contact, ticket: Ticket) -> None:
    """Remember that `contact` has seen `ticket` as it is now."""
    now = utcnow()
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = module.insert(TicketRead).values(contact_id=contact.id, ticket_id=ticket.id, read_at=now)
    session.execute(
        statement.on_conflict_do_update(index_elements=["contact_id", "ticket_id"], set_={"read_at": now})
    )
