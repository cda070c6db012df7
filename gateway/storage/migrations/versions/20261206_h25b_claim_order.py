"""claim order: the queues' claim indexes ordered by row id within each status

A claim takes the oldest due rows of each waiting status; with the id after the status
in the index, it walks them in order and stops after a batch, where it read and sorted
the whole backlog before. Settling a row (status and id) becomes one index probe, which
the planner can no longer mistake for a walk through every leased row's index entries.

Revision ID: h25b_claim_order
Revises: h25a_outbox_ticket_order
Create Date: 2026-12-06 19:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "h25b_claim_order"
down_revision: str | None = "h25a_outbox_ticket_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_QUEUES = ("inbound_email", "outbox_message", "webhook_event")


def upgrade() -> None:
    for table in _QUEUES:
        op.drop_index(f"ix_{table}_claim", table_name=table)
        op.create_index(f"ix_{table}_claim", table, ["status", "id", "next_attempt_at"])


def downgrade() -> None:
    for table in _QUEUES:
        op.drop_index(f"ix_{table}_claim", table_name=table)
        op.create_index(f"ix_{table}_claim", table, ["status", "next_attempt_at"])
