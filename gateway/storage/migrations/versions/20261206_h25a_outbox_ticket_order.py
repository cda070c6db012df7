"""outbox ticket order: a ticket's sent mail indexed in the order it was written

The thread of every outbound email reads the oldest and newest mail sent for its ticket;
with the row id after the ticket in the index, each end is a short walk from one side,
however much was sent for the ticket. The acknowledgement cap, which read this index by
kind and time, reads the few rows of the tickets opened in its window.

Revision ID: h25a_outbox_ticket_order
Revises: h24a_requester_opened
Create Date: 2026-12-06 18:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "h25a_outbox_ticket_order"
down_revision: str | None = "h24a_requester_opened"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_outbox_message_ticket", table_name="outbox_message")
    op.create_index("ix_outbox_message_ticket", "outbox_message", ["ticket_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_message_ticket", table_name="outbox_message")
    op.create_index("ix_outbox_message_ticket", "outbox_message", ["ticket_id", "kind", "created_at"])
