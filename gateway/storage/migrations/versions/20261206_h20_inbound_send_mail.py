"""inbound send_mail: whether processing a stored message may mail anyone

Mail that arrives by SMTP or the portal is answered as usual; a replay of saved mail
(`wicket replay` without `--send-mail`) is processed exactly the same way but queues no
acknowledgement and no notification, so replaying a corpus never mails its senders.

Revision ID: h20_inbound_send_mail
Revises: 0006_exposed_secrets
Create Date: 2026-12-06 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "h20_inbound_send_mail"
down_revision: str | None = "0006_exposed_secrets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_email") as batch_op:
        batch_op.add_column(sa.Column("send_mail", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("inbound_email") as batch_op:
        batch_op.drop_column("send_mail")
