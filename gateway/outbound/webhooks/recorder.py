"""Writing webhook events, in the transaction of the change they report.

`WebhookRecorder` subscribes to the ticket event bus (gateway/tickets/events.py): a new
ticket, a status change and a message routes push become `webhook_event` rows in the
same transaction, so an event is never sent for a change that rolled back nor lost for
one that committed. The outbox worker records `message.sent` and `delivery.failed` the
same way (`record_event`, in the transaction that marks the mail), and a change of owner
(`TicketChanged` with field `owner`) becomes `ticket.assigned`. Events about a ticket carry it
as their ordering key, so each endpoint receives one ticket's events in order. After the
commit `wake` (if given) tells this process's webhook worker to look at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, event, insert, select
from sqlalchemy.orm import Session

from gateway.models import Agent, Contact, Mailbox, Ticket, WebhookEndpoint, WebhookEvent, new_public_id, utcnow
from gateway.outbound.webhooks.endpoints import MESSAGE_RECEIVED, TEST_EVENT, TICKET_EVENTS
from gateway.outbound.webhooks.payloads import JSON, body, message_received, person, ticket_data
from gateway.settings import Settings
from gateway.storage.database import held
from gateway.tickets.events import EventBus, MessageReceived, StatusChanged, TicketChanged, TicketCreated

_ACTIVE = select(WebhookEndpoint.id, WebhookEndpoint.events).where(WebhookEndpoint.active.is_(True))
_INSERT = insert(WebhookEvent.__table__)
_ENDPOINT_ACTIVE = select(WebhookEndpoint.active).where(WebhookEndpoint.id == bindparam("endpoint_id"))


def _webhook_id() -> str:
    return "msg_" + new_public_id() + new_public_id()


def _ordering(ticket: Ticket | None) -> str | None:
    return f"ticket:{ticket.id}" if ticket is not None else None


def _subscribers(session: Session, event_type: str) -> list[int]:
    """Active endpoints that want this event type (an endpoint listing none wants them all)."""
    def load() -> list[tuple[int, list[str]]]:
        return [(id_, list(events or ())) for id_, events in session.connection().execute(_ACTIVE)]

    endpoints = held(session, "webhook_endpoints", None, load)
    return [id_ for id_, events in endpoints if not events or event_type in events]


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    session.connection().execute(_INSERT, rows)
    wake = session.info.get("webhook_wake")
    if wake is not None and not session.info.get("webhook_wake_listening"):
        session.info["webhook_wake_listening"] = True
        event.listen(session, "after_commit", lambda _session: wake(), once=True)


def _row(endpoint_id: int, event_type: str, payload: bytes, content_type: str, key: str | None, now: datetime) -> dict[str, Any]:
    return {
        "public_id": _webhook_id(), "endpoint_id": endpoint_id, "event_type": event_type, "ordering_key": key,
        "content_type": content_type, "payload": payload, "status": "pending", "attempts": 0,
        "next_attempt_at": now, "created_at": now,
    }  # fmt: skip


def record_event(session: Session, event_type: str, data: dict[str, Any], ticket: Ticket | None) -> None:
    """One event for every active endpoint that wants `event_type`, in the caller's transaction."""
    assert event_type in TICKET_EVENTS, event_type
    endpoints = _subscribers(session, event_type)
    if endpoints:
        now = utcnow()
        payload = body(event_type, data, now)
        _insert(session, [_row(e, event_type, payload, JSON, _ordering(ticket), now) for e in endpoints])


def about_ticket(session: Session, ticket: Ticket) -> dict[str, Any]:
    mailbox = held(session, "mailbox", ticket.mailbox_id, lambda: session.get_one(Mailbox, ticket.mailbox_id))
    return ticket_data(ticket, mailbox, requester_of(session, ticket))


def requester_of(session: Session, ticket: Ticket) -> Contact | None:
    """The requester; None (null in payloads) while the ticket's mail named no usable sender."""
    return session.get(Contact, ticket.requester_id) if ticket.requester_id is not None else None


def record_ticket_assigned(session: Session, ticket: Ticket, owner: Agent | None, previous: Agent | None) -> None:
    """`ticket.assigned`: the ticket's owner changed (None: nobody owns it now)."""
    def who(agent: Agent | None) -> dict[str, str] | None:
        return person(agent.email, agent.name) if agent else None

    data = {"ticket": about_ticket(session, ticket), "owner": who(owner), "previous_owner": who(previous)}
    record_event(session, "ticket.assigned", data, ticket)


def record_test_event(session: Session, endpoint: WebhookEndpoint) -> str:
    """A `webhook.test` event for one endpoint (whatever it subscribes to); returns its webhook-id."""
    now = utcnow()
    payload = body(TEST_EVENT, {"endpoint": endpoint.public_id, "url": endpoint.url}, now)
    row = _row(endpoint.id, TEST_EVENT, payload, JSON, None, now)
    _insert(session, [row])
    return str(row["public_id"])


class WebhookRecorder:
    def __init__(self, settings: Settings, wake: Callable[[], None] | None = None) -> None:
        self._settings = settings
        self._wake = wake

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(TicketCreated, self.on_ticket_created)
        bus.subscribe(StatusChanged, self.on_status_changed)
        bus.subscribe(MessageReceived, self.on_message_received)
        bus.subscribe(TicketChanged, self.on_ticket_changed)

    def _ready(self, session: Session) -> None:
        if self._wake is not None:
            session.info.setdefault("webhook_wake", self._wake)

    def on_ticket_created(self, session: Session, created: TicketCreated) -> None:
        self._ready(session)
        data = {"ticket": about_ticket(session, created.ticket), "message_id": created.message.public_id}
        record_event(session, "ticket.created", data, created.ticket)

    def on_status_changed(self, session: Session, changed: StatusChanged) -> None:
        self._ready(session)
        by = person(changed.by.email, changed.by.name) if changed.by else None
        data = {"ticket": about_ticket(session, changed.ticket), "previous_status": str(changed.previous), "by": by}
        record_event(session, "ticket.status_changed", data, changed.ticket)

    def on_ticket_changed(self, session: Session, changed: TicketChanged) -> None:
        """A new owner (or none) is `ticket.assigned`; status changes come as `StatusChanged`."""
        if changed.field != "owner":
            return
        self._ready(session)

        def agent(email: str) -> Agent | None:
            return session.scalar(select(Agent).where(Agent.email == email)) if email else None

        record_ticket_assigned(session, changed.ticket, agent(changed.after), agent(changed.before))

    def on_message_received(self, session: Session, received: MessageReceived) -> None:
        self._ready(session)
        now = utcnow()
        tickets = [
            ticket_data(landed.ticket, landed.mailbox, requester_of(session, landed.ticket))
            for landed in received.landed
        ]
        key = _ordering(received.landed[0].ticket) if received.landed else None
        rows, pushes = [], {}
        for push in received.pushes:  # one event per endpoint and format, however many recipients matched
            pushes.setdefault((push.endpoint_id, push.payload_format), push)
        for push in pushes.values():
            if not session.connection().scalar(_ENDPOINT_ACTIVE, {"endpoint_id": push.endpoint_id}):
                continue  # removed since the route table was cached, or gone (410)
            payload, content_type = message_received(self._settings, received, push, now, tickets)
            rows.append(_row(push.endpoint_id, MESSAGE_RECEIVED, payload, content_type, key, now))
        _insert(session, rows)
