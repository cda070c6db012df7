"""Internal notes: messages on a ticket that only the team sees.

Agents write them (`#internal`, the API), and Wicket writes them itself when something
the team must know happened to the ticket: a status change, an email that could not be
delivered. Notes are never mailed to customers.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.models import Agent, AuthorType, Message, Ticket, new_public_id, utcnow


def add_note(
    session: Session,
    ticket: Ticket,
    text: str,
    *,
    agent: Agent | None = None,
    thread_rule: str = "note",
    dedupe_key: str | None = None,
    rfc_message_id: str | None = None,
    inbound_email_id: int | None = None,
) -> Message:
    """Store an internal note by `agent`, or by Wicket itself when no agent is given."""
    note = Message(
        ticket_id=ticket.id,
        mailbox_id=ticket.mailbox_id,
        dedupe_key=dedupe_key or f"note:{new_public_id()}",
        inbound_email_id=inbound_email_id,
        direction="internal",
        author_type=AuthorType.AGENT if agent else AuthorType.SYSTEM,
        author_agent_id=agent.id if agent else None,
        internal=True,
        thread_rule=thread_rule,
        rfc_message_id=rfc_message_id,
        from_email=agent.email if agent else "",
        from_name=agent.name if agent else "Wicket",
        body_text=text,
        reply_text=text,
        created_at=utcnow(),
    )
    session.add(note)
    session.flush()
    return note
