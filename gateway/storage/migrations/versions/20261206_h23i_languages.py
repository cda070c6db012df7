"""languages: a contact's language and time zone, a mailbox's default language

Revision ID: h23i_languages
Revises: h19v_sender_verdicts
Create Date: 2026-12-06 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "h23i_languages"
down_revision: str | None = "h19v_sender_verdicts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact") as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(16), nullable=True))
        batch_op.add_column(sa.Column("time_zone", sa.String(64), nullable=True))
    with op.batch_alter_table("mailbox") as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mailbox") as batch_op:
        batch_op.drop_column("language")
    with op.batch_alter_table("contact") as batch_op:
        batch_op.drop_column("time_zone")
        batch_op.drop_column("language")
