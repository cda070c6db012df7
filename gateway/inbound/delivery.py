"""One claimed message into one mailbox, as a flow of named steps: the entry point of delivery.

`deliver_to_mailbox` is the processor's step for each mailbox a message was addressed to,
inside the message's savepoint (docs/architecture.md, "One email, from the socket to the
page", step 3). It reads top-down as the flow of one message:

1. **duplicate**: a message already stored in this mailbox (same dedupe key) stops here;
2. **agent mail**: mail on a signed agent address that really is the agent's becomes
   their reply (gateway/inbound/agent_replies.py); anything else continues as mail to
   the plain mailbox address;
3. **sender**: who the mail is from and their contact, or no contact when nothing in it
   names a usable address (gateway/inbound/sender.py);
4. **conversation**, 5. **ticket**, 6. **store**: the ticket the message continues or
   opens, and the message stored on it (gateway/inbound/on_ticket.py);
7. **publish**: `TicketCreated` or `MessageAdded`, for the subscribers that mail people.

`publish_received` then tells the webhook subscriber, once per message, when routes push
it to endpoints (docs/architecture.md, "Routes and webhooks").

Every statement that needs no ORM object is Core, built once at import and run on the
session's connection, the hottest ones `Prepared` (gateway/storage/statements.py; see
docs/architecture.md, "Reaching the database"): processing runs them for every message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from gateway.inbound.agent_replies import deliver_agent_mail
from gateway.inbound.conversations import ThreadRule
from gateway.inbound.on_ticket import OnTicket, WaitForEarlier, conversation_of, store, take_to_ticket
from gateway.inbound.routing import Route
from gateway.inbound.sender import find_sender
from gateway.mail.classify import Classification
from gateway.mail.parse import ParsedEmail
from gateway.mail.verdicts import SenderVerdicts
from gateway.models import Mailbox, Message, Ticket
from gateway.settings import Settings
from gateway.storage import statements
from gateway.storage.database import held
from gateway.tickets.events import (
    EventBus,
    Landed,
    MessageAdded,
    MessageReceived,
    Push,
    TicketCreated,
)

__all__ = ["Claimed", "Delivery", "WaitForEarlier", "deliver_to_mailbox", "dedupe_key", "publish_received"]

# Statements built once: building and cache-keying an expression costs more than running it.
_DUPLICATE = statements.prepare(
    "delivery.duplicate",
    select(Message.id, Message.ticket_id).where(
        Message.mailbox_id == bindparam("mailbox_id"), Message.dedupe_key == bindparam("key")
    )
)


def dedupe_key(mail: ParsedEmail, raw_sha256: str) -> str:
    """Same Message-ID and same content, or the same bytes when there is no Message-ID,
    means the same message. The content (subject, body, attachments) is hashed rather than
    the raw bytes because one message delivered twice differs in its trace headers, while
    some senders reuse one Message-ID for different mail."""
    if not mail.message_id:
        return "raw:" + raw_sha256
    digest = hashlib.sha256()
    for piece in (mail.message_id, mail.subject, mail.text, mail.html or "", *(a.sha256 for a in mail.attachments)):
        digest.update(piece.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return "mid:" + digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Claimed:
    """An inbound row the processor claimed, as plain values (it writes the row back with Core UPDATEs)."""

    id: int
    raw: bytes
    mail_from: str
    rcpt_tos: list[str]
    sha256: str
    attempts: int
    send_mail: bool
    peer: str = ""
    helo: str | None = None
    source: str = "smtp"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What processing one row did for one mailbox."""

    ticket_id: int | None
    message_id: int | None
    duplicate: bool
    rule: ThreadRule | None


def deliver_to_mailbox(
    session: Session,
    settings: Settings,
    events: EventBus,
    inbound: Claimed,
    mail: ParsedEmail,
    verdict: Classification,
    route: Route,
    checked: SenderVerdicts | None = None,
) -> Delivery:
    """Store one message on its ticket in one mailbox (opening the ticket when it is new).

    `checked` are the message's sender verdicts (None when it was not checked); mail that
    fails DMARC for its From domain is not trusted to be from its sender (docs/architecture.md,
    "Sender verdicts").
    """
    key = dedupe_key(mail, inbound.sha256)
    duplicate = _duplicate(session, route.mailbox_id, key)
    if duplicate is not None:
        return duplicate

    # Mail on a signed agent address is the agent's reply when it is really theirs;
    # otherwise it continues below as mail to the plain mailbox address.
    if route.reply is not None and route.reply.kind == "a":
        action = deliver_agent_mail(session, settings, events, inbound.id, inbound.mail_from, mail, verdict, route, key)
        if action is not None:
            return Delivery(action.ticket_id, action.id, duplicate=False, rule=ThreadRule.REPLY_ADDRESS)
        route = Route(route.mailbox_id, route.mailbox_address, None)

    mailbox_id = route.mailbox_id
    mailbox = held(session, "mailbox", mailbox_id, lambda: session.get_one(Mailbox, mailbox_id))
    sender = find_sender(session, inbound.mail_from, mail, checked)
    conversation = conversation_of(session, settings, inbound.id, mail, route, mailbox, sender)
    on_ticket = take_to_ticket(session, settings, events, mail, verdict, mailbox, sender, conversation)
    message = store(session, inbound.id, mail, verdict, key, mailbox, sender, conversation, on_ticket)
    _publish(session, events, mail, verdict, mailbox, message, on_ticket)
    return Delivery(on_ticket.ticket.id, message.id, duplicate=False, rule=conversation.rule)


# 1. duplicate
def _duplicate(session: Session, mailbox_id: int, key: str) -> Delivery | None:
    """The earlier delivery of this very message to this mailbox, if there was one."""
    duplicates = statements.rows(_DUPLICATE, session.connection(), {"mailbox_id": mailbox_id, "key": key})
    for message_id, ticket_id in duplicates:
        return Delivery(ticket_id, message_id, duplicate=True, rule=None)
    return None


# 7. publish
def _publish(
    session: Session,
    events: EventBus,
    mail: ParsedEmail,
    verdict: Classification,
    mailbox: Mailbox,
    message: Message,
    on_ticket: OnTicket,
) -> None:
    """Tell the subscribers (gateway/outbound/notify.py) in this transaction; they queue the mail."""
    ticket = on_ticket.ticket
    if on_ticket.created:
        events.publish(session, TicketCreated(mailbox, ticket, message, verdict, mail))
    else:
        events.publish(session, MessageAdded(mailbox, ticket, message, verdict, mail, on_ticket.reopened))


def publish_received(
    session: Session,
    events: EventBus,
    inbound: Claimed,
    mail: ParsedEmail,
    verdict: Classification,
    pushes: list[Push],
    deliveries: list[Delivery],
    verdicts: dict[str, Any] | None,
) -> None:
    """Tell the webhook subscriber that routes push this message, with the tickets it went to.

    `verdicts` are the message's sender verdicts in their stored (JSON) shape, None when unchecked.
    """
    landed = []
    for delivery in deliveries:
        if delivery.ticket_id is not None and delivery.message_id is not None:
            ticket = session.get_one(Ticket, delivery.ticket_id)
            mailbox = held(session, "mailbox", ticket.mailbox_id, lambda: session.get_one(Mailbox, ticket.mailbox_id))
            landed.append(Landed(mailbox, ticket, delivery.message_id))
    received = MessageReceived(
        inbound.id, inbound.raw, inbound.mail_from, tuple(inbound.rcpt_tos), mail, verdict, tuple(pushes), tuple(landed),
        verdicts,
    )
    events.publish(session, received)
