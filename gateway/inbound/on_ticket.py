"""Where one customer message goes: delivery's conversation, ticket and store steps.

gateway/inbound/delivery.py runs these in order for each mailbox a message is delivered to
(docs/architecture.md, "One email, from the socket to the page", step 3):

- **conversation**: the ticket the message continues (gateway/inbound/conversations.py),
  or none; a reply whose parent another worker is still processing raises
  `WaitForEarlier` instead of opening a second ticket;
- **ticket**: a new one is opened (for a forwarded mail from the team, on behalf of the
  original sender) with the people in Cc taking part, or an existing one may gain Cc
  participants and is reopened, and a reply after a resolved ticket's reopen window opens
  a new ticket linked to it. Mail with no usable sender opens a ticket without a
  requester, flagged `sender_unclear` (docs/architecture.md, "Mail with no usable sender");
- **store**: the message and its attachments (gateway/inbound/messages.py), and a note
  for each ticket it mentions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from gateway.directory.contacts import contact_for
from gateway.inbound.conversations import Conversation, ThreadRule, find_conversation
from gateway.inbound.messages import customer_message, insert_message
from gateway.inbound.routing import Route
from gateway.inbound.sender import Sender
from gateway.mail.addresses import is_valid_address
from gateway.mail.classify import Classification, MailKind
from gateway.mail.parse import ParsedEmail
from gateway.models import Agent, InboundEmail, InboundStatus, Mailbox, Message, Ticket
from gateway.settings import Settings
from gateway.tickets.events import EventBus
from gateway.tickets.notes import add_note
from gateway.tickets.requester import SENDER_UNCLEAR_FLAG
from gateway.tickets.service import add_cc_participants, add_participant, open_ticket
from gateway.tickets.status import Continuation, on_customer_reply, reply_continues

DMARC_FAIL_FLAG = "dmarc_fail"  # the flag on a ticket opened by mail that failed DMARC

# Statements built once: building and cache-keying an expression costs more than running it.
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


class WaitForEarlier(Exception):
    """The message continues one that is not processed yet; try again shortly."""


@dataclass(frozen=True, slots=True)
class OnTicket:
    """The ticket a message goes to, and what taking it there did to the ticket."""

    ticket: Ticket
    created: bool
    reopened: bool


# conversation
def conversation_of(
    session: Session,
    settings: Settings,
    inbound_id: int,
    mail: ParsedEmail,
    route: Route,
    mailbox: Mailbox,
    sender: Sender,
) -> Conversation:
    """The ticket the message continues, or a new conversation once no earlier message is pending.

    With no ticket found, the messages this one replies to are looked up by their inbound
    rows: one still pending or processing makes this one wait (`WaitForEarlier`). None
    left means each was committed, perhaps by another worker since the first look (on
    PostgreSQL each statement sees the newest commits), so the conversation is looked for
    once more before a new one is opened.
    """
    def find() -> Conversation:
        return find_conversation(
            session, mailbox, settings.keys, mail, route.reply, sender.contact_id, sender_trusted=sender.trusted
        )

    conversation = find()
    if conversation.ticket is None and _wait_for_earlier(session, inbound_id, mail):
        conversation = find()
    return conversation


def _wait_for_earlier(session: Session, inbound_id: int, mail: ParsedEmail) -> bool:
    """Raise WaitForEarlier when a message this one replies to is still being processed.

    With several workers a reply can be claimed while its parent is still in another
    worker's transaction; threading it now would open a second ticket. Returns whether
    the message replies to anything at all.
    """
    ids = [i for i in (*mail.in_reply_to, *mail.references) if i][:100]
    if not ids:
        return False
    earlier = session.connection().scalar(_EARLIER_UNPROCESSED, {"ids": ids, "inbound_id": inbound_id})
    if earlier is not None:
        raise WaitForEarlier(earlier)
    return True


# ticket
def take_to_ticket(
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
    # Whoever opens a conversation chooses who is in it, as in any mail thread, unless From
    # may be forged or named nobody usable.
    chooses_cc = verdict.answerable and sender.trusted and sender.known
    if ticket is None:
        ticket = _open(session, mail, verdict, mailbox, sender)
        if chooses_cc:
            add_cc_participants(session, ticket, (a.email for a in mail.cc))
        return OnTicket(ticket, created=True, reopened=False)
    reopened = False
    if verdict.answerable:
        if reply_continues(ticket, settings.reopen_window_days) is Continuation.TOO_LATE:
            return OnTicket(_follow_up(session, mail, verdict, mailbox, sender, ticket), created=True, reopened=False)
        # Replying never makes anyone a participant; the requester may bring people in by
        # Cc on mail that threaded through something only recipients of our mail hold.
        if chooses_cc and conversation.rule in _CC_RULES and ticket.requester_id == sender.contact_id:
            add_cc_participants(session, ticket, (a.email for a in mail.cc))
        reopened = on_customer_reply(session, events, ticket)
    return OnTicket(ticket, created=False, reopened=reopened)


def _follow_up(
    session: Session, mail: ParsedEmail, verdict: Classification, mailbox: Mailbox, sender: Sender, old: Ticket
) -> Ticket:
    """A new ticket for a reply that came after `old`'s reopen window, naming `old`."""
    ticket = _open(session, mail, verdict, mailbox, sender)
    ticket.previous_ticket_id = old.id
    if sender.known:  # a new conversation, as above
        add_cc_participants(session, ticket, (a.email for a in mail.cc))
    note = f"This ticket continues #{old.ref} ({old.subject}), {old.status} too long ago for a reply to reopen it."
    add_note(session, ticket, note, thread_rule="follow_up")
    return ticket


def _open(session: Session, mail: ParsedEmail, verdict: Classification, mailbox: Mailbox, sender: Sender) -> Ticket:
    """A new ticket; mail a team member forwarded is opened for the original sender, with the member taking part."""
    requester = sender.contact
    subject = mail.subject
    if mail.forwarded is not None and sender.trusted and sender.known and _is_team_member(session, sender.email):
        original = mail.forwarded.sender
        email = original.email if is_valid_address(original.email) else sender.email
        requester = contact_for(session, email, original.name)
        subject = mail.forwarded.subject or subject
    flag = None if verdict.kind is MailKind.NORMAL else str(verdict.kind)
    if not sender.trusted:
        flag = DMARC_FAIL_FLAG  # above the classification: agents must see it before they trust the sender
    if requester is None:
        flag = SENDER_UNCLEAR_FLAG  # above all: nobody can be mailed until an agent names the requester
    ticket = open_ticket(session, mailbox, requester, subject, flag, unclear_from=sender.unclear_from or None)
    if sender.contact is not None and requester is not None and requester.id != sender.contact.id:
        add_participant(session, ticket, sender.contact)
    return ticket


def _is_team_member(session: Session, email: str) -> bool:
    return session.connection().scalar(_TEAM_MEMBER, {"email": email.lower()}) is not None


# store
def store(
    session: Session,
    inbound_id: int,
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
        mail, inbound_id=inbound_id, mailbox_id=mailbox.id, ticket=ticket, dedupe_key=key,
        contact_id=sender.contact_id, email=sender.email, name=sender.name, verdict=verdict,
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
