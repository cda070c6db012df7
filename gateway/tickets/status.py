"""Ticket status rules, and the one way any field of a ticket is changed and recorded.

`record_change` is how the status, the owner, the priority and the tags change, whoever
changes them: it writes an audit row (`ticket.status`, `ticket.owner`, …) and publishes
`TicketChanged` in the caller's transaction, so every change is both an event and an
audit row. The status rules (docs/architecture.md, "Ticket status"):

- open → pending (the team waits for the customer) by an agent; a customer's reply makes
  a pending ticket open again;
- a customer's reply reopens a resolved or closed ticket within `reopen_window_days` of
  its status change; after the window it opens a new ticket that names the old one
  (`reply_continues` says which);
- with `pending_auto_resolve_days` set, pending tickets untouched that long are resolved
  by `auto_resolve_pending`; the `TicketChanged` it publishes has `reason="auto_resolve"`,
  on which the outbound subscriber tells the customer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.audit import record
from gateway.models import Agent, Mailbox, Message, Ticket, TicketStatus, utcnow
from gateway.tickets.events import EventBus, StatusChanged, TicketChanged, TicketResolved
from gateway.tickets.notes import add_note

AUTO_RESOLVE_BATCH = 200  # tickets resolved per transaction; the next run takes the rest


def record_change(
    session: Session,
    events: EventBus,
    ticket: Ticket,
    field: str,
    before: str,
    after: str,
    *,
    agent: Agent | None = None,
    reason: str = "agent",
) -> None:
    """Write the audit row and publish `TicketChanged` for a change already made to `ticket`."""
    detail = {"from": before, "to": after, "reason": reason, "agent": agent.email if agent else None}
    record(session, f"ticket.{field}", ticket=ticket, detail=detail)
    mailbox = session.get_one(Mailbox, ticket.mailbox_id)
    events.publish(session, TicketChanged(mailbox, ticket, field, before, after, agent, reason))


def set_status(
    session: Session,
    events: EventBus,
    ticket: Ticket,
    status: TicketStatus,
    *,
    agent: Agent | None = None,
    reason: str = "agent",
    note: bool = True,
    announce: bool = True,
    **origin: Any,
) -> Message | None:
    """Move the ticket to `status`; returns the note recording it (None when nothing changed or no note).

    An agent's resolution is announced to the customers (`TicketResolved`, the mail that
    asks for a rating) unless `announce` is false because the agent's own reply says so;
    Wicket's own resolution of a stale pending ticket has its own mail (`reason="auto_resolve"`).
    """
    if ticket.status == status:
        return None
    previous = TicketStatus(ticket.status)
    ticket.status, ticket.status_changed_at = status, utcnow()
    if status is TicketStatus.RESOLVED:
        ticket.resolved_at = ticket.status_changed_at  # names this resolution: it is rated once
    record_change(session, events, ticket, "status", str(previous), str(status), agent=agent, reason=reason)
    events.publish(session, StatusChanged(ticket, previous, agent))  # the webhooks' ticket.status_changed
    if announce and agent is not None and status is TicketStatus.RESOLVED:
        events.publish(session, TicketResolved(session.get_one(Mailbox, ticket.mailbox_id), ticket, agent))
    if not note:
        return None
    who = (agent.name or agent.email) if agent else "Wicket"
    return add_note(session, ticket, f"{who} changed the status from {previous} to {status}.", agent=agent, **origin)


class Continuation(StrEnum):
    """What a customer's reply does to the ticket it threaded to."""

    CONTINUES = "continues"  # open or pending: the conversation goes on
    REOPENS = "reopens"  # resolved or closed within the window
    TOO_LATE = "too_late"  # resolved or closed longer ago: a new ticket, linked to this one


def reply_continues(ticket: Ticket, window_days: float, now: datetime | None = None) -> Continuation:
    if ticket.status in (TicketStatus.OPEN, TicketStatus.PENDING):
        return Continuation.CONTINUES
    since = ticket.status_changed_at or ticket.last_activity_at
    if (now or utcnow()) - since > timedelta(days=window_days):
        return Continuation.TOO_LATE
    return Continuation.REOPENS


def on_customer_reply(session: Session, events: EventBus, ticket: Ticket) -> bool:
    """A customer wrote: the ticket is open again. True when it had been resolved or closed.

    A pending ticket waits on the customer, so their reply hands it back to the team without
    counting as a reopening (agents are told "reopened" only for the other two).
    """
    reopened = ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
    set_status(session, events, ticket, TicketStatus.OPEN, reason="customer_reply", note=False)
    return reopened


def auto_resolve_pending(session: Session, events: EventBus, days: float, now: datetime | None = None) -> int:
    """Resolve pending tickets whose status has not changed for `days`; returns how many."""
    if days <= 0:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=days)
    stale = session.scalars(
        select(Ticket)
        .where(Ticket.status == TicketStatus.PENDING, Ticket.status_changed_at < cutoff)
        .order_by(Ticket.id)
        .limit(AUTO_RESOLVE_BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    for ticket in stale:
        set_status(session, events, ticket, TicketStatus.RESOLVED, reason="auto_resolve")
    return len(stale)
