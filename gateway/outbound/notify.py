"""Event subscribers that send mail: acknowledgements, agent replies, notifications, bounces.

`ticket_events(settings)` is the bus every door that changes a ticket publishes to, with
these subscribers on it; they run in the transaction of the change. An agent's reply goes
to every customer on the ticket (requester in To, the other participants in Cc), each
copy with a fresh link and the agent's files. A new ticket gets an
automatic acknowledgement with a magic link when the mailbox wants one, the mail is
answerable (never for auto-replies, bounces, lists or loops), the requester wrote it
themselves (not an agent's forward) from an address that is not the mailbox's own, and
the requester has had fewer than `ack_limit_per_sender` acknowledgements within
`ack_window_seconds`, counted in the outbox.
The mailbox's agents are notified of every new ticket and of answerable customer messages,
as their preferences allow; each notification's Reply-To is that agent's signed reply
address, and its Message-ID is kept on the outbox row, so replies thread either way; it
carries the customer's files (or links to them, gateway/outbound/files.py). A
delivery report about mail we sent marks that outbox row bounced.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.orm import Session

from gateway.mail.classify import MailKind
from gateway.mail.quotes import REPLY_MARKER
from gateway.models import Agent, Contact, MailboxMembership, OutboxMessage, Ticket, utcnow
from gateway.outbound.compose import OutboundKind, display_name
from gateway.outbound.customer_mail import (
    customer_recipients,
    is_mailbox_address,
    mail_customer,
    reply_all_headers,
)
from gateway.outbound.drafts import Draft, queue_draft
from gateway.outbound.outbox import record_bounce
from gateway.settings import Settings
from gateway.storage import statements
from gateway.storage.database import held
from gateway.tickets.events import AgentReplied, EventBus, MessageAdded, TicketCreated
from gateway.tickets.markers import subject_tag
from gateway.tickets.reply_address import ReplyAddress, format_reply_address

MAX_NOTIFIED_TEXT = 20_000

# Statements built once (per event, building and cache-keying them cost more than running them).
_ACKNOWLEDGEMENTS_SINCE = statements.prepare(
    "notify.acknowledgements_since",
    select(func.count(OutboxMessage.id))
    .join(Ticket, Ticket.id == OutboxMessage.ticket_id)
    .where(
        Ticket.requester_id == bindparam("requester_id"),
        OutboxMessage.kind == OutboundKind.ACKNOWLEDGEMENT,
        OutboxMessage.created_at >= bindparam("since"),
    )
)


def _agents_wanting(wanted: ColumnElement[bool]) -> Select[tuple[Agent]]:
    return (
        select(Agent)
        .join(MailboxMembership, MailboxMembership.agent_id == Agent.id)
        .where(MailboxMembership.mailbox_id == bindparam("mailbox_id"), wanted.is_(True), Agent.active.is_(True))
        .order_by(Agent.id)
    )


# by "is it a new ticket": who wants to hear of new tickets, who of customer messages
_AGENTS_WANTING = {
    True: _agents_wanting(MailboxMembership.notify_new_ticket),
    False: _agents_wanting(MailboxMembership.notify_customer_message),
}


def _agents_to_notify(session: Session, mailbox_id: int, new_ticket: bool) -> list[Agent]:
    """The mailbox's agents who want this kind of news, read once per transaction."""
    def load() -> list[Agent]:
        return list(session.scalars(_AGENTS_WANTING[new_ticket], {"mailbox_id": mailbox_id}))

    return held(session, "notified_agents", (mailbox_id, new_ticket), load)


class Notifier:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(TicketCreated, self.on_ticket_created)
        bus.subscribe(MessageAdded, self.on_message_added)
        bus.subscribe(AgentReplied, self.on_agent_replied)

    def on_ticket_created(self, session: Session, event: TicketCreated) -> None:
        if self._should_acknowledge(session, event):
            requester = session.get_one(Contact, event.ticket.requester_id)
            mail_customer(
                session,
                self._settings,
                mailbox=event.mailbox,
                ticket=event.ticket,
                contact=requester,
                template="acknowledgement",
                context={},
                kind=OutboundKind.ACKNOWLEDGEMENT,
                automatic=True,
            )
        self._notify_agents(session, event, new_ticket=True)

    def on_message_added(self, session: Session, event: MessageAdded) -> None:
        if event.classification.kind is MailKind.BOUNCE:
            _mark_bounced(session, event)
        if event.classification.answerable and not event.message.internal:
            self._notify_agents(session, event, new_ticket=False)

    def on_agent_replied(self, session: Session, event: AgentReplied) -> None:
        """The agent's reply to every customer on the ticket, each with a fresh link."""
        agent = event.agent
        context = {"text": event.message.body_text, "agent_name": agent.name or agent.email}
        recipients = customer_recipients(session, event.ticket)
        shown = reply_all_headers(recipients)
        for contact in recipients:
            mail_customer(
                session,
                self._settings,
                mailbox=event.mailbox,
                ticket=event.ticket,
                contact=contact,
                template="agent_reply",
                context=context,
                kind=OutboundKind.AGENT_REPLY,
                automatic=False,
                message=event.message,
                shown=shown,
            )

    def _should_acknowledge(self, session: Session, event: TicketCreated) -> bool:
        ticket = event.ticket
        if not (
            event.mailbox.auto_acknowledge
            and event.classification.answerable
            and event.message.author_contact_id == ticket.requester_id
            and not is_mailbox_address(event.mailbox, event.message.from_email)
        ):
            return False
        since = utcnow() - timedelta(seconds=self._settings.ack_window_seconds)
        values = {"requester_id": ticket.requester_id, "since": since}
        sent = statements.scalar(_ACKNOWLEDGEMENTS_SINCE, session.connection(), values)
        return (sent or 0) < self._settings.ack_limit_per_sender

    def _notify_agents(
        self, session: Session, event: TicketCreated | MessageAdded, *, new_ticket: bool
    ) -> None:
        message, ticket, mailbox = event.message, event.ticket, event.mailbox
        author = message.from_email.lower()
        agents = [agent for agent in _agents_to_notify(session, mailbox.id, new_ticket) if agent.email != author]
        context = _notification_context(event, new_ticket=new_ticket)
        from_name = f"{display_name(context['customer'])} via {mailbox.display_name}"
        for agent in agents:
            address = format_reply_address(
                ReplyAddress(mailbox.address, "a", ticket.public_id, agent.id), self._settings.keys[0]
            )
            draft = Draft(
                template="notification",
                context=context,
                to_name=agent.name,
                to_email=agent.email,
                reply_to=address,
                automatic=True,
                for_customer=False,
                from_name=from_name,
                with_files=True,
                agent_id=agent.id,
            )
            queue_draft(
                session,
                mailbox=mailbox,
                ticket=ticket,
                kind=OutboundKind.NOTIFICATION,
                draft=draft,
                envelope_from=address,
                message=message,
            )


def _notification_context(event: TicketCreated | MessageAdded, *, new_ticket: bool) -> dict[str, str]:
    message, tag = event.message, subject_tag(event.ticket)
    who = f"{message.from_name} <{message.from_email}>" if message.from_name else message.from_email
    if new_ticket:
        headline = f"New ticket {tag} from {who}"
    else:
        reopened = isinstance(event, MessageAdded) and event.reopened
        headline = f"{who} wrote on {tag}{' (reopened)' if reopened else ''}"
    return {
        "reply_line": REPLY_MARKER,
        "headline": headline,
        "text": (message.reply_text or message.body_text).strip()[:MAX_NOTIFIED_TEXT],
        "customer": message.from_name or message.from_email,
        "classification": message.classification,
    }


def _mark_bounced(session: Session, event: MessageAdded) -> None:
    """A delivery report marks the email it names (or answers) as bounced."""
    report = event.parsed.delivery_report if event.parsed else None
    in_reply_to = event.parsed.in_reply_to if event.parsed else ()
    bounced = (report.original_message_id if report else None) or next(iter(in_reply_to), None)
    if bounced:
        status = f"status {report.status}" if report and report.status else None
        reason = "; ".join(filter(None, [status, *event.classification.reasons])) or "delivery report"
        record_bounce(session, event.mailbox.id, bounced, reason)


def ticket_events(settings: Settings) -> EventBus:
    """The event bus ticket changes publish to, with every subscriber production has."""
    events = EventBus()
    Notifier(settings).subscribe(events)
    return events
