"""One claimed message into one mailbox, as a flow of named steps.

`deliver_to_mailbox` is the processor's step for each mailbox a message was addressed to,
inside the message's savepoint (docs/architecture.md, "One email, from the socket to the
page", step 3). It reads top-down as the flow of one message, and so does this module:

1. **duplicate**: a message already stored in this mailbox (same dedupe key) stops here;
2. **agent mail**: mail on a signed agent address that really is the agent's becomes
   their reply (gateway/inbound/agent_replies.py); anything else continues as mail to
   the plain mailbox address;
3. **sender**: the contact the mail is from;
4. **conversation**: the ticket it continues (gateway/inbound/conversations.py), or none;
   a reply whose parent another worker is still processing raises `WaitForEarlier`
   instead of opening a second ticket;
5. **ticket**: a new one is opened (for a forwarded mail from the team, on behalf of the
   original sender) with the people in Cc taking part, or an existing one may gain Cc
   participants and is reopened, and a reply after a resolved ticket's reopen window
   opens a new ticket linked to it;
6. **store**: the message and its attachments (gateway/inbound/messages.py), and a note
   for each ticket it mentions;
7. **publish**: `TicketCreated` or `MessageAdded`, for the subscribers that mail people.

`publish_received` then tells the webhook subscriber, once per message, when routes push
it to endpoints (docs/architecture.md, "Routes and webhooks").

Every statement that needs no ORM object is Core, built once at import and run on the
session's connection, the hottest ones `Prepared` (gateway/storage/statements.py; see
docs/architecture.md, "Reaching the database"): processing runs them for every message.
The steps stay in this one module so that one message's flow reads in one place; how a
parsed mail becomes Message and Attachment rows is gateway/inbound/messages.py's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from gateway.directory.contacts import contact_for
from gateway.inbound.agent_replies import deliver_agent_mail
from gateway.inbound.conversations import Conversation, ThreadRule, find_conversation
from gateway.inbound.messages import customer_message, insert_message
from gateway.inbound.routing import Route
from gateway.mail.addresses import is_valid_address
from gateway.mail.classify import Classification, MailKind
from gateway.mail.parse import ParsedEmail
from gateway.mail.verdicts import SenderVerdicts
from gateway.models import (
    Agent,
    Contact,
    InboundEmail,
    InboundStatus,
    Mailbox,
    Message,
    Ticket,
)
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
from gateway.tickets.notes import add_note
from gateway.tickets.service import add_cc_participants, add_participant, open_ticket
from gateway.tickets.status import Continuation, on_customer_reply, reply_continues

UNKNOWN_SENDER = "unknown-sender@invalid"
DMARC_FAIL_FLAG = "dmarc_fail"  # the flag on a ticket opened by mail that failed DMARC

# Statements built once: building and cache-keying an expression costs more than running it.
_MESSAGES = Message.__table__
_DUPLICATE = statements.prepare(
    "delivery.duplicate",
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
_TEAM_MEMBER = select(Agent.id).where(Agent.email == bindparam("email"), Agent.active.is_(True))
# Threading rules that only recipients of our own mail can have used (docs/architecture.md, "Threading").
_CC_RULES = frozenset({ThreadRule.REPLY_ADDRESS, ThreadRule.HEADERS})


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


class WaitForEarlier(Exception):
    """The message continues one that is not processed yet; try again shortly."""


@dataclass(frozen=True, slots=True)
class Sender:
    """Who the message is from: the address and name as stored on it, their contact, and the checks.

    `trusted` is False when the mail failed DMARC for its From domain: then nothing that
    rests on the sender being who From says (a marker, a subject tag, bringing people in by
    Cc) applies, and a ticket it opens is flagged.
    """

    email: str
    name: str
    contact: Contact
    verdicts: SenderVerdicts | None = None

    @property
    def trusted(self) -> bool:
        return self.verdicts is None or not self.verdicts.dmarc_failed


@dataclass(frozen=True, slots=True)
class OnTicket:
    """The ticket a message goes to, and what taking it there did to the ticket."""

    ticket: Ticket
    created: bool
    reopened: bool


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
    sender = _sender(session, inbound, mail, checked)
    conversation = _conversation(session, settings, inbound, mail, route, mailbox, sender)
    on_ticket = _ticket(session, settings, events, mail, verdict, mailbox, sender, conversation)
    message = _store(session, inbound, mail, verdict, key, mailbox, sender, conversation, on_ticket)
    _publish(session, events, mail, verdict, mailbox, message, on_ticket)
    return Delivery(on_ticket.ticket.id, message.id, duplicate=False, rule=conversation.rule)


# 1. duplicate
def _duplicate(session: Session, mailbox_id: int, key: str) -> Delivery | None:
    """The earlier delivery of this very message to this mailbox, if there was one."""
    duplicates = statements.rows(_DUPLICATE, session.connection(), {"mailbox_id": mailbox_id, "key": key})
    for message_id, ticket_id in duplicates:
        return Delivery(ticket_id, message_id, duplicate=True, rule=None)
    return None


# 3. sender
def _sender(session: Session, inbound: Claimed, mail: ParsedEmail, verdicts: SenderVerdicts | None) -> Sender:
    """The sender the headers name (From, Sender, Reply-To: `gateway.mail.parse` picks the
    first valid one), else a valid envelope sender, and its contact, created on first sight."""
    envelope = inbound.mail_from if is_valid_address(inbound.mail_from) else ""
    # Column sizes bound what junk headers can put here (PostgreSQL refuses longer values).
    email = ((mail.sender.email if mail.sender else "") or envelope or UNKNOWN_SENDER)[:320]
    name = (mail.sender.name if mail.sender else "")[:200]
    return Sender(email, name, contact_for(session, email, name), verdicts)


# 4. conversation
def _conversation(
    session: Session,
    settings: Settings,
    inbound: Claimed,
    mail: ParsedEmail,
    route: Route,
    mailbox: Mailbox,
    sender: Sender,
) -> Conversation:
    """The ticket the message continues, or a new conversation once no earlier message is pending."""
    conversation = find_conversation(
        session, mailbox, settings.keys, mail, route.reply, sender.contact.id, sender_trusted=sender.trusted
    )
    if conversation.ticket is None:
        _wait_for_earlier(session, inbound, mail)
    return conversation


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


# 5. ticket
def _ticket(
    session: Session,
    settings: Settings,
    events: EventBus,
    mail: ParsedEmail,
    verdict: Classification,
    mailbox: Mailbox,
    sender: Sender,
    conversation: Conversation,
) -> OnTicket:
    """Open the message's ticket, or continue the one it threaded to (gateway/tickets/status.py)."""
    ticket = conversation.ticket
    if ticket is None:
        ticket = _open(session, mail, verdict, mailbox, sender)
        if verdict.answerable and sender.trusted:
            # Whoever opens a conversation chooses who is in it, as in any mail thread; this
            # gives the people in Cc this new ticket and nothing else (unless From may be forged).
            add_cc_participants(session, ticket, (a.email for a in mail.cc))
        return OnTicket(ticket, created=True, reopened=False)
    reopened = False
    if verdict.answerable:
        if reply_continues(ticket, settings.reopen_window_days) is Continuation.TOO_LATE:
            return OnTicket(_follow_up(session, mail, verdict, mailbox, sender, ticket), created=True, reopened=False)
        # Replying never makes anyone a participant; the requester may bring people in by
        # Cc on mail that threaded through something only recipients of our mail hold.
        if conversation.rule in _CC_RULES and ticket.requester_id == sender.contact.id and sender.trusted:
            add_cc_participants(session, ticket, (a.email for a in mail.cc))
        reopened = on_customer_reply(session, events, ticket)
    return OnTicket(ticket, created=False, reopened=reopened)


def _follow_up(
    session: Session, mail: ParsedEmail, verdict: Classification, mailbox: Mailbox, sender: Sender, old: Ticket
) -> Ticket:
    """A new ticket for a reply that came after `old`'s reopen window, naming `old`."""
    ticket = _open(session, mail, verdict, mailbox, sender)
    ticket.previous_ticket_id = old.id
    add_cc_participants(session, ticket, (a.email for a in mail.cc))  # a new conversation, as above
    note = f"This ticket continues #{old.ref} ({old.subject}), {old.status} too long ago for a reply to reopen it."
    add_note(session, ticket, note, thread_rule="follow_up")
    return ticket


def _open(session: Session, mail: ParsedEmail, verdict: Classification, mailbox: Mailbox, sender: Sender) -> Ticket:
    """A new ticket; mail a team member forwarded is opened for the original sender, with the member taking part."""
    requester = sender.contact
    subject = mail.subject
    if mail.forwarded is not None and sender.trusted and _is_team_member(session, sender.email):
        original = mail.forwarded.sender
        requester = contact_for(session, original.email or sender.email, original.name)
        subject = mail.forwarded.subject or subject
    flag = None if verdict.kind is MailKind.NORMAL else str(verdict.kind)
    if not sender.trusted:
        flag = DMARC_FAIL_FLAG  # above the classification: agents must see it before they trust the sender
    ticket = open_ticket(session, mailbox, requester, subject, flag)
    if requester.id != sender.contact.id:
        add_participant(session, ticket, sender.contact)
    return ticket


def _is_team_member(session: Session, email: str) -> bool:
    return session.connection().scalar(_TEAM_MEMBER, {"email": email.lower()}) is not None


# 6. store
def _store(
    session: Session,
    inbound: Claimed,
    mail: ParsedEmail,
    verdict: Classification,
    key: str,
    mailbox: Mailbox,
    sender: Sender,
    conversation: Conversation,
    on_ticket: OnTicket,
) -> Message:
    """Insert the message and its attachments, move the ticket's activity, note mentioned tickets."""
    ticket = on_ticket.ticket
    message = customer_message(
        mail, inbound_id=inbound.id, mailbox_id=mailbox.id, ticket=ticket, dedupe_key=key,
        contact_id=sender.contact.id, email=sender.email, name=sender.name, verdict=verdict,
        rule=conversation.rule, with_ticket=on_ticket.created,
        sender_verdicts=sender.verdicts.to_json() if sender.verdicts is not None else None,
    )  # fmt: skip
    insert_message(session.connection(), message, mail)
    if not on_ticket.created:  # a new ticket's row already says so: nothing for the ORM to flush
        ticket.last_activity_at = message.created_at
    for mentioned in conversation.mentions:
        add_note(session, ticket, _mention_note(mentioned, sender.trusted), thread_rule="mention")
    return message


def _mention_note(mentioned: Ticket, trusted: bool) -> str:
    if not trusted:
        return (
            f"This message mentions #{mentioned.ref} ({mentioned.subject}). It failed DMARC for its "
            "From domain, so its sender may not be who From says: it was not added there and "
            "gained no access to it."
        )
    return (
        f"This message mentions #{mentioned.ref} ({mentioned.subject}). Its sender does not take "
        "part in that ticket, so it was not added there and gained no access to it."
    )


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
