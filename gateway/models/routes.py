"""Routes, webhook endpoints and webhook events: what Wicket pushes to other programs.

A `MailRoute` matches an envelope recipient (exactly, as the base of a plus-tagged address,
by domain, or as a catch-all of the domains Wicket receives for) and optionally a header,
in priority order; it makes a ticket in a mailbox, posts the message to a webhook
endpoint, or both, and may stop the routes after it. A `WebhookEndpoint` is a URL with the
event types it wants; its signing secrets are derived from a server key and a version
number (gateway/outbound/webhooks/endpoints.py), so no column holds a usable secret, and
the previous version stays valid until `previous_valid_until` while receivers rotate. A
`WebhookEvent` is one event for one endpoint, written in the transaction of the change it
reports and delivered from the leased queue (gateway/storage/queue.py); its `public_id`
is the `webhook-id` receivers deduplicate by, and `ordering_key` (the ticket) keeps one
ticket's events in order per endpoint.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import Base, BigId, UTCDateTime, created_column, public_id_column, utcnow


class RouteMatch(StrEnum):
    EXACT = "exact"  # the address itself
    PLUS = "plus"  # the address and its plus-tagged forms (the tag is the payload's mailbox_hash)
    DOMAIN = "domain"  # every address at the domain
    CATCH_ALL = "catch_all"  # every address at a domain Wicket already receives for


class PayloadFormat(StrEnum):
    JSON = "json"  # the parsed message (docs/architecture.md, "Webhooks")
    RAW = "raw"  # the message as received, message/rfc822


class MailRoute(Base):
    __tablename__ = "mail_route"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = public_id_column()
    priority: Mapped[int] = mapped_column(Integer, default=100)  # lower runs first
    match: Mapped[str] = mapped_column(String(12))
    pattern: Mapped[str] = mapped_column(String(320), default="")  # address or domain, lower case
    header_name: Mapped[str | None] = mapped_column(String(200))
    header_contains: Mapped[str | None] = mapped_column(String(998))  # case-insensitive substring
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailbox.id"))  # the ticket action
    endpoint_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_endpoint.id"))  # the webhook action
    payload_format: Mapped[str] = mapped_column(String(8), default=PayloadFormat.JSON)
    stop: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = created_column()


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoint"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = public_id_column()
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    events: Mapped[list[str]] = mapped_column(JSON, default=list)  # ticket and delivery events it wants
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # False once it answered 410 Gone
    key_id: Mapped[str] = mapped_column(String(16))  # the server key its secrets derive from
    secret_version: Mapped[int] = mapped_column(Integer, default=1)
    previous_valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_column()


class WebhookStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    DEAD = "dead"


class WebhookEvent(Base):
    __tablename__ = "webhook_event"
    __table_args__ = (
        Index("ix_webhook_event_claim", "status", "id", "next_attempt_at"),  # a claim walks each status by id
        Index("ix_webhook_event_order", "endpoint_id", "ordering_key", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # the `webhook-id` header
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoint.id"))
    event_type: Mapped[str] = mapped_column(String(40))
    ordering_key: Mapped[str | None] = mapped_column(String(40))
    content_type: Mapped[str] = mapped_column(String(40), default="application/json")
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(12), default=WebhookStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    response_status: Mapped[int | None] = mapped_column(Integer)  # the last answer's HTTP status
    created_at: Mapped[datetime] = created_column()
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
