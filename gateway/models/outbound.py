"""The durable outbox: every email Wicket sends is a row first.

A row is written in the same transaction as the change that caused it, holding either a
finished message without secrets (`raw`) or a draft (ticket mail, sign-in mail) that the
delivery worker renders at each attempt, with a fresh magic link (`link_id`), keeping in
`raw` only the copy with the link and code replaced (gateway/outbound/drafts.py): no row holds a
usable token or code. The delivery worker (gateway/outbound/outbox.py) claims rows with a lease,
hands them to the configured Sender, and records sent, a retry with backoff, or a
permanent failure that the ticket shows.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import Base, BigId, UTCDateTime, created_column, public_id_column, utcnow


class OutboxStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"


class OutboxMessage(Base):
    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_message_claim", "status", "id", "next_attempt_at"),  # a claim walks each status by id
        Index("ix_outbox_message_rfc_message_id", "rfc_message_id"),
        # A requester's recent acknowledgements, ticket by ticket (gateway/outbound/notify.py).
        Index("ix_outbox_message_ticket", "ticket_id", "kind", "created_at"),
        # A ticket's sent mail from either end (threading headers; gateway/outbound/threads.py).
        Index("ix_outbox_message_ticket_order", "ticket_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = public_id_column()
    kind: Mapped[str] = mapped_column(String(24))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_tos: Mapped[list[str]] = mapped_column(JSON)
    rfc_message_id: Mapped[str] = mapped_column(String(998))
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    draft: Mapped[dict[str, object] | None] = mapped_column(JSON)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("magic_link.id"))  # the last attempt's link
    status: Mapped[str] = mapped_column(String(12), default=OutboxStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_column()
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
