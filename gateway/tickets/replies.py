"""What an agent does to a ticket: reply to the customer, add an internal note, change status.

Emailed replies (gateway/inbound/agent_replies.py), the agent API and `wicket reply` all call these
functions, so a reply is stored, mailed and threaded the same way whichever door it came
through. A reply is stored as an outgoing message and published as `AgentReplied`; the
outbound subscriber (gateway/outbound/notify.py) mails it to every customer on the ticket, each
copy with its own fresh magic link. Files the agent attached are stored on the reply (the
doors check them first with `gateway.tickets.files.check_files`) and go out with it.
`#cc addr` lines add participants before the reply is published, so they receive it too.
A status change leaves a note saying who changed what.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Any

from sqlalchemy.orm import Session

from gateway.models import Agent, AuthorType, Mailbox, Message, Ticket, TicketStatus, new_public_id, utcnow
from gateway.tickets.events import AgentReplied, EventBus, StatusChanged, TicketResolved
from gateway.tickets.files import TeamFile, store_files
from gateway.tickets.notes import add_note
from gateway.tickets.service import add_cc_participants


class ReplyError(ValueError):
    """An agent's instruction that cannot be carried out as given."""


@dataclass(frozen=True, slots=True)
class AgentReply:
    """What an agent wrote: the text, whether it is an internal note, a new status, files, Cc."""

    text: str
    internal: bool = False
    status: TicketStatus | None = None
    files: tuple[TeamFile, ...] = ()
    cc: tuple[str, ...] = ()


def parse_status(value: str) -> TicketStatus:
    try:
        return TicketStatus(value.strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in TicketStatus)
        raise ReplyError(f"unknown status {value!r} (use {choices})") from None


def cc_command(words: list[str]) -> list[str] | None:
    """The addresses of a `#cc addr, Name <addr>…` line, or None for other lines."""
    if words[:1] != ["#cc"]:
        return None
    rest = " ".join(words[1:]).replace(";", ",")
    if "<" in rest:  # Name <address>, as mail clients write them
        addresses = [address for _, address in getaddresses([rest]) if address]
    else:
        addresses = [a for a in re.split(r"[,\s]+", rest) if a]
    if not addresses or not all(a.count("@") == 1 and a.partition("@")[0] and "." in a for a in addresses):
        raise ReplyError("write the people to add as '#cc name@example.com' (one or more addresses)")
    return addresses


def read_commands(text: str) -> AgentReply:
    """Command lines at the top (`#internal`, `#status pending`, `#cc addr`) and the text below them."""
    lines = text.strip().splitlines()
    internal, status, cc = False, None, []
    while lines:
        words = lines[0].lower().split()
        if words == ["#internal"]:
            internal = True
        elif (addresses := cc_command(words)) is not None:
            cc += addresses
        elif words[:1] == ["#status"]:
            if len(words) != 2:
                raise ReplyError("write a status change as '#status pending', '#status resolved' or '#status closed'")
            status = parse_status(words[1])
        elif words:
            break
        lines.pop(0)
    return AgentReply("\n".join(lines).strip(), internal, status, cc=tuple(cc))


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
    resolves = reply.status is TicketStatus.RESOLVED and ticket.status is not TicketStatus.RESOLVED
    if reply.cc:
        add_cc_participants(session, ticket, reply.cc)
    if text and reply.internal:
        stored = _internal_note(session, ticket, agent, text, thread_rule=thread_rule, **origin)
        store_files(session, stored.id, reply.files)
    elif text:
        stored = _reply_to_customers(
            session, events, ticket, agent, text, reply.files, resolves=resolves, thread_rule=thread_rule, **origin
        )
    if reply.status is not None:
        first = {} if stored else origin
        told = stored is not None and not reply.internal  # the reply's own mail says "resolved"
        note = change_status(
            session, events, ticket, agent, reply.status, announce=not told, thread_rule=thread_rule, **first
        )
        stored = stored or note
    if reply.cc:
        first = {} if stored else origin
        added = f"{agent.name or agent.email} added {', '.join(reply.cc)} to the ticket."
        note = add_note(session, ticket, added, agent=agent, thread_rule=thread_rule, **first)
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
    files: tuple[TeamFile, ...],
    *,
    resolves: bool = False,
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
    store_files(session, message.id, files)
    events.publish(session, AgentReplied(mailbox, ticket, message, agent, resolves))
    return message


def _internal_note(session: Session, ticket: Ticket, agent: Agent, text: str, **origin: Any) -> Message:
    note = add_note(session, ticket, text, agent=agent, **origin)
    ticket.last_activity_at = note.created_at
    return note


def change_status(
    session: Session,
    events: EventBus,
    ticket: Ticket,
    agent: Agent,
    status: TicketStatus,
    *,
    announce: bool = True,
    **origin: Any,
) -> Message | None:
    """Set the status and publish `StatusChanged`; returns the note recording the change, or None when nothing changed.

    Resolving also publishes `TicketResolved`, so the customers hear of it, unless `announce`
    is false: the caller's own mail (an agent reply that resolves) already tells them.
    """
    if ticket.status == status:
        return None
    previous, ticket.status = TicketStatus(ticket.status), status
    if status is TicketStatus.RESOLVED:
        ticket.resolved_at = utcnow()  # names this resolution: it is rated once (gateway/tickets/satisfaction.py)
    change = f"{agent.name or agent.email} changed the status from {previous} to {status}."
    note = add_note(session, ticket, change, agent=agent, **origin)
    events.publish(session, StatusChanged(ticket, previous, agent))
    if announce and status is TicketStatus.RESOLVED:
        events.publish(session, TicketResolved(session.get_one(Mailbox, ticket.mailbox_id), ticket, agent))
    return note
