"""Agents answering by email: mail on a signed agent address becomes the agent's reply.

A notification's Reply-To is `support+a.<ticket>.<agent>.<mac>@domain`. Mail arriving
there is the agent's only when the address verifies (the router already checked the MAC),
the agent is active and works the ticket's mailbox, the From address is the agent's and
the envelope sender is in the agent's domain. Anything else is not the agent's: the
processor then handles it as mail to the plain mailbox address, so a forged agent From
never makes anyone an agent. What the customer receives is the agent's new text only
(`agent_text.py`: above the quote, or the whole body without our notification). Command
lines at the top (`#internal`, `#status …`, `#assign …`: gateway/tickets/commands.py)
are carried out with it; a command that is not understood or cannot be carried out, or
a reply with nothing to send, becomes an internal note, nothing goes to the customer,
and the agent is mailed what went wrong (`AgentAdvised`). An agent's automatic mail (an
out-of-office answer to a notification) becomes a note only. Addresses the agent puts in
Cc join the ticket.
Files the agent attached go to the customer with the reply when they pass the limits
every door uses (`gateway.tickets.files`; otherwise the reply becomes a note and keeps
them); inline pictures that are already on the ticket (a client re-attaching the
customer's images it quotes from the notification) are left out.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.directory.agents import works_mailbox
from gateway.inbound.agent_text import agent_text
from gateway.inbound.conversations import ThreadRule
from gateway.inbound.routing import Route
from gateway.mail.classify import Classification
from gateway.mail.parse import ParsedEmail
from gateway.models import Agent, Attachment, Mailbox, Message, Ticket
from gateway.settings import Settings
from gateway.tickets.events import AgentAdvised, EventBus
from gateway.tickets.files import FileRejected, TeamFile, check_files, store_files, team_file
from gateway.tickets.notes import add_note
from gateway.tickets.replies import ReplyError, apply_reply, read_reply
from gateway.tickets.service import add_cc_participants

log = logging.getLogger(__name__)

def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


def sent_by(agent: Agent, mail: ParsedEmail, envelope_sender: str) -> bool:
    """From is the agent's address and the envelope sender is in the agent's domain
    (an address taken from Sender or Reply-To never makes mail an agent's)."""
    from_address = mail.sender.email if mail.sender and not mail.sender_unclear else ""
    same_domain = bool(envelope_sender) and domain_of(envelope_sender) == domain_of(agent.email)
    return from_address == agent.email and same_domain


def agent_files(session: Session, ticket: Ticket, mail: ParsedEmail) -> tuple[TeamFile, ...]:
    """The agent's attachments, without inline pictures the ticket already has."""
    if not mail.attachments:
        return ()
    on_ticket = (
        select(Attachment.sha256)
        .join(Message, Message.id == Attachment.message_id)
        .where(Message.ticket_id == ticket.id, Attachment.sha256.in_([a.sha256 for a in mail.attachments]))
    )
    known = set(session.scalars(on_ticket))
    return tuple(
        team_file(a.filename, a.data, a.content_id, a.inline)
        for a in mail.attachments
        if not (a.inline and a.sha256 in known)
    )


def deliver_agent_mail(
    session: Session,
    settings: Settings,
    events: EventBus,
    inbound_id: int,
    envelope_sender: str,
    mail: ParsedEmail,
    verdict: Classification,
    route: Route,
    dedupe_key: str,
) -> Message | None:
    """Store mail from a signed agent address as the agent's action, or None when not theirs."""
    reply = route.reply
    if reply is None or reply.agent_id is None:
        return None
    agent = session.get(Agent, reply.agent_id)
    ticket = session.scalar(
        select(Ticket).where(Ticket.public_id == reply.ticket_public_id, Ticket.mailbox_id == route.mailbox_id)
    )
    if (
        agent is None
        or ticket is None
        or not works_mailbox(session, agent, ticket.mailbox_id)
        or not sent_by(agent, mail, envelope_sender)
    ):
        log.warning(
            "inbound email %d came to an agent reply address but not from that agent; "
            "handling it as mail to the mailbox", inbound_id,
        )
        return None
    origin: dict[str, Any] = {
        "thread_rule": ThreadRule.REPLY_ADDRESS,
        "dedupe_key": dedupe_key,
        "rfc_message_id": mail.message_id,
        "inbound_email_id": inbound_id,
    }
    text = agent_text(session, ticket.mailbox_id, mail)
    if not verdict.answerable:
        note = f"Automatic mail from {agent.email} ({verdict.kind}); nothing was sent to the customer.\n\n{text}"
        return add_note(session, ticket, note.strip(), agent=agent, **origin)
    files = agent_files(session, ticket, mail)
    try:
        check_files(files, settings, len(text))
        said = replace(read_reply(text), files=files)
        stored = apply_reply(session, events, ticket, agent, said, **origin)
    except (ReplyError, FileRejected) as error:
        problem = f"Not sent to the customer: {str(error).rstrip('.')}."
        mailbox = session.get_one(Mailbox, ticket.mailbox_id)
        events.publish(session, AgentAdvised(mailbox, ticket, agent, problem, text))
        note = add_note(session, ticket, f"{problem}\n\n{text}".strip(), agent=agent, **origin)
        store_files(session, note.id, files)
        return note
    add_cc_participants(session, ticket, (a.email for a in mail.cc))
    return stored
