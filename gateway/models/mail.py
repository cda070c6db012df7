"""Mailboxes (the addresses Wicket receives for) and InboundEmail, the durable raw store.

A Mailbox is also a brand: the portal reached on its `custom_domain` (the Host header) is
drawn with its name, logo, colours and footer links; empty brand columns fall back to the
mailbox name and the colour settings.

An InboundEmail row is written, with the exact bytes and the SMTP envelope, before the
client hears 250. Processing then moves it through the statuses below; the row is never
deleted, so every message that was acknowledged can be replayed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import Base, BigId, UTCDateTime, created_column, utcnow


class Mailbox(Base):
    """A shared inbox such as support@example.test; tickets are numbered per mailbox."""

    __tablename__ = "mailbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    next_ref: Mapped[int] = mapped_column(Integer, default=1001)
    auto_acknowledge: Mapped[bool] = mapped_column(Boolean, default=True)
    # The hour (UTC, 0-23) after which the agents who asked for it get the daily digest.
    digest_hour: Mapped[int] = mapped_column(Integer, default=8, server_default="8")
    created_at: Mapped[datetime] = created_column()
    # The brand: shown by the portal on `custom_domain`; empty means "use the default".
    brand_name: Mapped[str | None] = mapped_column(String(200))
    logo_url: Mapped[str | None] = mapped_column(String(2000))
    primary_color: Mapped[str | None] = mapped_column(String(7))
    accent_color: Mapped[str | None] = mapped_column(String(7))
    # The language of customers who chose none and whose browser asks for none Wicket speaks.
    language: Mapped[str | None] = mapped_column(String(16))
    custom_domain: Mapped[str | None] = mapped_column(String(253), unique=True)
    footer_links: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    @property
    def display_name(self) -> str:
        """The name mail and portal pages show: the brand's name, else the mailbox's."""
        return self.brand_name or self.name

    @property
    def local_part(self) -> str:
        return self.address.rsplit("@", 1)[0]

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]


class InboundStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DELIVERED = "delivered"
    FAILED = "failed"
    BOUNCED = "bounced"
    IGNORED = "ignored"


class InboundEmail(Base):
    """One accepted SMTP transaction (or replayed file), exactly as received."""

    __tablename__ = "inbound_email"
    __table_args__ = (
        Index("ix_inbound_email_claim", "status", "id", "next_attempt_at"),  # a claim walks each status by id
        Index("ix_inbound_email_message_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(998))
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_tos: Mapped[list[str]] = mapped_column(JSON)
    peer: Mapped[str] = mapped_column(String(100))
    helo: Mapped[str | None] = mapped_column(String(255))  # the EHLO/HELO name (SPF for bounces); NULL when not SMTP
    source: Mapped[str] = mapped_column(String(16), default="smtp")
    # False for replayed mail: processed the same way, but nobody is mailed about it.
    send_mail: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(12), default=InboundStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(Text)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))
