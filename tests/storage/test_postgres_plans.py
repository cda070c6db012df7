"""On PostgreSQL a statement is planned for its parameters every time it runs.

A plan cached while the tables were nearly empty (a sequential scan is cheapest then)
would otherwise stay in use as they grow, until PostgreSQL analyzes them again: the
duplicate check on every inbound message slowed processing by half within 12,000
messages (docs/architecture.md, "Reaching the database").
"""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

import gateway.inbound.delivery  # noqa: F401 - registers the duplicate check
from gateway.models import Mailbox
from gateway.storage import statements
from gateway.storage.database import Database


async def test_a_repeated_statement_is_planned_for_its_parameters_never_generically(
    db: Database, mailbox: Mailbox
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL's plan cache")

    def run(session: Session) -> list[tuple[int, int]]:
        connection = session.connection()
        for number in range(12):  # PostgreSQL considers a generic plan after the fifth run
            statements.rows("delivery.duplicate", connection, {"mailbox_id": mailbox.id, "key": f"key-{number}"})
        found = connection.exec_driver_sql(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE 'SELECT message.id, message.ticket_id%dedupe_key%'"
        )
        return [(generic, custom) for generic, custom in found]

    plans = await db.write(run)
    assert plans and all(generic == 0 and custom >= 12 for generic, custom in plans), plans
