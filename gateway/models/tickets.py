"""Contacts, agents, tickets, their participants, messages and attachments.

A Ticket belongs to one Mailbox and carries two names: `ref`, a short number per mailbox
for subjects ("[#1001]"), and `public_id`, a random id for URLs. Every Message records
which threading rule attached it (`thread_rule`) and how it was classified, so an agent
can see why mail landed where it did. `(mailbox_id, dedupe_key)` is unique: the same mail
delivered twice becomes one message.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.models.base import Base, BigId, UTCDateTime, created_column, public_id_column, utcnow

if TYPE_CHECKING:
    from gateway.mail.parse.display import DisplayHtml


class Contact(Base):
    """A customer, identified by email address."""

    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = public_id_column()
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = created_column()
    # The portal's and the customer mails' language and time zone; None: not chosen yet
    # (gateway.i18n.choose_language falls back to the browser, then the mailbox).
    language: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str | None] = mapped_column(String(64))


class Agent(Base):
    """A member of the support team; agents work by email, not in the portal."""

    __tablename__ = "agent"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = created_column()


class TicketStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Ticket(Base):
    """A conversation with a customer, its status, and the team's bookkeeping on it.

    `owner_agent_id` is the agent who answers it (the first to reply, unless assigned);
    `status_changed_at` dates the current status (the reopen window and the auto-resolve of
    pending tickets count from it); `previous_ticket_id` links a ticket opened by a reply
    that came after its old ticket's reopen window (docs/architecture.md, "Ticket status").
    `requester_id` is None, and `flag` says `sender_unclear`, until an agent names the
    requester of a ticket whose mail had no usable sender address.
    """

    __tablename__ = "ticket"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "ref"),
        # A requester's tickets: the acknowledgement cap (their recent ones) and tickets shared
        # through an account.
        Index("ix_ticket_requester", "requester_id", "created_at"),
        # The periodic jobs and the digest ask for tickets by status and age.
        Index("ix_ticket_status_changed", "status", "status_changed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = public_id_column()
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id"))
    ref: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default=TicketStatus.OPEN)
    # None while the ticket's mail named no usable sender: no contact is made up for it
    # (docs/architecture.md, "Mail with no usable sender"); `unclear_from` keeps what its
    # From header said, escaped, for the team.
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    unclear_from: Mapped[str | None] = mapped_column(Text)
    flag: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_column()
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the latest resolution's moment
    owner_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    priority: Mapped[str] = mapped_column(String(8), default=TicketPriority.NORMAL, server_default="normal")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    previous_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"))

    requester: Mapped[Contact | None] = relationship(lazy="raise")


class ParticipantRole(StrEnum):
    REQUESTER = "requester"
    CC = "cc"


class TicketParticipant(Base):
    __tablename__ = "ticket_participant"
    __table_args__ = (
        UniqueConstraint("ticket_id", "contact_id"),
        Index("ix_ticket_participant_contact", "contact_id", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    role: Mapped[str] = mapped_column(String(12), default=ParticipantRole.CC)
    created_at: Mapped[datetime] = created_column()


class AuthorType(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    SYSTEM = "system"


class Message(Base):
    """One message on a ticket: inbound mail, an agent reply or an internal note."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "dedupe_key"),
        Index("ix_message_ticket", "ticket_id", "id"),
        # Threading by Message-ID looks up one mailbox's messages (gateway/inbound/conversations.py).
        Index("ix_message_mailbox_rfc_message_id", "mailbox_id", "rfc_message_id"),
        # The portal's ticket list asks, per ticket, for the customer thread's latest time and
        # whether someone else wrote since the contact looked: answered from this index alone,
        # without reading message rows and their bodies (gateway/tickets/lists.py).
        Index(
            "ix_message_ticket_thread", "ticket_id", "internal", "classification", "author_contact_id", "created_at"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = public_id_column()
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id"))
    dedupe_key: Mapped[str] = mapped_column(String(80))
    inbound_email_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_email.id"))
    direction: Mapped[str] = mapped_column(String(8), default="in")
    author_type: Mapped[str] = mapped_column(String(12), default=AuthorType.CUSTOMER)
    author_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    author_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    classification: Mapped[str] = mapped_column(String(16), default="normal")
    thread_rule: Mapped[str] = mapped_column(String(16))
    rfc_message_id: Mapped[str | None] = mapped_column(String(998))
    in_reply_to: Mapped[list[str]] = mapped_column(JSON, default=list)
    references: Mapped[list[str]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    from_email: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(String(200), default="")
    to: Mapped[list[str]] = mapped_column(JSON, default=list)
    cc: Mapped[list[str]] = mapped_column(JSON, default=list)
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str | None] = mapped_column(Text)  # as sent: never shown, only downloaded
    # The HTML readers are shown, sanitized once when the mail was parsed
    # (gateway.mail.parse.display): the new part and the quoted history, both "" when there is
    # nothing to show as HTML, and `html_too_large` when the HTML was over the display limit
    # (readers get the text and the original as a download). NULL for customer mail stored
    # before this column existed: the portal sanitizes it on first view and keeps the result.
    display_html: Mapped[str | None] = mapped_column(Text)
    display_quoted_html: Mapped[str] = mapped_column(Text, default="", server_default="")
    html_too_large: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reply_text: Mapped[str] = mapped_column(Text, default="")
    quoted_text: Mapped[str] = mapped_column(Text, default="")
    defects: Mapped[list[str]] = mapped_column(JSON, default=list)
    # SPF, DKIM, DMARC and ARC as checked when the mail came in (gateway/mail/verdicts.py has the
    # shape); NULL when it was never checked (agent replies, notes, the portal's own submissions).
    sender_verdicts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_column()

    attachments: Mapped[list[Attachment]] = relationship(lazy="raise", order_by="Attachment.id")

    @property
    def display(self) -> DisplayHtml:
        # Imported here: the tables load without the mail parser (a CLI listing tickets needs none).
        from gateway.mail.parse.display import DisplayHtml

        return DisplayHtml(self.display_html or "", self.display_quoted_html, self.html_too_large)

    @display.setter
    def display(self, shown: DisplayHtml) -> None:
        """Store what `gateway.mail.parse.display` made of the message's HTML (also a constructor keyword)."""
        self.display_html, self.display_quoted_html = shown.body, shown.quoted
        self.html_too_large = shown.too_large


class Attachment(Base):
    __tablename__ = "attachment"
    __table_args__ = (Index("ix_attachment_message", "message_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = public_id_column()
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content_id: Mapped[str | None] = mapped_column(String(998))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class RatingLink(Base):
    """One "How did we do?" link mailed with a resolution: the HMAC of its token, never the token."""

    __tablename__ = "rating_link"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the resolution it asks about
    key_id: Mapped[str] = mapped_column(String(16))
    token_hmac: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_column()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SatisfactionRating(Base):
    """A customer's verdict on one resolution of a ticket: good or bad, with an optional comment."""

    __tablename__ = "satisfaction_rating"
    __table_args__ = (UniqueConstraint("ticket_id", "resolved_at"),)  # one rating per resolution

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime())
    good: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = created_column()
