"""requester opened: a requester's tickets indexed by when they were opened

The acknowledgement cap counts a requester's recent acknowledgements through their
tickets opened in the window; with the opening time in the index it reads those tickets
only, not every ticket the requester ever opened.

Revision ID: h24a_requester_opened
Revises: h21a_requester_optional
Create Date: 2026-12-06 16:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "h24a_requester_opened"
down_revision: str | None = "h21a_requester_optional"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_ticket_requester", table_name="ticket")
    op.create_index("ix_ticket_requester", "ticket", ["requester_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_requester", table_name="ticket")
    op.create_index("ix_ticket_requester", "ticket", ["requester_id"])
