"""exposed secrets: codes looked up by HMAC, and sent mail kept without its link

A code-shaped word in inbound mail is removed (and its link burned) only when it is a code
Wicket issued, to any contact; ix_magic_link_code_hmac answers that lookup without reading
the whole table. Mail with a magic link is now rendered at every delivery attempt and the
row keeps only a copy with the link and code replaced; outbox_message.link_id names the
link the last attempt issued, so a retry can revoke it. Copies stored before this
revision still hold live links: those of mail already sent or given up on are dropped
(their drafts stay), and mail still waiting is rendered afresh when it is sent.

Revision ID: 0006_exposed_secrets
Revises: 0005_message_display_html
Create Date: 2026-12-06 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_exposed_secrets"
down_revision: str | None = "0005_message_display_html"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index("ix_magic_link_code_hmac", "magic_link", ["code_hmac"])
    with op.batch_alter_table("outbox_message") as batch_op:
        batch_op.add_column(sa.Column("link_id", _BIG_ID, nullable=True))
        batch_op.create_foreign_key("fk_outbox_message_link_id_magic_link", "magic_link", ["link_id"], ["id"])
    op.execute(
        "UPDATE outbox_message SET raw = NULL"
        " WHERE (draft IS NOT NULL OR kind = 'signin') AND status NOT IN ('queued', 'sending')"
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox_message") as batch_op:
        batch_op.drop_constraint("fk_outbox_message_link_id_magic_link", type_="foreignkey")
        batch_op.drop_column("link_id")
    op.drop_index("ix_magic_link_code_hmac", table_name="magic_link")
