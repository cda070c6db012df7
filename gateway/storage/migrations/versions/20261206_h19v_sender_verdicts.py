"""sender verdicts: the HELO name on inbound mail, SPF/DKIM/DMARC/ARC verdicts on messages

`inbound_email.helo` keeps the EHLO/HELO name the SMTP client gave (SPF checks it for the
null sender of bounces); `message.sender_verdicts` holds the verdicts as one JSON value
(shape in gateway/mail/verdicts.py). Both are NULL on existing rows: mail stored before
the checks was never checked, and saying so is the truth. Written by hand; batch mode on
SQLite.

Revision ID: h19v_sender_verdicts
Revises: 20261206_h18b_ownership_digest
Create Date: 2026-12-06 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "h19v_sender_verdicts"
down_revision: str | None = "20261206_h18b_ownership_digest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_email") as batch_op:
        batch_op.add_column(sa.Column("helo", sa.String(length=255), nullable=True))
    with op.batch_alter_table("message") as batch_op:
        batch_op.add_column(sa.Column("sender_verdicts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message") as batch_op:
        batch_op.drop_column("sender_verdicts")
    with op.batch_alter_table("inbound_email") as batch_op:
        batch_op.drop_column("helo")
