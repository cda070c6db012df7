"""Event subscribers that send mail: acknowledgements, agent replies, notifications, bounces.

`ticket_events(settings)` is the bus every door that changes a ticket publishes to, with
these subscribers and the webhook recorder (gateway/outbound/webhooks/recorder.py) on it;
they run in the transaction of the change. An agent's reply goes
to every customer on the ticket (requester in To, the other participants in Cc), each
copy with a fresh link and the agent's files. A new ticket gets an
automatic acknowledgement with a magic link when the mailbox wants one, the mail is
answerable (never for auto-replies, bounces, lists or loops), the requester wrote it
themselves (not an agent's forward) from an address that is not the mailbox's own, and
the requester has had fewer than `ack_limit_per_sender` acknowledgements within
`ack_window_seconds`, counted in the outbox.
A ticket whose mail named no usable sender has no requester: nobody is mailed but the
agents, whose notification shows what From said and how to name the requester.
The mailbox's agents are notified of new tickets and of answerable customer messages, as
their preferences and notification policy allow (gateway/outbound/team_mail.py, which also
copies an agent's reply to the colleagues following the ticket and tells an agent when
their emailed reply went nowhere); a customer is told when Wicket resolved their pending
ticket on its own. Each notification's Reply-To is that agent's signed reply address, and
its Message-ID is kept on the outbox row, so replies thread either way; it carries the
customer's files (or links to them, gateway/outbound/files.py); what it says is
gateway/outbound/notification.py's. A
delivery report about mail we sent marks that outbox row bounced.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.orm import Session

from gateway.mail.classify import MailKind
from gateway.mail.quotes import REPLY_MARKER
from gateway.models import Agent, Contact, Mailbox, MailboxMembership, Message, OutboxMessage, Ticket, utcnow
from gateway.outbound.compose import OutboundKind, display_name
from gateway.outbound.customer_mail import (
    customer_recipients,
    is_mailbox_address,
    mail_customer,
    reply_all_headers,
)
from gateway.outbound.drafts import Draft, queue_draft
from gateway.outbound.notification import notification_context
from gateway.outbound.outbox import record_bounce
from gateway.outbound.team_mail import advise_agent, copy_to_colleagues, follows
from gateway.outbound.webhooks.recorder import WebhookRecorder
from gateway.settings import Settings
from gateway.storage import statements
from gateway.storage.database import held
from gateway.tickets.events import (
    AgentAdvised,
    AgentReplied,
    EventBus,
    MessageAdded,
    TicketChanged,
    TicketCreated,
    TicketRated,
    TicketResolved,
)
from gateway.tickets.markers import subject_tag
from gateway.tickets.reply_address import ReplyAddress, format_reply_address

# Statements built once (per event, building and cache-keying them cost more than running them).
# An acknowledgement is queued in the transaction that opens its ticket, so only the
# requester's tickets opened since shortly before the window are read, however many
# older ones they have (the index on requester and opening time).
# The count stops at the cap, so a sender who opens ticket after ticket costs each new one
# no more than the cap's worth of acknowledgements.
_ACKNOWLEDGED = (
    select(OutboxMessage.id)
    .join(Ticket, Ticket.id == OutboxMessage.ticket_id)
    .where(
        Ticket.requester_id == bindparam("requester_id"),
        Ticket.created_at > bindparam("opened_after"),
        OutboxMessage.kind == OutboundKind.ACKNOWLEDGEMENT,
        OutboxMessage.created_at >= bindparam("since"),
    )
    .limit(bindparam("cap"))
    .subquery()
)
_ACKNOWLEDGEMENTS_SINCE = statements.prepare(
    "notify.acknowledgements_since", select(func.count()).select_from(_ACKNOWLEDGED)
)
# Longer than any transaction that opens a ticket and queues its acknowledgement.
_OPENING_MARGIN = timedelta(minutes=10)


def _agents_wanting(wanted: ColumnElement[bool]) -> Select[tuple[Agent, str]]:
    return (
        select(Agent, MailboxMembership.notify_policy)
        .join(MailboxMembership, MailboxMembership.agent_id == Agent.id)
        .where(MailboxMembership.mailbox_id == bindparam("mailbox_id"), wanted.is_(True), Agent.active.is_(True))
        .order_by(Agent.id)
    )


# by "is it a new ticket": who wants to hear of new tickets, who of customer messages
_AGENTS_WANTING = {
    True: _agents_wanting(MailboxMembership.notify_new_ticket),
    False: _agents_wanting(MailboxMembership.notify_customer_message),
}


def _agents_to_notify(session: Session, ticket: Ticket, new_ticket: bool) -> list[Agent]:
    """The mailbox's agents who want this kind of news about this ticket (read once per transaction)."""
    def load() -> list[tuple[Agent, str]]:
        return [(a, p) for a, p in session.execute(_AGENTS_WANTING[new_ticket], {"mailbox_id": ticket.mailbox_id})]

    wanting = held(session, "notified_agents", (ticket.mailbox_id, new_ticket), load)
    return [agent for agent, policy in wanting if follows(policy, agent.id, ticket.owner_agent_id)]


class Notifier:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(TicketCreated, self.on_ticket_created)
        bus.subscribe(MessageAdded, self.on_message_added)
        bus.subscribe(AgentReplied, self.on_agent_replied)
        bus.subscribe(AgentReplied, lambda session, event: copy_to_colleagues(session, self._settings, event))
        bus.subscribe(AgentAdvised, lambda session, event: advise_agent(session, self._settings, event))
        bus.subscribe(TicketChanged, self.on_ticket_changed)
        bus.subscribe(TicketResolved, self.on_ticket_resolved)
        bus.subscribe(TicketRated, self.on_ticket_rated)

    def on_ticket_created(self, session: Session, event: TicketCreated) -> None:
        requester = _requester(session, event.ticket)
        if requester is not None and self._should_acknowledge(session, event):
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
        context = {"text": event.message.body_text, "agent_name": agent.name or agent.email,
                   "resolved": "yes" if event.resolves else "", "rate": "yes" if event.resolves else ""}  # fmt: skip
        self._mail_every_customer(session, event.mailbox, event.ticket, "agent_reply", context,
                                  OutboundKind.AGENT_REPLY, message=event.message, reply_all=True)

    def on_ticket_resolved(self, session: Session, event: TicketResolved) -> None:
        """Every customer on the ticket hears that it is resolved, each with a fresh link."""
        context = {"agent_name": event.agent.name or event.agent.email, "rate": "yes"}
        self._mail_every_customer(session, event.mailbox, event.ticket, "resolved", context, OutboundKind.RESOLVED)

    def _mail_every_customer(
        self,
        session: Session,
        mailbox: Mailbox,
        ticket: Ticket,
        template: str,
        context: dict[str, str],
        kind: OutboundKind,
        *,
        message: Message | None = None,
        reply_all: bool = False,
    ) -> None:
        """One email per customer on the ticket, each with its own link; `reply_all` shows them all in To/Cc."""
        recipients = customer_recipients(session, ticket)
        shown = reply_all_headers(recipients) if reply_all else ((), ())
        for contact in recipients:
            mail_customer(
                session, self._settings, mailbox=mailbox, ticket=ticket, contact=contact, template=template,
                context=context, kind=kind, automatic=False, message=message, shown=shown,
            )

    def on_ticket_changed(self, session: Session, event: TicketChanged) -> None:
        """A pending ticket Wicket resolved on its own: the customer is told, with a link."""
        requester = _requester(session, event.ticket)
        if event.reason != "auto_resolve" or requester is None:
            return
        days = f"{self._settings.pending_auto_resolve_days:g}"
        mail_customer(
            session, self._settings, mailbox=event.mailbox, ticket=event.ticket, contact=requester,
            template="auto_resolved", context={"days": days}, kind=OutboundKind.AUTO_RESOLVED, automatic=True,
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
        values = {"requester_id": ticket.requester_id, "since": since, "opened_after": since - _OPENING_MARGIN,
                  "cap": self._settings.ack_limit_per_sender}  # fmt: skip
        sent = statements.scalar(_ACKNOWLEDGEMENTS_SINCE, session.connection(), values)
        return (sent or 0) < self._settings.ack_limit_per_sender

    def _notify_agents(
        self, session: Session, event: TicketCreated | MessageAdded, *, new_ticket: bool
    ) -> None:
        message = event.message
        author = message.from_email.lower()
        agents = [agent for agent in _agents_to_notify(session, event.ticket, new_ticket) if agent.email != author]
        self._queue_notifications(session, event, agents, notification_context(event, new_ticket=new_ticket))

    def on_ticket_rated(self, session: Session, event: TicketRated) -> None:
        """The agents who hear of customer messages hear of a rating too."""
        contact, rating, tag = event.contact, event.rating, subject_tag(event.ticket)
        who = f"{contact.name} <{contact.email}>" if contact.name else contact.email
        context = {
            "reply_line": REPLY_MARKER,
            "headline": f"{who} rated {tag} as resolved: {'good' if rating.good else 'bad'}",
            "text": rating.comment or "(no comment)",
            "customer": contact.name or contact.email,
            "classification": "normal",
        }
        self._queue_notifications(session, event, _agents_to_notify(session, event.ticket, False), context)

    def _queue_notifications(
        self,
        session: Session,
        event: TicketCreated | MessageAdded | TicketRated,
        agents: list[Agent],
        context: dict[str, str],
    ) -> None:
        ticket, mailbox = event.ticket, event.mailbox
        message = None if isinstance(event, TicketRated) else event.message
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


def _requester(session: Session, ticket: Ticket) -> Contact | None:
    """The ticket's requester; None while its mail named no usable sender (nobody is mailed)."""
    return session.get_one(Contact, ticket.requester_id) if ticket.requester_id is not None else None


def _mark_bounced(session: Session, event: MessageAdded) -> None:
    """A delivery report marks the email it names (or answers) as bounced."""
    report = event.parsed.delivery_report if event.parsed else None
    in_reply_to = event.parsed.in_reply_to if event.parsed else ()
    bounced = (report.original_message_id if report else None) or next(iter(in_reply_to), None)
    if bounced:
        status = f"status {report.status}" if report and report.status else None
        reason = "; ".join(filter(None, [status, *event.classification.reasons])) or "delivery report"
        record_bounce(session, event.mailbox.id, bounced, reason)


def ticket_events(settings: Settings, wake_webhooks: Callable[[], None] | None = None) -> EventBus:
    """The event bus ticket changes publish to, with every subscriber production has.

    `wake_webhooks` is called after a transaction that wrote webhook events commits.
    """
    events = EventBus()
    Notifier(settings).subscribe(events)
    WebhookRecorder(settings, wake_webhooks).subscribe(events)
    return events
