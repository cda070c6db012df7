"""The leased queue: rows of one table that workers claim, hold for a while and settle.

A queued row carries a status, an attempt count, when its next attempt is due, when the
current lease runs out and its last error (docs/architecture.md, "The leased queue").
`QueueTable` names a table's statuses and columns once and builds its statements once
(those run per row by name, gateway/storage/statements.py, prepared for the inbound queue and the outbox;
those run per claim or unit of work through SQLAlchemy's compiled cache); `LeasedQueue` pairs it with a `Policy`
(batch, lease, attempts, backoff) and offers the moves. `claim` first dead-letters rows
whose lease ran out on their last attempt (the worker was lost, too many times), then
leases a batch: rows whose lease ran out with attempts left, then the oldest rows whose
attempt is due, each with one more attempt. On PostgreSQL the candidates are locked `FOR
UPDATE SKIP LOCKED`, so concurrent claimers take disjoint rows without waiting; SQLite
has no row locks (the clause compiles to nothing) and the claim's UPDATEs hold the
database's write lock, so claimers take turns. `renew` extends the leases of rows still
leased and reads them back. `finish`, `defer` and `fail` settle one row, and only while
its lease is still the caller's: the same row, still leased, at the same attempt, so a
worker whose lease was taken over cannot settle the newer attempt. `fail` schedules a
retry with exponential backoff, or dead-letters the row (its status `dead`, no next
attempt) after the last attempt. Every move runs on a synchronous `Connection` in the
caller's unit of work (`Database.write`), so a row is settled in the
same commit as the work it settles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, Select, Table, Update, and_, bindparam, select, union_all, update

from gateway.storage import statements

Row = Sequence[Any]  # `(id, *returning)`: a tuple, or SQLAlchemy's Row, which behaves as one


@dataclass(frozen=True, slots=True)
class Statuses:
    """The statuses a queue moves its rows through (two may be the same)."""

    ready: str  # new rows, and deferred ones, wait here for `next_attempt_at`
    leased: str  # claimed by a worker until `lease_expires_at`
    retrying: str  # a failed attempt waiting for `next_attempt_at`
    dead: str  # no attempt left: `next_attempt_at` is NULL, so never claimed again


@dataclass(frozen=True, slots=True)
class Columns:
    """The names of the columns the queue reads and writes."""

    id: str = "id"
    status: str = "status"
    attempts: str = "attempts"
    due: str = "next_attempt_at"
    lease: str = "lease_expires_at"
    error: str = "last_error"


@dataclass(frozen=True, slots=True)
class Policy:
    """How a worker uses a queue: batch size, lease length, attempts and backoff."""

    batch: int
    lease_seconds: float
    max_attempts: int
    retry_base_seconds: float
    retry_max_seconds: float | None = None

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt, after `attempts` attempts failed: doubling, capped."""
        delay = self.retry_base_seconds * 2 ** (attempts - 1)
        return delay if self.retry_max_seconds is None else min(delay, self.retry_max_seconds)


class Claim(NamedTuple):
    """What one claim took: the leased rows by id, and the rows it dead-lettered as lost."""

    rows: Sequence[Row]
    lost: Sequence[Row]


class QueueTable:
    """A table used as a leased queue, with its statements built once.

    Rows come back as `(id, *returning)` tuples. `settle_values` are the table's own
    columns `finish` also writes (e.g. the outcome); `lost_error` is the error a row
    dead-lettered by `claim` keeps. `name` names the queue's per-row statements
    (`queue.<name>.finish`, gateway/storage/statements.py); `prepared` compiles them once,
    for a queue whose rows are many and cheap on the CPU (inbound mail, outbound mail; not
    webhooks, whose rows each wait for a receiver's answer).
    """

    def __init__(
        self,
        table: Table,
        statuses: Statuses,
        *,
        name: str,
        prepared: bool = True,
        returning: Sequence[str],
        lost_error: str,
        settle_values: Sequence[str] = (),
        columns: Columns = Columns(),
    ) -> None:
        self.table, self.statuses, self.columns = table, statuses, columns
        c, names = table.c, columns
        self._id, self._status, self._attempts = c[names.id], c[names.status], c[names.attempts]
        self._due, self._lease = c[names.due], c[names.lease]
        self.returned = (self._id, *(c[name] for name in returning))
        now = bindparam("now", type_=self._due.type)
        leased = self._status == statuses.leased
        # Once per claim or unit of work: run through SQLAlchemy (its compiled cache), which also
        # converts the parameters of statements with an IN list.
        self.reaping = (
            update(table)
            .where(leased, self._lease < now, self._attempts >= bindparam("max_attempts"))
            .values({self._status: statuses.dead, self._due: None, self._lease: None, c[names.error]: lost_error})
            .returning(*self.returned)
        )
        self.claiming = self._claim_statement(now)
        self.reclaiming = self._lease_statement(  # rows whose lease ran out, with attempts left
            self._oldest(leased, self._lease < now, self._attempts < bindparam("max_attempts"))
        )
        self.renewing = (
            update(table)
            .where(self._id.in_(bindparam("ids", expanding=True)), leased)
            .values({self._lease: bindparam("lease_until", type_=self._lease.type)})
            .returning(*self.returned)
        )
        # Once per row: registered by name, compiled once per dialect when `prepared`.
        settle = update(table).where(self.fence(bindparam("row_id"), bindparam("attempt"))).returning(self._id)
        cleared = {self._lease: None, self._due: None, c[names.error]: None}
        retry_at = bindparam("retry_at", type_=self._due.type)
        finishing = settle.values({
            self._status: bindparam("new_status", type_=self._status.type), **cleared,
            **{c[value]: bindparam(value, type_=c[value].type) for value in settle_values},
        })  # fmt: skip
        deferring = settle.values({  # back to ready, the attempt not spent
            self._status: statuses.ready, self._lease: None, self._due: retry_at, self._attempts: self._attempts - 1,
        })  # fmt: skip
        failing = settle.values({
            self._status: bindparam("new_status", type_=self._status.type), self._lease: None, self._due: retry_at,
            c[names.error]: bindparam("error", type_=c[names.error].type),
        })  # fmt: skip
        self.finishing = statements.prepare(f"queue.{name}.finish", finishing, compiled=prepared)
        self.deferring = statements.prepare(f"queue.{name}.defer", deferring, compiled=prepared)
        self.failing = statements.prepare(f"queue.{name}.fail", failing, compiled=prepared)

    def fence(self, row_id: Any, attempt: Any) -> ColumnElement[bool]:
        """The row, only while it is leased at `attempt`: the claim's attempt number is its lease."""
        return and_(self._id == row_id, self._status == self.statuses.leased, self._attempts == attempt)

    def _lease_statement(self, candidates: Select[Any]) -> Update:
        """Lease `candidates` (ids) for one more attempt, returning the rows."""
        return (
            update(self.table)
            .where(self._id.in_(candidates.scalar_subquery()))
            .values({
                self._status: self.statuses.leased, self._attempts: self._attempts + 1,
                self._lease: bindparam("lease_until", type_=self._lease.type),
            })  # fmt: skip
            .returning(*self.returned)
        )

    def _oldest(self, *where: ColumnElement[bool]) -> Select[Any]:
        """The oldest `batch` ids matching `where`, locked `FOR UPDATE SKIP LOCKED` (PostgreSQL only)."""
        return (
            select(self._id)
            .where(*where)
            .order_by(self._id)
            .limit(bindparam("batch"))
            .with_for_update(skip_locked=True)
        )

    def _claim_statement(self, now: Any) -> Update:
        # One ordered walk of the claim index per waiting status, each stopping after a batch:
        # a backlog of any size, or the dead index entries of rows settled since the last
        # vacuum, costs a claim no more than the rows it takes (docs/architecture.md, "The leased queue").
        waiting = [self._oldest(self._status == status, self._due <= now)
                   for status in sorted({self.statuses.ready, self.statuses.retrying})]  # fmt: skip
        if len(waiting) == 1:
            return self._lease_statement(waiting[0])
        either = union_all(*(select(part.subquery().c[0]) for part in waiting)).subquery()
        return self._lease_statement(select(either.c[0]).order_by(either.c[0]).limit(bindparam("batch")))


class LeasedQueue:
    """The moves on one `QueueTable` under one `Policy`, on the caller's `Connection`."""

    __slots__ = ("table", "policy")

    def __init__(self, table: QueueTable, policy: Policy) -> None:
        self.table = table
        self.policy = policy

    def claim(self, connection: Connection) -> Claim:
        """Dead-letter rows lost on their last attempt, then lease up to a batch of rows."""
        now = _now()
        lost = connection.execute(self.table.reaping, {"now": now, "max_attempts": self.policy.max_attempts})
        params = {"now": now, "max_attempts": self.policy.max_attempts, "batch": self.policy.batch,
                  "lease_until": now + timedelta(seconds=self.policy.lease_seconds)}  # fmt: skip
        claimed = connection.execute(self.table.reclaiming, params).all()
        if len(claimed) < self.policy.batch:
            claimed += connection.execute(
                self.table.claiming, {**params, "batch": self.policy.batch - len(claimed)}
            ).all()
        return Claim(sorted(claimed, key=itemgetter(0)), lost.all())

    def renew(self, connection: Connection, ids: Sequence[int]) -> Sequence[Row]:
        """Extend the leases of those of `ids` still leased; returns their rows."""
        lease_until = _now() + timedelta(seconds=self.policy.lease_seconds)
        return connection.execute(self.table.renewing, {"ids": list(ids), "lease_until": lease_until}).all()

    def finish(self, connection: Connection, row_id: int, attempt: int, status: str, **values: Any) -> bool:
        """Settle the row with a final `status` (and the table's `settle_values`); False if not ours."""
        params = {"row_id": row_id, "attempt": attempt, "new_status": status, **values}
        return bool(statements.rows(self.table.finishing, connection, params))

    def defer(self, connection: Connection, row_id: int, attempt: int, seconds: float) -> bool:
        """Put the row back to wait `seconds`, its attempt not spent; False if not ours."""
        retry_at = _now() + timedelta(seconds=seconds)
        values = {"row_id": row_id, "attempt": attempt, "retry_at": retry_at}
        return bool(statements.rows(self.table.deferring, connection, values))

    def fail(
        self,
        connection: Connection,
        row_id: int,
        attempt: int,
        error: str,
        *,
        permanent: bool = False,
        retry_now: bool = False,
    ) -> str | None:
        """Record a failed attempt: retry after backoff (`retry_now`: at once), or dead-letter.

        A `permanent` failure, or one on the last attempt, dead-letters the row, unless
        `retry_now` asks for an immediate retry (an attempt that lost a race, not a broken row).
        Returns the row's new status, or None when the lease was no longer ours.
        """
        statuses = self.table.statuses
        if retry_now:
            status, retry_at = statuses.retrying, _now()
        elif permanent or attempt >= self.policy.max_attempts:
            status, retry_at = statuses.dead, None
        else:
            status, retry_at = statuses.retrying, _now() + timedelta(seconds=self.policy.backoff(attempt))
        params = {"row_id": row_id, "attempt": attempt, "new_status": status, "retry_at": retry_at, "error": error}
        return status if statements.rows(self.table.failing, connection, params) else None


def _now() -> datetime:
    return datetime.now(UTC)
