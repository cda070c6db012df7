"""growth indexes: lookups that stay cheap with a million stored messages

Threading by Message-ID searches one mailbox's messages by (mailbox_id, rfc_message_id);
the single-column index it replaces let SQLite's planner pick the (mailbox_id,
dedupe_key) unique index instead and walk every message of the mailbox. A ticket's sent
mail (threading headers of outbound mail) and a requester's recent acknowledgements (the
acknowledgement cap) are found through outbox_message (ticket_id, kind, created_at) and
ticket (requester_id) instead of scanning the outbox. Written by hand; plain CREATE/DROP
INDEX, the same on SQLite and PostgreSQL.

Revision ID: 0002_growth_indexes
Revises: 6efb54d92883
Create Date: 2026-11-25 16:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_growth_indexes"
down_revision: str | None = "6efb54d92883"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_message_mailbox_rfc_message_id", "message", ["mailbox_id", "rfc_message_id"])
    op.drop_index("ix_message_rfc_message_id", table_name="message")
    op.create_index("ix_outbox_message_ticket", "outbox_message", ["ticket_id", "kind", "created_at"])
    op.create_index("ix_ticket_requester", "ticket", ["requester_id"])


def downgrade() -> None:
    op.drop_index("ix_ticket_requester", table_name="ticket")
    op.drop_index("ix_outbox_message_ticket", table_name="outbox_message")
    op.create_index("ix_message_rfc_message_id", "message", ["rfc_message_id"])
    op.drop_index("ix_message_mailbox_rfc_message_id", table_name="message")
