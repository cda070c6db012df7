"""message display html: mail HTML sanitized once, when the mail is processed

Three columns on message: `display_html` (the sanitized new part), `display_quoted_html`
(the sanitized quoted history) and `html_too_large` (the HTML was over the display limit,
so readers get the text version and the original as a download). Existing rows keep
`display_html` NULL and are not sanitized here: a migration that ran the sanitizer over
every stored message would hold the upgrade for as long as that takes (seconds per big
mail) and tie this file to today's sanitizer. The portal instead sanitizes a NULL row
off the event loop the first time someone opens its ticket and stores the result, so
only tickets people look at pay, once. Written by hand; batch mode on SQLite.

Revision ID: 0005_message_display_html
Revises: 0004_message_thread_index
Create Date: 2026-12-06 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_message_display_html"
down_revision: str | None = "0004_message_thread_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch_op:
        batch_op.add_column(sa.Column("display_html", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("display_quoted_html", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("html_too_large", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("message") as batch_op:
        batch_op.drop_column("html_too_large")
        batch_op.drop_column("display_quoted_html")
        batch_op.drop_column("display_html")
