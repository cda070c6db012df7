"""The leased queue on a real table: exclusive claims, leases that run out, backoff, dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.models import InboundEmail, InboundStatus, utcnow
from gateway.storage.database import Database, orm
from gateway.storage.queue import Claim, LeasedQueue, Policy, QueueTable, Statuses

T = TypeVar("T")

# The processor's shape, where a retry and a dead letter share a status: only the missing
# next attempt tells them apart.
SHARED = QueueTable(
    InboundEmail.__table__,
    Statuses(InboundStatus.PENDING, InboundStatus.PROCESSING, InboundStatus.FAILED, InboundStatus.FAILED),
    returning=("attempts",),
    settle_values=("outcome",),
    lost_error="lost",
    name="test-shared",
)
# The outbox's shape: a retry waits as ready.
APART = QueueTable(
    InboundEmail.__table__,
    Statuses(InboundStatus.PENDING, InboundStatus.PROCESSING, InboundStatus.PENDING, InboundStatus.FAILED),
    returning=("attempts",),
    lost_error="lost",
    name="test-apart",
)


def queue(table: QueueTable = SHARED, **policy: float) -> LeasedQueue:
    values: dict[str, float] = {"batch": 10, "lease_seconds": 60, "max_attempts": 3, "retry_base_seconds": 10}
    return LeasedQueue(table, Policy(**(values | policy)))  # type: ignore[arg-type]


async def add_rows(db: Database, count: int) -> list[int]:
    def change(session: Session):
        rows = [
            InboundEmail(raw=b"x", sha256="0" * 64, mail_from="a@b.test", rcpt_tos=["s@b.test"], peer="p")
            for _ in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]

    return await db.write(change)


async def in_transaction(db: Database, work: Callable[[Session], T]) -> T:
    return await db.write(lambda session: work(session))


async def claim(db: Database, leased: LeasedQueue) -> Claim:
    return await in_transaction(db, lambda session: leased.claim(session.connection()))


async def fail(db: Database, leased: LeasedQueue, row_id: int, attempt: int) -> str | None:
    return await in_transaction(db, lambda session: leased.fail(session.connection(), row_id, attempt, "boom"))


async def stored(db: Database, row_id: int) -> InboundEmail:
    return await db.read(orm(lambda session: session.get_one(InboundEmail, row_id)))


async def make_due(db: Database) -> None:
    def change(session: Session):
        session.execute(
            update(InboundEmail).where(InboundEmail.next_attempt_at.is_not(None)).values(next_attempt_at=utcnow())
        )

    await db.write(change)


async def test_two_claimers_take_disjoint_rows(db: Database) -> None:
    ids = await add_rows(db, 8)
    leased = queue(batch=5)

    def claimer(session: Session) -> list[int]:
        taken = leased.claim(session.connection())
        if not db.is_sqlite:  # hold the rows meanwhile (SQLite's one writer takes the claims in turn anyway)
            session.connection().exec_driver_sql("SELECT pg_sleep(0.05)")
        return [row[0] for row in taken.rows]

    first, second = await asyncio.gather(db.write(claimer), db.write(claimer))

    assert not set(first) & set(second)
    assert sorted(first + second) == ids and sorted([len(first), len(second)]) == [3, 5]
    assert (await claim(db, leased)).rows == []  # every lease still runs


async def test_a_claim_leases_rows_with_one_more_attempt(db: Database) -> None:
    [row_id] = await add_rows(db, 1)
    before = utcnow()

    taken = await claim(db, queue(lease_seconds=60))

    assert [tuple(row) for row in taken.rows] == [(row_id, 1)]
    row = await stored(db, row_id)
    assert (row.status, row.attempts) == (InboundStatus.PROCESSING, 1)
    assert row.lease_expires_at is not None and row.lease_expires_at >= before + timedelta(seconds=60)


async def test_an_expired_lease_is_claimed_again_and_fences_off_the_first_worker(db: Database) -> None:
    [row_id] = await add_rows(db, 1)
    first = await claim(db, queue(lease_seconds=0.01))
    await asyncio.sleep(0.05)

    second = await claim(db, queue())

    assert [tuple(row) for row in first.rows] == [(row_id, 1)]
    assert [tuple(row) for row in second.rows] == [(row_id, 2)]
    leased = queue()
    late = await in_transaction(db, lambda s: leased.finish(s.connection(), row_id, 1, "delivered", outcome="late"))
    done = await in_transaction(db, lambda s: leased.finish(s.connection(), row_id, 2, "delivered", outcome="ok"))
    assert (late, done) == (False, True)
    row = await stored(db, row_id)
    assert (row.status, row.outcome, row.lease_expires_at, row.next_attempt_at) == ("delivered", "ok", None, None)


async def test_renew_extends_only_rows_still_leased(db: Database) -> None:
    ids = await add_rows(db, 2)
    leased = queue(lease_seconds=60)
    await claim(db, leased)
    await in_transaction(db, lambda s: leased.finish(s.connection(), ids[0], 1, "delivered", outcome="ok"))
    before = utcnow()

    renewed = await in_transaction(db, lambda s: leased.renew(s.connection(), ids))

    assert [tuple(row) for row in renewed] == [(ids[1], 1)]
    row = await stored(db, ids[1])
    assert row.lease_expires_at is not None and row.lease_expires_at >= before + timedelta(seconds=60)


async def test_backoff_doubles_after_each_failed_attempt(db: Database) -> None:
    [row_id] = await add_rows(db, 1)
    leased = queue(max_attempts=5, retry_base_seconds=10)
    delays = []
    for attempt in (1, 2, 3):
        await claim(db, leased)
        failed_at = utcnow()
        status = await fail(db, leased, row_id, attempt)
        row = await stored(db, row_id)
        assert (status, row.status, row.last_error, row.lease_expires_at) == ("failed", "failed", "boom", None)
        assert row.next_attempt_at is not None
        delays.append(_seconds(row.next_attempt_at, failed_at))
        assert (await claim(db, leased)).rows == []  # not due yet
        await make_due(db)

    assert [round(delay) for delay in delays] == [10, 20, 40]


def test_backoff_is_capped() -> None:
    policy = Policy(batch=1, lease_seconds=1, max_attempts=9, retry_base_seconds=60, retry_max_seconds=300)
    assert [policy.backoff(attempt) for attempt in range(1, 6)] == [60, 120, 240, 300, 300]


@pytest.mark.parametrize("table", [SHARED, APART], ids=["retry-as-failed", "retry-as-pending"])
async def test_the_last_attempt_dead_letters_the_row(db: Database, table: QueueTable) -> None:
    [row_id] = await add_rows(db, 1)
    leased = queue(table, max_attempts=2)
    statuses = []
    for attempt in (1, 2):
        await make_due(db)
        assert len((await claim(db, leased)).rows) == 1
        statuses.append(await fail(db, leased, row_id, attempt))

    assert statuses == [table.statuses.retrying, "failed"]
    row = await stored(db, row_id)
    assert (row.status, row.attempts, row.next_attempt_at, row.last_error) == ("failed", 2, None, "boom")
    await make_due(db)
    assert (await claim(db, leased)).rows == []


async def test_a_permanent_failure_dead_letters_at_once_and_retry_now_ignores_the_limit(db: Database) -> None:
    ids = await add_rows(db, 2)
    leased = queue(max_attempts=1)
    await claim(db, leased)

    permanent = await in_transaction(db, lambda s: leased.fail(s.connection(), ids[0], 1, "no", permanent=True))
    raced = await in_transaction(db, lambda s: leased.fail(s.connection(), ids[1], 1, "race", retry_now=True))

    assert (permanent, raced) == ("failed", "failed")
    assert (await stored(db, ids[0])).next_attempt_at is None
    assert [tuple(row) for row in (await claim(db, leased)).rows] == [(ids[1], 2)]


async def test_a_lease_lost_on_the_last_attempt_is_dead_lettered_by_the_next_claim(db: Database) -> None:
    [row_id] = await add_rows(db, 1)
    await claim(db, queue(lease_seconds=0.01, max_attempts=1))
    await asyncio.sleep(0.05)

    taken = await claim(db, queue(max_attempts=1))

    assert taken.rows == [] and [tuple(row) for row in taken.lost] == [(row_id, 1)]
    row = await stored(db, row_id)
    assert (row.status, row.next_attempt_at, row.lease_expires_at, row.last_error) == ("failed", None, None, "lost")


async def test_defer_puts_the_row_back_without_spending_the_attempt(db: Database) -> None:
    [row_id] = await add_rows(db, 1)
    leased = queue()
    await claim(db, leased)

    deferred = await in_transaction(db, lambda s: leased.defer(s.connection(), row_id, 1, 0.0))

    assert deferred
    row = await stored(db, row_id)
    assert (row.status, row.attempts, row.lease_expires_at) == (InboundStatus.PENDING, 0, None)
    assert [tuple(row) for row in (await claim(db, leased)).rows] == [(row_id, 1)]


async def test_claims_take_the_oldest_rows_first(db: Database) -> None:
    ids = await add_rows(db, 5)
    taken = await claim(db, queue(batch=3))
    assert [row[0] for row in taken.rows] == ids[:3]

    def look(session: Session):
        waiting = session.scalars(select(InboundEmail.id).where(InboundEmail.status == "pending")).all()
        return waiting

    waiting = await db.read(orm(look))
    assert sorted(waiting) == ids[3:]


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()
