"""Who on the team works which mailbox, what they are told about, and their API keys.

`MailboxMembership` makes an agent one of a mailbox's agents and holds that agent's
notification preferences for it (new tickets, customer messages). `AgentApiKey` keeps only
a SHA-256 digest of a key for the agent JSON API; the key itself is shown once, when it is
created, and its short public `prefix` finds the row without scanning digests.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import Base, BigId, UTCDateTime, created_column


class MailboxMembership(Base):
    __tablename__ = "mailbox_membership"
    __table_args__ = (UniqueConstraint("mailbox_id", "agent_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id"))
    notify_new_ticket: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_customer_message: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = created_column()


class AgentApiKey(Base):
    __tablename__ = "agent_api_key"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id"))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = created_column()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
