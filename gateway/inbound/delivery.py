"""One claimed message into one mailbox: duplicate check, sender, thread, ticket, stored message.

`deliver_to_mailbox` is the processor's step for each mailbox a message was addressed to,
inside the message's savepoint: a message already stored there is a duplicate; mail on a
signed agent address that really is the agent's becomes their reply
(gateway/inbound/agent_replies.py); anything else is threaded (gateway/inbound/conversations.py) or opens
a ticket, is stored with its attachments, and publishes `TicketCreated` or `MessageAdded`
for the subscribers that mail people. A reply whose parent is still being processed by
another worker raises `WaitForEarlier` instead of opening a second ticket. Statements that
need no ORM object are Core, built once and run on the session's connection (see
gateway/tickets/service.py for why).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from gateway.directory.contacts import contact_for
from gateway.inbound.agent_replies import deliver_agent_mail
from gateway.inbound.conversations import ThreadRule, find_conversation
from gateway.inbound.routing import Route
from gateway.mail.classify import Classification, MailKind
from gateway.mail.parse import ParsedEmail
from gateway.models import (
    Agent,
    Attachment,
    AuthorType,
    InboundEmail,
    InboundStatus,
    Mailbox,
    Message,
    Ticket,
    utcnow,
)
from gateway.settings import Settings
from gateway.storage.database import held
from gateway.storage.statements import Prepared
from gateway.tickets.events import EventBus, MessageAdded, TicketCreated
from gateway.tickets.notes import add_note
from gateway.tickets.service import (
    add_cc_participants,
    add_participant,
    open_ticket,
    reopen_on_customer_reply,
)

UNKNOWN_SENDER = "unknown-sender@invalid"

_MESSAGES = Message.__table__
_INSERT_MESSAGE = Prepared(insert(_MESSAGES).returning(_MESSAGES.c.id, _MESSAGES.c.public_id))
_MESSAGE_COLUMNS = tuple(c.key for c in _MESSAGES.columns if c.key not in ("id", "public_id"))
# Statements built once: building and cache-keying an expression costs more than running it.
_DUPLICATE = Prepared(
    select(Message.id, Message.ticket_id).where(
        Message.mailbox_id == bindparam("mailbox_id"), Message.dedupe_key == bindparam("key")
    )
)
_EARLIER_UNPROCESSED = (
    select(InboundEmail.id)
    .where(
        InboundEmail.message_id.in_(bindparam("ids", expanding=True)),
        InboundEmail.id < bindparam("inbound_id"),
        InboundEmail.status.in_([InboundStatus.PENDING, InboundStatus.PROCESSING]),
    )
    .limit(1)
)
_CC_RULES = frozenset({ThreadRule.REPLY_ADDRESS, ThreadRule.HEADERS})
_TEAM_MEMBER = select(Agent.id).where(Agent.email == bindparam("email"), Agent.active.is_(True))


def dedupe_key(message_id: str | None, raw_sha256: str) -> str:
    """Same Message-ID, or the same bytes when there is none, means the same message."""
    if message_id:
        return "mid:" + hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
    return "raw:" + raw_sha256


@dataclass(frozen=True, slots=True)
class Claimed:
    """An inbound row the processor claimed, as plain values (it writes the row back with Core UPDATEs)."""

    id: int
    raw: bytes
    mail_from: str
    rcpt_tos: list[str]
    sha256: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """What processing one row did for one mailbox."""

    ticket_id: int | None
    message_id: int | None
    duplicate: bool
    rule: ThreadRule | None


class WaitForEarlier(Exception):
    """The message continues one that is not processed yet; try again shortly."""


def deliver_to_mailbox(
    session: Session,
    settings: Settings,
    events: EventBus,
    inbound: Claimed,
    mail: ParsedEmail,
    verdict: Classification,
    route: Route,
) -> Delivery:
    """Store one message on its ticket in one mailbox (opening the ticket when it is new)."""
    key = dedupe_key(mail.message_id, inbound.sha256)
    for message_id, ticket_id in _DUPLICATE.rows(session.connection(), {"mailbox_id": route.mailbox_id, "key": key}):
        return Delivery(ticket_id, message_id, duplicate=True, rule=None)

    # Mail on a signed agent address is the agent's reply when it is really theirs;
    # otherwise it continues below as mail to the plain mailbox address.
    if route.reply is not None and route.reply.kind == "a":
        action = deliver_agent_mail(session, events, inbound.id, inbound.mail_from, mail, verdict, route, key)
        if action is not None:
            return Delivery(action.ticket_id, action.id, duplicate=False, rule=ThreadRule.REPLY_ADDRESS)
        route = Route(route.mailbox_id, route.mailbox_address, None)

    mailbox_id = route.mailbox_id
    mailbox = held(session, "mailbox", mailbox_id, lambda: session.get_one(Mailbox, mailbox_id))
    # Column sizes bound what junk headers can put here (PostgreSQL refuses longer values).
    sender_email = ((mail.sender.email if mail.sender else "") or inbound.mail_from or UNKNOWN_SENDER)[:320]
    sender_name = (mail.sender.name if mail.sender else "")[:200]
    sender = contact_for(session, sender_email, sender_name)
    conversation = find_conversation(session, mailbox, settings.keys, mail, route.reply, sender.id)
    ticket, rule = conversation.ticket, conversation.rule
    if ticket is None:
        _wait_for_earlier(session, inbound, mail)

    created = ticket is None
    reopened = False
    if ticket is None:
        requester = sender
        subject = mail.subject
        if mail.forwarded is not None and _is_team_member(session, sender_email):
            original = mail.forwarded.sender
            requester = contact_for(session, original.email or sender_email, original.name)
            subject = mail.forwarded.subject or subject
        flag = None if verdict.kind is MailKind.NORMAL else str(verdict.kind)
        ticket = open_ticket(session, mailbox, requester, subject, flag)
        if requester.id != sender.id:
            add_participant(session, ticket, sender)
    elif verdict.answerable:
        # Replying never makes anyone a participant; the requester may bring people in by
        # Cc on mail that threaded through something only recipients of our mail hold.
        if rule in _CC_RULES and ticket.requester_id == sender.id:
            add_cc_participants(session, ticket, (a.email for a in mail.cc))
        reopened = reopen_on_customer_reply(ticket)

    # Core inserts: the ORM's unit of work cost more than everything else in this step.
    message = Message(
        ticket_id=ticket.id,
        mailbox_id=mailbox.id,
        dedupe_key=key,
        inbound_email_id=inbound.id,
        direction="in",
        author_type=AuthorType.CUSTOMER,
        author_contact_id=sender.id,
        author_agent_id=None,
        internal=False,
        classification=str(verdict.kind),
        thread_rule=str(rule),
        rfc_message_id=mail.message_id,
        in_reply_to=list(mail.in_reply_to),
        references=list(mail.references),
        subject=mail.subject,
        from_email=sender_email,
        from_name=sender_name,
        to=[a.email for a in mail.to],
        cc=[a.email for a in mail.cc],
        body_text=mail.text,
        body_html=mail.html,
        display=mail.display,
        reply_text=mail.reply_text,
        quoted_text=mail.quoted_text,
        defects=list(mail.defects),
        sent_at=mail.date,
        created_at=ticket.created_at if created else utcnow(),  # one moment: no second ticket UPDATE
    )
    rows = session.connection()
    [(message.id, message.public_id)] = _INSERT_MESSAGE.rows(rows, _column_values(message))
    if mail.attachments:
        rows.execute(
            insert(Attachment.__table__),
            [
                {
                    "message_id": message.id,
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "size": a.size,
                    "sha256": a.sha256,
                    "content_id": a.content_id,
                    "inline": a.inline,
                    "data": a.data,
                }
                for a in mail.attachments
            ],
        )
    if not created:  # a new ticket's row already says so: nothing for the ORM to flush
        ticket.last_activity_at = message.created_at
    for mentioned in conversation.mentions:
        add_note(session, ticket, _mention_note(mentioned), thread_rule="mention")

    if created:
        events.publish(session, TicketCreated(mailbox, ticket, message, verdict, mail))
    else:
        events.publish(
            session, MessageAdded(mailbox, ticket, message, verdict, mail, reopened)
        )
    return Delivery(ticket.id, message.id, duplicate=False, rule=rule)

def _mention_note(mentioned: Ticket) -> str:
    return (
        f"This message mentions #{mentioned.ref} ({mentioned.subject}). Its sender does not take "
        "part in that ticket, so it was not added there and gained no access to it."
    )


def _wait_for_earlier(session: Session, inbound: Claimed, mail: ParsedEmail) -> None:
    """Raise WaitForEarlier when a message this one replies to is still being processed.

    With several workers a reply can be claimed while its parent is still in another
    worker's transaction; threading it now would open a second ticket.
    """
    ids = [i for i in (*mail.in_reply_to, *mail.references) if i][:100]
    if not ids:
        return
    earlier = session.connection().scalar(_EARLIER_UNPROCESSED, {"ids": ids, "inbound_id": inbound.id})
    if earlier is not None:
        raise WaitForEarlier(earlier)


def _is_team_member(session: Session, email: str) -> bool:
    return session.connection().scalar(_TEAM_MEMBER, {"email": email.lower()}) is not None


def _column_values(message: Message) -> dict[str, object]:
    return {key: getattr(message, key) for key in _MESSAGE_COLUMNS}
