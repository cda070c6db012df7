"""Portal sign-in state: magic links, sessions, passwords, used SSO ids, rate-limit counters, audit.

Nothing here holds a secret in a usable form. A MagicLink keeps HMACs of its token and code
under a named key; a PortalSession keeps a SHA-256 of the random session id in the cookie;
a password is an argon2 hash; a used SSO `jti` and a rate-limit key are stored hashed. An
AuditEvent records who did what, when and from where, never a token or a code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import Base, BigId, UTCDateTime, created_column, utcnow


class MagicLink(Base):
    """One issued sign-in link and its code; single use through `consumed_at`."""

    __tablename__ = "magic_link"
    __table_args__ = (
        Index("ix_magic_link_contact_active", "contact_id", "consumed_at", "expires_at"),
        # Code-shaped words in inbound mail are looked up by their HMAC (any contact's).
        Index("ix_magic_link_code_hmac", "code_hmac"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))
    purpose: Mapped[str] = mapped_column(String(12))
    key_id: Mapped[str] = mapped_column(String(16))
    token_hmac: Mapped[str] = mapped_column(String(64), unique=True)
    code_hmac: Mapped[str] = mapped_column(String(64))
    return_path: Mapped[str | None] = mapped_column(String(2000))
    code_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = created_column()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    burned: Mapped[bool] = mapped_column(Boolean, default=False)


class PendingRequest(Base):
    """A new request typed into the portal by someone not signed in, waiting for its address.

    It becomes a ticket only when the link mailed to `contact`'s address is used (the link's
    id is kept once the confirmation email is sent); `opened_at` makes that happen once.
    """

    __tablename__ = "pending_request"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("magic_link.id"), index=True)
    created_at: Mapped[datetime] = created_column()
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PortalSession(Base):
    """A signed-in browser; the cookie holds a random id, the row only its SHA-256."""

    __tablename__ = "portal_session"
    __table_args__ = (Index("ix_portal_session_contact", "contact_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    method: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_column()
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class ContactPassword(Base):
    """The optional password of a contact, as an argon2id hash."""

    __tablename__ = "contact_password"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UsedSsoToken(Base):
    """A JWT id already exchanged; kept until the JWT expires so it cannot be replayed."""

    __tablename__ = "used_sso_token"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    jti_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class RateLimitCounter(Base):
    """Hits of one hashed key (door + address or IP) in one fixed time window."""

    __tablename__ = "rate_limit_counter"
    __table_args__ = (UniqueConstraint("key_hash", "window_start"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)


class AuditEvent(Base):
    """Who did what, when and from where (`event` is a dotted name like `link.exchanged`)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_contact", "contact_id", "created_at"),
        Index("ix_audit_event_event", "event", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))
    request_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = created_column()
