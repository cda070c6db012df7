"""ownership, priority, tags, status dates, linked tickets, notification policy, daily digest

A ticket gains an optional owner, a priority, tags, the time its status last changed
(the reopen window and the auto-resolve of pending tickets count from it) and the ticket a
late reply continues. A mailbox membership gains the agent's notification policy and the
daily-digest opt-in; a mailbox the hour its digest goes out; agent_digest records each
digest queued, one per agent, mailbox and day.

Revision ID: 20261206_h18b_ownership_digest
Revises: h23a_satisfaction
Create Date: 2026-12-06 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.models.base import UTCDateTime

revision: str = "20261206_h18b_ownership_digest"
down_revision: str | None = "h23a_satisfaction"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch_op:
        batch_op.add_column(sa.Column("owner_agent_id", _BIG_ID, nullable=True))
        batch_op.add_column(sa.Column("priority", sa.String(8), nullable=False, server_default="normal"))
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("status_changed_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("previous_ticket_id", _BIG_ID, nullable=True))
        batch_op.create_foreign_key("fk_ticket_owner_agent_id_agent", "agent", ["owner_agent_id"], ["id"])
        batch_op.create_foreign_key("fk_ticket_previous_ticket_id_ticket", "ticket", ["previous_ticket_id"], ["id"])
        batch_op.create_index("ix_ticket_status_changed", ["status", "status_changed_at"])
    op.execute("UPDATE ticket SET status_changed_at = last_activity_at")
    with op.batch_alter_table("mailbox_membership") as batch_op:
        batch_op.add_column(sa.Column("notify_policy", sa.String(24), nullable=False, server_default="all"))
        batch_op.add_column(sa.Column("daily_digest", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("mailbox") as batch_op:
        batch_op.add_column(sa.Column("digest_hour", sa.Integer(), nullable=False, server_default="8"))
    op.create_table(
        "agent_digest",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("agent_id", _BIG_ID, sa.ForeignKey("agent.id"), nullable=False),
        sa.Column("mailbox_id", _BIG_ID, sa.ForeignKey("mailbox.id"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("agent_id", "mailbox_id", "day"),
    )


def downgrade() -> None:
    op.drop_table("agent_digest")
    with op.batch_alter_table("mailbox") as batch_op:
        batch_op.drop_column("digest_hour")
    with op.batch_alter_table("mailbox_membership") as batch_op:
        batch_op.drop_column("daily_digest")
        batch_op.drop_column("notify_policy")
    with op.batch_alter_table("ticket") as batch_op:
        batch_op.drop_index("ix_ticket_status_changed")
        batch_op.drop_constraint("fk_ticket_previous_ticket_id_ticket", type_="foreignkey")
        batch_op.drop_constraint("fk_ticket_owner_agent_id_agent", type_="foreignkey")
        for column in ("previous_ticket_id", "status_changed_at", "tags", "priority", "owner_agent_id"):
            batch_op.drop_column(column)
