"""exposed secrets: codes looked up by HMAC

A code-shaped word in inbound mail is removed (and its link burned) only when it is a code
Wicket issued, to any contact; ix_magic_link_code_hmac answers that lookup without reading
the whole table. Written by hand; plain CREATE/DROP INDEX, the same on SQLite and
PostgreSQL.

Revision ID: 0006_exposed_secrets
Revises: 0004_message_thread_index
Create Date: 2026-12-06 04:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_exposed_secrets"
down_revision: str | None = "0004_message_thread_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_magic_link_code_hmac", "magic_link", ["code_hmac"])


def downgrade() -> None:
    op.drop_index("ix_magic_link_code_hmac", table_name="magic_link")
