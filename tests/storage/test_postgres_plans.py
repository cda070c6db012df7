"""PostgreSQL's plans stay good as the tables grow and churn.

A statement is planned for its parameters every time it runs: a plan cached while the
tables were nearly empty (a sequential scan is cheapest then) would otherwise stay in use
as they grow, until PostgreSQL analyzes them again. The duplicate check on every inbound
message slowed processing by half within 12,000 messages (docs/architecture.md,
"Reaching the database"). The leased queues' statements read what they take, however
long the backlog and however many dead index entries wait for a vacuum
(docs/architecture.md, "The leased queue").
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import insert, update
from sqlalchemy.orm import Session

import gateway.inbound.delivery  # noqa: F401 - registers the duplicate check
from gateway.inbound.processor import INBOUND_QUEUE
from gateway.models import Base, Mailbox, utcnow
from gateway.outbound.outbox import OUTBOX_QUEUE
from gateway.storage import statements
from gateway.storage.database import Database
from tests.plans import postgres_plan, rows_read


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


def _settled_rows(table: str, mailbox: Mailbox, count: int) -> list[dict[str, object]]:
    now = utcnow()
    common = {"status": "sent" if table == "outbox_message" else "delivered", "attempts": 1,
              "next_attempt_at": None, "rcpt_tos": ["support@example.test"]}  # fmt: skip
    if table == "outbox_message":
        return [{**common, "public_id": f"o{n}", "kind": "notification", "mailbox_id": mailbox.id,
                 "mail_from": "support@example.test", "rfc_message_id": f"m{n}@example.test", "created_at": now}
                for n in range(count)]  # fmt: skip
    return [{**common, "raw": b"x", "sha256": "0" * 64, "mail_from": "a@customer.test", "peer": "127.0.0.1",
             "source": "smtp", "send_mail": True, "received_at": now} for _ in range(count)]  # fmt: skip


@pytest.mark.parametrize(("queue", "table"), [("inbound", "inbound_email"), ("outbox", "outbox_message")])
async def test_settling_a_row_finds_it_by_its_id_while_leases_churn(
    db: Database, mailbox: Mailbox, queue: str, table: str
) -> None:
    # Statistics gathered while nothing was leased say a leased row is rare, and a queue
    # leases and settles its rows faster than they are vacuumed. A settle statement that
    # then looked its row up through the claim index (status first) would walk every dead
    # entry of every row leased since the last vacuum, for each row it settles.
    if db.is_sqlite:
        pytest.skip("PostgreSQL's planner")
    rows = Base.metadata.tables[table]

    def churn(session: Session) -> list[str]:
        connection = session.connection()
        connection.execute(insert(rows), _settled_rows(table, mailbox, 2000))
        connection.exec_driver_sql(f"ANALYZE {table}")
        leased = INBOUND_QUEUE.statuses.leased if queue == "inbound" else OUTBOX_QUEUE.statuses.leased
        connection.execute(update(rows).values(status=leased))
        connection.execute(update(rows).values(status="settled"))
        values = {"row_id": 1000, "attempt": 1, "new_status": "settled", "outcome": None, "ticket_id": None,
                  "sent_at": None}  # fmt: skip
        return postgres_plan(connection, statements.registered(f"queue.{queue}.finish"), values)

    plan = await db.write(churn)
    conditions = [line for line in plan if "Index Cond:" in line]
    assert len(conditions) == 1 and re.search(r"\bid = ", conditions[0]), plan
    assert not any("Seq Scan" in line or "Bitmap" in line for line in plan), plan


@pytest.mark.parametrize(("queue", "table"), [("inbound", "inbound_email"), ("outbox", "outbox_message")])
async def test_a_claim_reads_no_more_rows_than_it_takes_however_long_the_backlog(
    db: Database, mailbox: Mailbox, queue: str, table: str
) -> None:
    # A burst leaves thousands of rows waiting. Each claim takes a batch of the oldest;
    # reading and sorting the whole backlog for it would make every claim cost the backlog.
    if db.is_sqlite:
        pytest.skip("PostgreSQL's planner")
    queued = INBOUND_QUEUE if queue == "inbound" else OUTBOX_QUEUE
    rows = Base.metadata.tables[table]
    batch = 10

    def claim(session: Session) -> list[str]:
        connection = session.connection()
        waiting = [{**row, "status": queued.statuses.ready, "next_attempt_at": utcnow() - timedelta(seconds=1),
                    "attempts": 0} for row in _settled_rows(table, mailbox, 3000)]  # fmt: skip
        connection.execute(insert(rows), waiting)
        connection.exec_driver_sql(f"ANALYZE {table}")
        now = utcnow().replace(tzinfo=None)
        values = {"now": now, "batch": batch, "lease_until": now + timedelta(minutes=5)}
        return postgres_plan(connection, queued.claiming, values, analyze=True)

    plan = await db.write(claim)
    assert rows_read(plan) and max(rows_read(plan)) <= batch, plan
