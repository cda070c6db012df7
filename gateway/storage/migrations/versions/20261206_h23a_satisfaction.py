"""satisfaction: "How did we do?" links and the ratings they collect, one per resolution

A ticket remembers when it was last resolved (ticket.resolved_at); a rating link mailed
with that resolution keeps only the HMAC of its token; a rating is unique per ticket and
resolution.

Revision ID: h23a_satisfaction
Revises: h23a_pending_request
Create Date: 2026-12-06 07:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.models.base import UTCDateTime

revision: str = "h23a_satisfaction"
down_revision: str | None = "h23a_pending_request"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch_op:
        batch_op.add_column(sa.Column("resolved_at", UTCDateTime(), nullable=True))
    op.create_table(
        "rating_link",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", _BIG_ID, sa.ForeignKey("ticket.id"), nullable=False),
        sa.Column("contact_id", _BIG_ID, sa.ForeignKey("contact.id"), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("token_hmac", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "satisfaction_rating",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", _BIG_ID, sa.ForeignKey("ticket.id"), nullable=False),
        sa.Column("contact_id", _BIG_ID, sa.ForeignKey("contact.id"), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=False),
        sa.Column("good", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("ticket_id", "resolved_at"),
    )


def downgrade() -> None:
    op.drop_table("satisfaction_rating")
    op.drop_table("rating_link")
    with op.batch_alter_table("ticket") as batch_op:
        batch_op.drop_column("resolved_at")
