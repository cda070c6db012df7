"""Who on the team works which mailbox, what they are told about, and their API keys.

`MailboxMembership` makes an agent one of a mailbox's agents and holds that agent's
notification preferences for it: new tickets, customer messages, which tickets at all
(`notify_policy`: every ticket, only theirs and unassigned ones, only theirs) and whether
they want the daily digest. `AgentDigest` records each digest queued (one per agent,
mailbox and day), so a digest goes out once whatever restarts or nodes run the job. `AgentApiKey` keeps only
a SHA-256 digest of a key for the agent JSON API; the key itself is shown once, when it is
created, and its short public `prefix` finds the row without scanning digests.
"""

from __future__ import annotations

from datetime import date, datetime

from enum import StrEnum

from sqlalchemy import Boolean, Date, ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import Base, BigId, UTCDateTime, created_column


class NotifyPolicy(StrEnum):
    ALL = "all"  # every ticket of the mailbox
    MINE_AND_UNASSIGNED = "mine_and_unassigned"
    MINE = "mine"  # only tickets the agent owns


class MailboxMembership(Base):
    __tablename__ = "mailbox_membership"
    __table_args__ = (UniqueConstraint("mailbox_id", "agent_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id"))
    notify_new_ticket: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_customer_message: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_policy: Mapped[str] = mapped_column(String(24), default=NotifyPolicy.ALL, server_default="all")
    daily_digest: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = created_column()


class AgentDigest(Base):
    """A daily digest queued for one agent and mailbox on one (UTC) day."""

    __tablename__ = "agent_digest"
    __table_args__ = (UniqueConstraint("agent_id", "mailbox_id", "day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id"))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id"))
    day: Mapped[date] = mapped_column(Date)
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
