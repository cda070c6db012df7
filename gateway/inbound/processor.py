"""The processor: drains pending InboundEmail rows into tickets.

A worker claims a batch of rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL; on SQLite the
single writer serialises claims), leasing each for a while so a crashed worker's rows are
reclaimed. Each row is then parsed, scrubbed of Wicket's own links and codes (burning
them: gateway/inbound/exposed_secrets.py), classified, routed and, per mailbox, delivered
(gateway/inbound/delivery.py) in a savepoint of a transaction that gathers several rows (one
commit, one disk flush, for all of them; the transaction is a synchronous unit of work,
like every ticket operation), and
the lifecycle wrapper moves it to delivered, bounced or ignored (duplicates and our
own mail coming back in a loop; the raw bytes stay on the row) — or, on an
exception, to failed with the error kept and a retry scheduled with backoff. After the
last attempt the row stays failed (the dead-letter state) until `wicket replay --failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from gateway.inbound.delivery import Claimed, WaitForEarlier, deliver_to_mailbox
from gateway.inbound.exposed_secrets import ExposedSecrets
from gateway.inbound.parse_ahead import ParseAhead
from gateway.inbound.routing import Route, Router
from gateway.logs import bound
from gateway.mail.classify import MailKind, classify
from gateway.metrics import PROCESSED, PROCESSING_SECONDS
from gateway.models import InboundEmail, InboundStatus, utcnow
from gateway.settings import Settings
from gateway.storage.database import Database
from gateway.storage.statements import Prepared
from gateway.tickets.events import EventBus

log = logging.getLogger(__name__)

_INBOUND = InboundEmail.__table__
_RENEW_LEASES = (
    update(_INBOUND)
    .where(_INBOUND.c.id.in_(bindparam("ids", expanding=True)), _INBOUND.c.status == InboundStatus.PROCESSING)
    .values(lease_expires_at=bindparam("lease"))
    .returning(
        _INBOUND.c.id, _INBOUND.c.raw, _INBOUND.c.mail_from, _INBOUND.c.rcpt_tos, _INBOUND.c.sha256,
        _INBOUND.c.attempts,
    )
)
UNIT_ROWS = 32  # claimed rows one processing transaction takes on at most

# A row's outcome, written in one UPDATE each; built once, as building and cache-keying an
# UPDATE per message cost a tenth of processing.
_THIS_ROW = _INBOUND.c.id == bindparam("row_id")
_FINISH = Prepared(update(_INBOUND).where(_THIS_ROW).values(
    status=bindparam("status"), outcome=bindparam("outcome"), ticket_id=bindparam("ticket_id"),
    lease_expires_at=None, next_attempt_at=None, last_error=None,
))
_DEFER = Prepared(update(_INBOUND).where(_THIS_ROW).values(  # back to pending, the attempt not spent
    status=InboundStatus.PENDING, lease_expires_at=None, next_attempt_at=bindparam("retry_at"),
    attempts=_INBOUND.c.attempts - 1,
))
_FAIL = Prepared(update(_INBOUND).where(_THIS_ROW).values(
    status=InboundStatus.FAILED, lease_expires_at=None, next_attempt_at=bindparam("retry_at"),
    last_error=bindparam("last_error"),
))


class Processor:
    def __init__(self, db: Database, settings: Settings, router: Router, events: EventBus) -> None:
        self._db = db
        self._settings = settings
        self._router = router
        self.events = events
        self._wakeup = asyncio.Event()
        self._unfinished: list[int] = []  # claimed by us, not yet through a committed transaction
        self._parsing = ParseAhead(settings.process_parse_workers, settings.max_display_html_bytes)
        self._exposed = ExposedSecrets(settings)

    def wake(self) -> None:
        """New rows were stored: look now rather than at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        """Process forever; back off while the database is unreachable."""
        backoff = self._settings.process_poll_seconds
        while True:
            try:
                processed = await self.process_batch()
                backoff = self._settings.process_poll_seconds
            except (OperationalError, InterfaceError, OSError) as error:
                log.warning("processor cannot reach the database (%s); retrying in %.0fs", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            if not processed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._settings.process_poll_seconds)
                self._wakeup.clear()

    async def drain(self) -> int:
        """Process until nothing is claimable; return how many rows were handled."""
        total = 0
        while processed := await self.process_batch():
            total += processed
        return total

    async def process_batch(self) -> int:
        """Claim rows and process them; rows a failed transaction left claimed go first."""
        ids = self._unfinished or await self._claim()
        self._unfinished = ids
        while self._unfinished:
            self._unfinished = await self._process_claimed(self._unfinished)
        return len(ids)

    def close(self) -> None:
        """Stop the parse workers (after the processing task has stopped)."""
        self._parsing.close()

    async def process(self, inbound_id: int) -> None:
        """Run one claimed row through the pipeline, recording the outcome either way."""
        await self._process_claimed([inbound_id])

    async def _claim(self) -> list[int]:
        now = utcnow()
        limit = self._settings.process_max_attempts
        claimable = or_(
            and_(
                InboundEmail.status.in_([InboundStatus.PENDING, InboundStatus.FAILED]),
                InboundEmail.next_attempt_at <= now,
            ),
            and_(
                InboundEmail.status == InboundStatus.PROCESSING,
                InboundEmail.lease_expires_at < now,
                InboundEmail.attempts < limit,
            ),
        )
        candidates = (
            select(InboundEmail.id)
            .where(claimable)
            .order_by(InboundEmail.id)
            .limit(self._settings.process_batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self._db.sessions.begin() as session:
            await session.execute(
                update(InboundEmail)
                .where(
                    InboundEmail.status == InboundStatus.PROCESSING,
                    InboundEmail.lease_expires_at < now,
                    InboundEmail.attempts >= limit,
                )
                .values(
                    status=InboundStatus.FAILED,
                    next_attempt_at=None,
                    last_error="gave up: a worker was lost while processing this message",
                )
            )
            rows = await session.execute(
                update(InboundEmail)
                .where(InboundEmail.id.in_(candidates.scalar_subquery()))
                .values(
                    status=InboundStatus.PROCESSING,
                    attempts=InboundEmail.attempts + 1,
                    lease_expires_at=now + timedelta(seconds=self._settings.process_lease_seconds),
                )
                .returning(InboundEmail.id, InboundEmail.raw)
            )
            claimed = sorted(rows.all())
        self._parsing.submit(claimed)
        return [row_id for row_id, _ in claimed]

    async def _process_claimed(self, ids: list[int]) -> list[int]:
        """Process claimed rows in one transaction until its time is up; return the rest.

        Each message runs in a savepoint, so one that fails or must wait rolls back alone
        and its outcome is recorded in the same transaction. Committing several messages
        at once spares a disk flush per message; `process_commit_seconds` bounds how long
        the transaction (and, on SQLite, the write lock) is held. The transaction is one
        synchronous unit of work (`Database.run_write`): on SQLite it runs on the writer
        thread in one hop, where each statement through aiosqlite would be several.
        """
        return await self._db.run_write(partial(self._process_unit, ids))

    def _process_unit(self, ids: list[int], session: Session) -> list[int]:
        # A transaction takes on a window of the claim: renewing (and reading back) every
        # remaining row of a large claim in each transaction would read most rows many times.
        window = ids[:UNIT_ROWS]
        ours = self._still_ours(session, window)
        began = time.monotonic()
        for position, inbound_id in enumerate(window):
            if position and time.monotonic() - began >= self._settings.process_commit_seconds:
                return ids[position:]
            started = time.perf_counter()
            with bound(inbound_id=inbound_id):
                outcome = self._process_one(session, ours.get(inbound_id))
            PROCESSED.labels(str(outcome)).inc()
            PROCESSING_SECONDS.observe(time.perf_counter() - started)
        return ids[len(window):]

    def _process_one(self, session: Session, inbound: Claimed | None) -> str:
        if inbound is None:
            return "skipped"  # another worker reclaimed and finished it after our lease ran out
        try:
            with session.begin_nested():
                status, outcome, ticket_id = self._outcome(session, inbound)
                # All at once, after the message's own rows: one UPDATE of the inbound row.
                finished = {"row_id": inbound.id, "status": status, "outcome": outcome[:4000], "ticket_id": ticket_id}
                _FINISH.rows(session.connection(), finished)
            return status
        except WaitForEarlier:  # back in the queue without spending an attempt
            retry_at = utcnow() + timedelta(seconds=0.2)
            _DEFER.rows(session.connection(), {"row_id": inbound.id, "retry_at": retry_at})
            return "deferred"
        except Exception as error:
            self._record_failure(session, inbound, error)
            return InboundStatus.FAILED

    def _still_ours(self, session: Session, ids: list[int]) -> dict[int, Claimed]:
        """Renew the leases of rows still in processing, as the transaction's first statement.

        Being a write, it locks the rows (PostgreSQL) or the database (SQLite, whose plain
        reads would otherwise each see a different moment) until the transaction ends, so
        a row another worker finished meanwhile is never processed a second time. Returns
        the rows that are still ours, by id.
        """
        lease = utcnow() + timedelta(seconds=self._settings.process_lease_seconds)
        renewed = session.connection().execute(_RENEW_LEASES, {"ids": ids, "lease": lease})
        return {row.id: Claimed(*row) for row in renewed}

    def _record_failure(self, session: Session, inbound: Claimed, error: Exception) -> None:
        log.warning("processing inbound email %d failed: %r", inbound.id, error)
        if isinstance(error, IntegrityError):
            # A concurrent worker stored the same message; the retry sees it as a duplicate.
            retry_at: datetime | None = utcnow()
        elif inbound.attempts >= self._settings.process_max_attempts:
            retry_at = None
        else:
            delay = self._settings.process_retry_base_seconds * 2 ** (inbound.attempts - 1)
            retry_at = utcnow() + timedelta(seconds=delay)
        last_error = f"{type(error).__name__}: {error}"[:4000]
        _FAIL.rows(session.connection(), {"row_id": inbound.id, "retry_at": retry_at, "last_error": last_error})

    def _outcome(self, session: Session, inbound: Claimed) -> tuple[InboundStatus, str, int | None]:
        """The row's new status, the outcome note and the ticket it went to."""
        # Our own links and codes quoted back are burned and never reach a stored or shown text.
        mail = self._exposed.scrub(session, self._parsing.parsed(inbound.id, inbound.raw), inbound.id)
        verdict = classify(mail, loop_token=self._settings.loop_token, envelope_sender=inbound.mail_from)
        routes: dict[int, Route] = {}
        for recipient in inbound.rcpt_tos:
            route = self._router.resolve_in(session, recipient)
            if route is not None:
                routes.setdefault(route.mailbox_id, route)
        if not routes:
            return InboundStatus.BOUNCED, "no recipient is a mailbox any more", None
        if verdict.kind is MailKind.LOOP:
            return InboundStatus.IGNORED, "mail loop: " + "; ".join(verdict.reasons), None
        deliveries = [
            deliver_to_mailbox(session, self._settings, self.events, inbound, mail, verdict, route)
            for route in routes.values()
        ]
        stored = [d for d in deliveries if not d.duplicate]
        ticket_id = next((d.ticket_id for d in deliveries if d.ticket_id), None)
        if not stored:
            return InboundStatus.IGNORED, "duplicate of a message already on the ticket", ticket_id
        notes = [f"{verdict.kind}"] + ([f"rule {d.rule}" for d in stored if d.rule]) + list(mail.defects[:5])
        return InboundStatus.DELIVERED, "; ".join(notes), ticket_id
