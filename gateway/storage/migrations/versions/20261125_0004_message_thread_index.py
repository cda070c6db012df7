"""message thread index: the ticket list's activity and unread probes read no message rows

The portal's ticket list asks two things of every listed ticket's customer thread (no
internal notes, no bounces or loops): the time of its latest message and whether someone
other than the viewer wrote after the viewer last looked. Through ix_message_ticket
(ticket_id, id) each probe read every message row, bodies included; the index on
(ticket_id, internal, classification, author_contact_id, created_at) answers both alone.
Written by hand; plain CREATE/DROP INDEX, the same on SQLite and PostgreSQL.

Revision ID: 0004_message_thread_index
Revises: 0003_outbox_drafts
Create Date: 2026-11-25 22:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_message_thread_index"
down_revision: str | None = "0003_outbox_drafts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_message_ticket_thread",
        "message",
        ["ticket_id", "internal", "classification", "author_contact_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_message_ticket_thread", table_name="message")
