"""pending requests: a new customer's request waiting for the link mailed to their address

Revision ID: h23a_pending_request
Revises: h19_routes_webhooks
Create Date: 2026-12-06 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.models.base import UTCDateTime

revision: str = "h23a_pending_request"
down_revision: str | None = "h19_routes_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pending_request",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("mailbox_id", _BIG_ID, sa.ForeignKey("mailbox.id"), nullable=False),
        sa.Column("contact_id", _BIG_ID, sa.ForeignKey("contact.id"), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link_id", _BIG_ID, sa.ForeignKey("magic_link.id"), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_pending_request_link_id", "pending_request", ["link_id"])


def downgrade() -> None:
    op.drop_index("ix_pending_request_link_id", table_name="pending_request")
    op.drop_table("pending_request")
