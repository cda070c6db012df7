"""A ticket's requester when its mail named nobody usable: the flag, the guard, and naming one.

Mail whose From, Sender, Reply-To and envelope sender give no valid address still opens a
ticket the team sees, but no contact: the ticket has no requester, is flagged
`sender_unclear` and keeps its From header escaped in `unclear_from` (docs/architecture.md,
"Mail with no usable sender"). Nobody can be mailed about it, so a reply to the customer is
refused (`needs_requester`) until an agent names the requester with `set_requester`, which
every door calls: `wicket tickets requester`, the agent API and the `#requester` command.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.directory.contacts import contact_for
from gateway.mail.addresses import is_valid_address
from gateway.models import Agent, Contact, Mailbox, Message, ParticipantRole, Ticket
from gateway.tickets.events import EventBus
from gateway.tickets.notes import add_note
from gateway.tickets.reply_address import split_plus
from gateway.tickets.service import add_participant
from gateway.tickets.status import record_change

SENDER_UNCLEAR_FLAG = "sender_unclear"  # the flag on a ticket whose mail named no usable sender


class RequesterError(ValueError):
    """The requester cannot be set as asked."""


def needs_requester(ticket: Ticket) -> str | None:
    """Why nobody can be mailed on `ticket`, or None when it has a requester."""
    if ticket.requester_id is not None:
        return None
    return (
        f"ticket #{ticket.ref} has no requester: its mail named no usable sender address, so nobody can be "
        f"mailed. Name the requester first (`wicket tickets requester {ticket.ref} ADDRESS`, the API's "
        "POST /api/v1/tickets/{id}/requester, or a '#requester ADDRESS' line above the reply)."
    )


def check_requester_address(session: Session, ticket: Ticket, address: str) -> str:
    """The address, lower case, when it may become the ticket's requester; RequesterError why not."""
    email = address.strip().lower()
    if ticket.requester_id is not None:
        current = session.get_one(Contact, ticket.requester_id)
        raise RequesterError(f"ticket #{ticket.ref} already has a requester ({current.email})")
    if not is_valid_address(email):
        raise RequesterError(f"{address.strip()[:100]!r} is not a valid email address")
    mailbox = session.get_one(Mailbox, ticket.mailbox_id)
    if split_plus(email)[0] == mailbox.address.lower():
        raise RequesterError(f"{email} is the mailbox's own address")
    if session.scalar(select(Agent.id).where(Agent.email == email)) is not None:
        raise RequesterError(f"{email} is a member of the team, not a customer")
    return email


def set_requester(
    session: Session,
    events: EventBus,
    ticket: Ticket,
    address: str,
    *,
    agent: Agent | None,
    name: str = "",
    **origin: Any,
) -> Message:
    """Make `address` (email-validator's syntax check, no DNS) the requester of a ticket that has none.

    The contact is found or created, takes part in the ticket as its requester, and the
    `sender_unclear` flag goes; an audit row, a `TicketChanged` event and a note record who
    did it (the note is returned; `origin` is the email the change came in, if any). From
    then on replies reach the requester like on any ticket.
    """
    email = check_requester_address(session, ticket, address)
    contact = contact_for(session, email, name.strip())
    ticket.requester_id = contact.id
    if ticket.flag == SENDER_UNCLEAR_FLAG:
        ticket.flag = None
    add_participant(session, ticket, contact, ParticipantRole.REQUESTER)
    record_change(session, events, ticket, "requester", "", email, agent=agent)
    who = (agent.name or agent.email) if agent else "The operator"
    text = f"{who} named {email} as the requester (the mail named no usable sender)."
    return add_note(session, ticket, text, agent=agent, **origin)
