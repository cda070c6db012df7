"""routes and webhooks: mail routes, webhook endpoints and the webhook event queue

Routes are data: each matches recipients (and optionally a header) in priority order and
makes a ticket, posts to a webhook endpoint, or both. Webhook events are rows of a leased
queue, written in the transaction of the change they report.

Revision ID: h19_routes_webhooks
Revises: h20_inbound_send_mail
Create Date: 2026-12-06 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "h19_routes_webhooks"
down_revision: str | None = "h20_inbound_send_mail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhook_endpoint",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("public_id", sa.String(32), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("secret_version", sa.Integer(), nullable=False),
        sa.Column("previous_valid_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_endpoint"),
        sa.UniqueConstraint("public_id", name="uq_webhook_endpoint_public_id"),
    )
    op.create_table(
        "mail_route",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("public_id", sa.String(32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("match", sa.String(12), nullable=False),
        sa.Column("pattern", sa.String(320), nullable=False),
        sa.Column("header_name", sa.String(200), nullable=True),
        sa.Column("header_contains", sa.String(998), nullable=True),
        sa.Column("mailbox_id", _BIG_ID, nullable=True),
        sa.Column("endpoint_id", _BIG_ID, nullable=True),
        sa.Column("payload_format", sa.String(8), nullable=False),
        sa.Column("stop", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mail_route"),
        sa.UniqueConstraint("public_id", name="uq_mail_route_public_id"),
        sa.ForeignKeyConstraint(["mailbox_id"], ["mailbox.id"], name="fk_mail_route_mailbox_id_mailbox"),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["webhook_endpoint.id"], name="fk_mail_route_endpoint_id_webhook_endpoint"
        ),
    )
    op.create_table(
        "webhook_event",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("public_id", sa.String(40), nullable=False),
        sa.Column("endpoint_id", _BIG_ID, nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("ordering_key", sa.String(40), nullable=True),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_event"),
        sa.UniqueConstraint("public_id", name="uq_webhook_event_public_id"),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["webhook_endpoint.id"], name="fk_webhook_event_endpoint_id_webhook_endpoint"
        ),
    )
    op.create_index("ix_webhook_event_claim", "webhook_event", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_event_order", "webhook_event", ["endpoint_id", "ordering_key", "id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_event_order", table_name="webhook_event")
    op.drop_index("ix_webhook_event_claim", table_name="webhook_event")
    op.drop_table("webhook_event")
    op.drop_table("mail_route")
    op.drop_table("webhook_endpoint")
