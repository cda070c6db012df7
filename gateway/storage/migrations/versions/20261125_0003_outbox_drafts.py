"""outbox rows may hold a draft that the delivery worker renders

Revision ID: 0003_outbox_drafts
Revises: 0002_growth_indexes
Create Date: 2026-11-25 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_outbox_drafts"
down_revision: str | None = "0002_growth_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch_op:
        batch_op.add_column(sa.Column("draft", sa.JSON(), nullable=True))
        batch_op.alter_column("raw", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    # Drafts not rendered yet cannot be kept without their bytes: render them first
    # (let the outbox worker drain) before downgrading.
    op.execute("DELETE FROM outbox_message WHERE raw IS NULL")
    with op.batch_alter_table("outbox_message") as batch_op:
        batch_op.alter_column("raw", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column("draft")
