"""What an agent does to a ticket: reply to the customer, add an internal note, run commands.

Emailed replies (gateway/inbound/agent_replies.py), the agent API and `wicket reply` all call these
functions, so a reply is stored, mailed and threaded the same way whichever door it came
through. A reply is stored as an outgoing message and published as `AgentReplied`; the
outbound subscriber (gateway/outbound/notify.py) mails it to every customer on the ticket, each
copy with its own fresh magic link. Files the agent attached are stored on the reply (the
doors check them first with `gateway.tickets.files.check_files`) and go out with it.
Commands (`#status`, `#assign`, `#cc`, …) are read and carried out by
gateway/tickets/commands.py; `#cc addr` adds participants before the reply is published,
so they receive it too, and `#requester addr` names the requester of a ticket that has
none; each change leaves a note saying who changed what. A reply to the customers of a
ticket without a requester is refused (gateway/tickets/requester.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from gateway.models import Agent, AuthorType, Mailbox, Message, Ticket, TicketStatus, new_public_id, utcnow
from gateway.tickets.commands import AssignError, Commands, apply_commands, find_assignee, read_commands, set_owner
from gateway.tickets.events import AgentReplied, EventBus
from gateway.tickets.files import TeamFile, store_files
from gateway.tickets.notes import add_note
from gateway.tickets.requester import RequesterError, check_requester_address, needs_requester, set_requester
from gateway.tickets.service import add_cc_participants
from gateway.tickets.status import set_status


class ReplyError(ValueError):
    """An agent's instruction that cannot be carried out as given."""


@dataclass(frozen=True, slots=True)
class AgentReply:
    """What an agent wrote: the text, the commands above it (gateway/tickets/commands.py), files."""

    text: str
    commands: Commands = field(default_factory=Commands)
    files: tuple[TeamFile, ...] = ()

    @property
    def internal(self) -> bool:
        return self.commands.internal


def read_reply(text: str) -> AgentReply:
    """An agent's text as commands and the words below them."""
    commands, body = read_commands(text)
    return AgentReply(body, commands)


def parse_status(value: str) -> TicketStatus:
    try:
        return TicketStatus(value.strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in TicketStatus)
        raise ReplyError(f"unknown status {value!r} (use {choices})") from None


def _check(session: Session, ticket: Ticket, agent: Agent, reply: AgentReply) -> None:
    """ReplyError unless every command can be carried out and the reply does something."""
    commands = reply.commands
    if commands.problems:
        raise ReplyError("not understood: " + "; ".join(commands.problems))
    if commands.assign is not None:
        try:
            find_assignee(session, ticket, agent, commands.assign)
        except AssignError as error:
            raise ReplyError(str(error)) from None
    if commands.requester is not None:
        try:
            check_requester_address(session, ticket, commands.requester)
        except RequesterError as error:
            raise ReplyError(f"'#requester': {error}") from None
    if not reply.text.strip() and not commands.changes_ticket:
        raise ReplyError("nothing to do: the reply has no text and changes nothing")
    # Nobody could receive it: the ticket's mail named no usable sender (gateway/tickets/requester.py).
    unanswerable = needs_requester(ticket)
    if reply.text.strip() and not commands.internal and commands.requester is None and unanswerable:
        raise ReplyError(unanswerable)


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
    """The text as a reply or an internal note, then the commands; returns the first stored.

    Nothing is changed when a command was not understood or names nobody, or when there is
    neither text nor a change: ReplyError says why. `thread_rule` names the door
    (`reply_address`, `api`, `cli`); `origin` (`dedupe_key`, `rfc_message_id`,
    `inbound_email_id`) describes the email it came in, if any, and goes on the first
    message stored. The first agent to answer the customers becomes the ticket's owner
    unless it has one.
    """
    _check(session, ticket, agent, reply)
    commands, text = reply.commands, reply.text.strip()
    stored: Message | None = None
    resolves = commands.status is TicketStatus.RESOLVED and ticket.status is not TicketStatus.RESOLVED
    named: Message | None = None
    if commands.requester is not None:  # first: the reply below goes to the requester
        # The email's origin goes on the first message stored: this note when nothing else is.
        alone = not text and not replace(commands, requester=None).changes_ticket
        named = set_requester(session, events, ticket, commands.requester, agent=agent, thread_rule=thread_rule,
                              **(origin if alone else {}))  # fmt: skip
    if commands.cc:
        add_cc_participants(session, ticket, commands.cc)
    if text and commands.internal:
        stored = _internal_note(session, ticket, agent, text, thread_rule=thread_rule, **origin)
        store_files(session, stored.id, reply.files)
    elif text:
        stored = _reply_to_customers(
            session, events, ticket, agent, text, reply.files, resolves=resolves, thread_rule=thread_rule, **origin
        )
    told = stored is not None and not commands.internal  # the reply's own mail says "resolved"
    first = {} if stored else origin
    notes = apply_commands(session, events, ticket, agent, commands, announce=not told, thread_rule=thread_rule, **first)
    stored = stored or next(iter(notes), None)
    if commands.cc:
        added = f"{agent.name or agent.email} added {', '.join(commands.cc)} to the ticket."
        note = add_note(session, ticket, added, agent=agent, thread_rule=thread_rule, **({} if stored else origin))
        stored = stored or note
    stored = stored or named
    if stored is None:
        raise ReplyError("nothing to do: the ticket already is as the commands ask")
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
    if ticket.owner_agent_id is None:
        set_owner(session, events, ticket, agent, agent=agent, reason="first_reply")
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
    """Set the status; returns the note recording the change, or None when nothing changed.

    Resolving also tells the customers (`TicketResolved`) unless `announce` is false: the
    caller's own mail (an agent reply that resolves) already says so.
    """
    return set_status(session, events, ticket, status, agent=agent, announce=announce, **origin)
