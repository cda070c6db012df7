"""What an agent does to a ticket: reply to the customer, add an internal note, change status.

Emailed replies (gateway/inbound/agent_replies.py), the agent API and `wicket reply` all call these
functions, so a reply is stored, mailed and threaded the same way whichever door it came
through. A reply is stored as an outgoing message and published as `AgentReplied`; the
outbound subscriber (gateway/outbound/notify.py) mails it to every customer on the ticket, each
copy with its own fresh magic link. A status change leaves a note saying who changed what.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gateway.models import Agent, AuthorType, Mailbox, Message, Ticket, TicketStatus, new_public_id, utcnow
from gateway.tickets.events import AgentReplied, EventBus, StatusChanged
from gateway.tickets.notes import add_note


class ReplyError(ValueError):
    """An agent's instruction that cannot be carried out as given."""


@dataclass(frozen=True, slots=True)
class AgentReply:
    """What an agent wrote: the text, whether it is an internal note, a new status."""

    text: str
    internal: bool = False
    status: TicketStatus | None = None


def parse_status(value: str) -> TicketStatus:
    try:
        return TicketStatus(value.strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in TicketStatus)
        raise ReplyError(f"unknown status {value!r} (use {choices})") from None


def read_commands(text: str) -> AgentReply:
    """Command lines at the top (`#internal`, `#status pending`) and the text below them."""
    lines = text.strip().splitlines()
    internal, status = False, None
    while lines:
        words = lines[0].lower().split()
        if words == ["#internal"]:
            internal = True
        elif words[:1] == ["#status"]:
            if len(words) != 2:
                raise ReplyError("write a status change as '#status pending', '#status resolved' or '#status closed'")
            status = parse_status(words[1])
        elif words:
            break
        lines.pop(0)
    return AgentReply("\n".join(lines).strip(), internal, status)


def apply_reply(
    session: Session,
    events: EventBus,
    ticket: Ticket,
    agent: Agent,
    reply: AgentReply,
    *,
    thread_rule: str,
    **origin: Any,
) -> Message:
    """The text as a reply or an internal note, then the status change; returns the first stored.

    `thread_rule` names the door (`reply_address`, `api`, `cli`); `origin` (`dedupe_key`,
    `rfc_message_id`, `inbound_email_id`) describes the email it came in, if any, and goes
    on the first message stored.
    """
    text = reply.text.strip()
    stored: Message | None = None
    if text and reply.internal:
        stored = _internal_note(session, ticket, agent, text, thread_rule=thread_rule, **origin)
    elif text:
        stored = _reply_to_customers(session, events, ticket, agent, text, thread_rule=thread_rule, **origin)
    if reply.status is not None:
        first = {} if stored else origin
        note = change_status(session, events, ticket, agent, reply.status, thread_rule=thread_rule, **first)
        stored = stored or note
    if stored is None:
        raise ReplyError("nothing to do: the reply has no text and changes nothing")
    return stored


def _reply_to_customers(
    session: Session,
    events: EventBus,
    ticket: Ticket,
    agent: Agent,
    text: str,
    *,
    thread_rule: str,
    dedupe_key: str | None = None,
    rfc_message_id: str | None = None,
    inbound_email_id: int | None = None,
) -> Message:
    """Store the agent's reply and publish it; outbound mail takes it to the customers."""
    mailbox = session.get_one(Mailbox, ticket.mailbox_id)
    message = Message(
        ticket_id=ticket.id,
        mailbox_id=mailbox.id,
        dedupe_key=dedupe_key or f"reply:{new_public_id()}",
        inbound_email_id=inbound_email_id,
        direction="out",
        author_type=AuthorType.AGENT,
        author_agent_id=agent.id,
        thread_rule=thread_rule,
        rfc_message_id=rfc_message_id,
        subject=ticket.subject,
        from_email=agent.email,
        from_name=agent.name,
        body_text=text,
        reply_text=text,
        created_at=utcnow(),
    )
    session.add(message)
    ticket.last_activity_at = message.created_at
    session.flush()
    events.publish(session, AgentReplied(mailbox, ticket, message, agent))
    return message


def _internal_note(session: Session, ticket: Ticket, agent: Agent, text: str, **origin: Any) -> Message:
    note = add_note(session, ticket, text, agent=agent, **origin)
    ticket.last_activity_at = note.created_at
    return note


def change_status(
    session: Session, events: EventBus, ticket: Ticket, agent: Agent, status: TicketStatus, **origin: Any
) -> Message | None:
    """Set the status and publish `StatusChanged`; returns the note recording the change, or None when nothing changed."""
    if ticket.status == status:
        return None
    previous, ticket.status = TicketStatus(ticket.status), status
    change = f"{agent.name or agent.email} changed the status from {previous} to {status}."
    note = add_note(session, ticket, change, agent=agent, **origin)
    events.publish(session, StatusChanged(ticket, previous, agent))
    return note
