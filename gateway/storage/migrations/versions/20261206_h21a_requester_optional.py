"""requester optional: a ticket whose mail had no usable sender has no requester (yet)

Revision ID: h21a_requester_optional
Revises: h23i_languages
Create Date: 2026-12-06 10:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "h21a_requester_optional"
down_revision: str | None = "h23i_languages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch_op:
        batch_op.alter_column("requester_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                              nullable=True)
        batch_op.add_column(sa.Column("unclear_from", sa.Text(), nullable=True))


def downgrade() -> None:
    # Tickets without a requester cannot go back to a schema that requires one: downgrading
    # fails on them, rather than inventing a contact.
    with op.batch_alter_table("ticket") as batch_op:
        batch_op.drop_column("unclear_from")
        batch_op.alter_column("requester_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                              nullable=False)
