"""Helpers for the team-workflow tests: agents, answering a notification by mail, reading rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.directory.agents import add_agent
from gateway.models import AuditEvent, Message, OutboxMessage, Ticket
from gateway.outbound.senders import SentMail
from gateway.storage.database import orm
from tests.mailflow import build_mail
from tests.support import ReceiveEmail

ANN = "ann@example.test"
BOB = "bob@example.test"


async def add_agents(gateway: Gateway, *pairs: tuple[str, str]) -> None:
    def _change(session: Session):
        for email, name in pairs:
            add_agent(session, email, name)

    await gateway.db.write(_change)


async def answer(
    receive_email: ReceiveEmail, notification: SentMail, agent: str, body: str, name: str = "Agent", **headers: str
) -> None:
    """`agent` answers `notification` by mail, from their own address and domain."""
    address = notification.message["Reply-To"]
    raw = build_mail(sender=f"{name} <{agent}>", to=address, subject="Re: " + notification.message["Subject"],
                     body=body, in_reply_to=notification.message["Message-ID"], **headers)
    await receive_email(raw, to=address, mail_from=agent)


async def ticket(gateway: Gateway, ref: int = 1001) -> Ticket:
    def _look(session: Session):
        return (session.scalars(select(Ticket).where(Ticket.ref == ref))).one()

    return await gateway.db.read(orm(_look))


async def messages(gateway: Gateway, ref: int = 1001) -> list[Message]:
    def _look(session: Session):
        found = session.scalars(
            select(Message).join(Ticket, Ticket.id == Message.ticket_id).where(Ticket.ref == ref).order_by(Message.id)
        )
        return list(found.all())

    return await gateway.db.read(orm(_look))


async def audit(gateway: Gateway, prefix: str = "ticket.") -> list[tuple[str, dict[str, Any]]]:
    def _look(session: Session):
        rows = session.scalars(select(AuditEvent).where(AuditEvent.event.startswith(prefix)).order_by(AuditEvent.id))
        return [(row.event, row.detail) for row in rows]

    return await gateway.db.read(orm(_look))


async def outbox_kinds(gateway: Gateway) -> list[tuple[str, list[str]]]:
    def _look(session: Session):
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [(row.kind, row.rcpt_tos) for row in rows]

    return await gateway.db.read(orm(_look))
