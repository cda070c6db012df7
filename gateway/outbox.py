"""The durable outbox: queueing outbound mail in the caller's transaction.

`enqueue` renders nothing and sends nothing: it stores a finished `EmailMessage` as bytes,
in the same transaction as the ticket change that caused it, so a rolled-back change
sends nothing and a committed one is never forgotten. Delivery is the worker's job.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import Mailbox, Message, OutboxMessage, Ticket, utcnow


async def enqueue(
    session: AsyncSession,
    *,
    mailbox: Mailbox,
    to: list[str],
    email: EmailMessage,
    kind: str,
    ticket: Ticket | None = None,
    message: Message | None = None,
    envelope_from: str | None = None,
) -> OutboxMessage:
    """Queue `email` for delivery to `to`; it must already carry its Message-ID."""
    message_id = email["Message-ID"]
    if not message_id:
        raise ValueError("outbound email needs a Message-ID before it is queued")
    row = OutboxMessage(
        kind=kind,
        mailbox_id=mailbox.id,
        ticket_id=ticket.id if ticket else None,
        message_id=message.id if message else None,
        mail_from=envelope_from or mailbox.address,
        rcpt_tos=to,
        rfc_message_id=str(message_id).strip().strip("<>"),
        raw=email.as_bytes(policy=SMTP),
        next_attempt_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row
