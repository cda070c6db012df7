"""Domain events of ticket changes, and the bus the mail-sending work subscribes to.

Every door that changes a ticket (the processor, the agent API, `wicket reply`, an agent
answering by email) publishes here, and outbound mail is queued only by subscribers, so
customer mail and agent mail leave the same way whichever door the change came in by.

Subscribers run inside the transaction that made the change and receive its session (a
synchronous one: ticket operations are units of work, see gateway/tickets/service.py), so whatever
they write (an acknowledgement or an agent notification in the outbox) commits or rolls
back together with the ticket change. A subscriber that raises
fails the whole change, which the processor then retries.

`MessageReceived` is published once per processed message that routes asked to push to
webhook endpoints (gateway/inbound/routing.py), after its tickets were made or threaded;
`StatusChanged` by every door that changes a ticket's status. Webhook events are written
by a subscriber (gateway/outbound/webhooks/recorder.py), in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from gateway.mail.classify import Classification
from gateway.mail.parse import ParsedEmail
from gateway.models import Agent, Contact, Mailbox, Message, SatisfactionRating, Ticket, TicketStatus


@dataclass(frozen=True, slots=True)
class TicketCreated:
    mailbox: Mailbox
    ticket: Ticket
    message: Message
    classification: Classification
    parsed: ParsedEmail | None


@dataclass(frozen=True, slots=True)
class MessageAdded:
    mailbox: Mailbox
    ticket: Ticket
    message: Message
    classification: Classification
    parsed: ParsedEmail | None
    reopened: bool


@dataclass(frozen=True, slots=True)
class AgentReplied:
    """An agent's reply to the customers was stored (not a note, not a status change)."""

    mailbox: Mailbox
    ticket: Ticket
    message: Message
    agent: Agent
    resolves: bool = False  # the same change marks the ticket resolved: the mail says so


@dataclass(frozen=True, slots=True)
class Push:
    """A webhook action a route chose: post the message to an endpoint, as JSON or raw MIME."""

    endpoint_id: int
    payload_format: str
    recipient: str
    route: str  # the route's public id


@dataclass(frozen=True, slots=True)
class Landed:
    """A ticket a received message went to, and the message stored there."""

    mailbox: Mailbox
    ticket: Ticket
    message_id: int


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message was processed and routes push it to webhook endpoints."""

    inbound_id: int
    raw: bytes
    mail_from: str
    rcpt_tos: tuple[str, ...]
    parsed: ParsedEmail
    classification: Classification
    pushes: tuple[Push, ...]
    landed: tuple[Landed, ...]
    verdicts: dict[str, Any] | None = None  # SPF, DKIM, DMARC and ARC, as stored on the message; None: not checked


@dataclass(frozen=True, slots=True)
class StatusChanged:
    ticket: Ticket
    previous: TicketStatus
    by: Agent | None  # None: the customer's mail reopened it


@dataclass(frozen=True, slots=True)
class TicketResolved:
    """An agent marked the ticket resolved without a reply to carry the news."""

    mailbox: Mailbox
    ticket: Ticket
    agent: Agent


@dataclass(frozen=True, slots=True)
class TicketChanged:
    """A ticket's `status`, `owner`, `priority` or `tags` changed (as text: `before`, `after`).

    `agent` made the change, or None when a customer's reply or Wicket itself did; `reason`
    says which rule: `agent`, `first_reply`, `customer_reply`, `customer` (closed in the
    portal) or `auto_resolve`.
    """

    mailbox: Mailbox
    ticket: Ticket
    field: str
    before: str
    after: str
    agent: Agent | None
    reason: str


@dataclass(frozen=True, slots=True)
class AgentAdvised:
    """Something the agent must hear about their own mail, which the customer never sees.

    Published when an emailed reply could not be carried out (a command not understood, no
    text to send): the agent is told `problem` and given back `text`.
    """

    mailbox: Mailbox
    ticket: Ticket
    agent: Agent
    problem: str
    text: str


@dataclass(frozen=True, slots=True)
class TicketRated:
    """A customer said how a resolution went (gateway/tickets/satisfaction.py)."""

    mailbox: Mailbox
    ticket: Ticket
    contact: Contact
    rating: SatisfactionRating


Event = (
    TicketCreated | MessageAdded | AgentReplied | MessageReceived | StatusChanged | TicketChanged | AgentAdvised
    | TicketResolved | TicketRated
)
E = TypeVar(
    "E", TicketCreated, MessageAdded, AgentReplied, MessageReceived, StatusChanged, TicketChanged, AgentAdvised,
    TicketResolved, TicketRated,
)
Subscriber = Callable[[Session, Any], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[type, list[Subscriber]] = defaultdict(list)

    def subscribe(self, event_type: type[E], handler: Callable[[Session, E], None]) -> None:
        self._subscribers[event_type].append(handler)

    def publish(self, session: Session, event: Event) -> None:
        for handler in self._subscribers[type(event)]:
            handler(session, event)


_MAIL_MUTED = "wicket.mail_muted"


@contextmanager
def mail_muted(session: Session, muted: bool = True) -> Iterator[None]:
    """Within the block, changes published on `session` queue no mail (a replay of saved mail).

    The subscribers still run, so tickets, notes and every other effect are exactly those of
    live mail; only the outbox stays untouched (gateway/outbound/drafts.py asks `is_mail_muted`).
    """
    before = session.info.get(_MAIL_MUTED, False)
    session.info[_MAIL_MUTED] = before or muted
    try:
        yield
    finally:
        session.info[_MAIL_MUTED] = before


def is_mail_muted(session: Session) -> bool:
    return bool(session.info.get(_MAIL_MUTED, False))
