"""`wicket status`: how deep each queue is, and the latest inbound mail that failed.

The depths are gateway/metrics.py's `queue_depths`, the numbers `/metrics` exports; the
failures are inbound rows marked failed, with their attempts, next retry (or dead letter,
which `wicket replay --failed` takes again) and last error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gateway.cli.support import console, on_database, run_async

if TYPE_CHECKING:
    from gateway.models import InboundEmail
    from gateway.storage.database import Database


@click.command()
@click.option("--errors", default=5, show_default=True, help="How many recent failures to show.")
@run_async
async def status(errors: int) -> None:
    """Backlog, failures and the last errors."""
    from rich.table import Table
    from sqlalchemy import select

    from gateway.metrics import queue_depths
    from gateway.models import InboundEmail, InboundStatus
    from gateway.storage.database import orm

    async def action(database: Database) -> tuple[dict[str, int], list[InboundEmail]]:
        depths = await queue_depths(database)
        recent = select(InboundEmail).where(InboundEmail.status == InboundStatus.FAILED)
        recent = recent.order_by(InboundEmail.id.desc()).limit(errors)
        failed = await database.read(orm(lambda session: list(session.scalars(recent))))
        return depths, failed

    depths, failed = await on_database(action)
    table = Table("queue", "count")
    for name, count in depths.items():
        table.add_row(name.replace("_", " "), str(count))
    console().print(table)
    for row in failed:
        retry = "dead-lettered" if row.next_attempt_at is None else f"retry at {row.next_attempt_at:%H:%M:%S}"
        console().print(
            f"#{row.id} from {row.mail_from or '<>'} ({row.attempts} attempts, {retry}): {row.last_error}",
            markup=False,
            highlight=False,
        )
