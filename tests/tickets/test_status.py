"""Ticket status rules: pending and resolved tickets on a customer's reply, the reopen window,
pending tickets resolved after their time with a mail saying so; each change an event and an audit row."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import Ticket, TicketStatus, utcnow
from gateway.settings import Settings
from gateway.storage.database import Database
from tests.mailflow import ALICE, LINK, TOM, add_tom, settle, text_of
from tests.support import ReceiveEmail
from tests.tickets.helpers import answer, audit, messages, ticket


async def resolved_by_tom(gateway: Gateway, receive_email: ReceiveEmail, status: str = "resolved") -> None:
    await add_tom(gateway)
    await receive_email("new-request.eml")
    [notification] = (await settle(gateway)).to(TOM)
    await answer(receive_email, notification, TOM, f"#status {status}\nThe tray is replaced.\n", name="Tom Agent")
    await settle(gateway)


async def age_status(db: Database, days: float, ref: int = 1001) -> None:
    def _change(session: Session):
        session.execute(
            update(Ticket).where(Ticket.ref == ref).values(status_changed_at=utcnow() - timedelta(days=days))
        )

    await db.write(_change)


async def test_a_customer_reply_opens_a_pending_ticket_again_with_an_event_and_audit_row(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await resolved_by_tom(gateway, receive_email, "pending")
    assert (await ticket(gateway)).status == TicketStatus.PENDING
    await receive_email("reply-gmail.eml")
    sender = await settle(gateway)
    assert (await ticket(gateway)).status == TicketStatus.OPEN
    assert "(reopened)" not in sender.to(TOM)[-1].message["Subject"] + text_of(sender.to(TOM)[-1])
    statuses = [(d["from"], d["to"], d["reason"]) for e, d in await audit(gateway) if e == "ticket.status"]
    assert statuses == [("open", "pending", "agent"), ("pending", "open", "customer_reply")]


async def test_a_customer_reply_within_the_window_reopens_a_resolved_ticket(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    await resolved_by_tom(gateway, receive_email)
    await age_status(gateway.db, settings.reopen_window_days - 1)
    await receive_email("reply-gmail.eml")
    sender = await settle(gateway)
    assert (await ticket(gateway)).status == TicketStatus.OPEN
    assert "(reopened)" in text_of(sender.to(TOM)[-1])


async def test_a_reply_after_the_window_opens_a_new_ticket_linked_to_the_old_one(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    await resolved_by_tom(gateway, receive_email, "closed")
    await age_status(gateway.db, settings.reopen_window_days + 1)
    await receive_email("reply-gmail.eml")
    sender = await settle(gateway)
    old, new = await ticket(gateway, 1001), await ticket(gateway, 1002)
    assert old.status == TicketStatus.CLOSED and new.status == TicketStatus.OPEN
    assert new.previous_ticket_id == old.id and new.requester_id == old.requester_id
    [note] = [m for m in await messages(gateway, 1002) if m.internal]
    [first] = [m for m in await messages(gateway, 1002) if not m.internal]
    assert first.author_type == "customer" and "continues #1001" in note.body_text
    assert "[#1002]" in sender.to(ALICE)[-1].message["Subject"], "the customer is told the new number"
    assert "New ticket [#1002]" in text_of(sender.to(TOM)[-1])


async def test_pending_tickets_are_resolved_after_the_set_days_and_the_customer_is_told(
    settings: Settings, db: Database, gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await resolved_by_tom(gateway, receive_email, "pending")
    await age_status(db, 2)
    assert (await gateway.periodic.run_once()).resolved == 0, "off by default"
    patient = Gateway(settings.model_copy(update={"pending_auto_resolve_days": 3}), db)
    await patient.start()
    try:
        assert (await patient.periodic.run_once()).resolved == 0, "not yet three days"
        await age_status(db, 4)
        assert (await patient.periodic.run_once()).resolved == 1
        assert (await patient.periodic.run_once()).resolved == 0, "once"
        await patient.outbox.drain()
    finally:
        await patient.stop()
    assert (await ticket(gateway)).status == TicketStatus.RESOLVED
    told = text_of(patient.sender.to(ALICE)[-1])  # type: ignore[attr-defined]
    assert "for 3 days, so we have marked it resolved" in told and LINK.search(told)
    assert ("ticket.status", {"from": "pending", "to": "resolved", "reason": "auto_resolve", "agent": None}) in (
        await audit(gateway)
    )
    assert "Wicket changed the status from pending to resolved." in [m.body_text for m in await messages(gateway)]
