"""outbox ticket order: a ticket's sent mail indexed in the order it was written

The thread of every outbound email reads the oldest and newest mail sent for its ticket;
with the row id after the ticket in the index, each end is a short walk from one side,
however much was sent for the ticket. The index by ticket, kind and time stays for the
acknowledgement cap, which counts one kind of mail per ticket.

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
    op.create_index("ix_outbox_message_ticket_order", "outbox_message", ["ticket_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_message_ticket_order", table_name="outbox_message")
