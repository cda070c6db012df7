"""The processor: drains pending InboundEmail rows into tickets.

The rows are a leased queue (gateway/storage/queue.py; docs/architecture.md, "The leased
queue"): a worker claims a batch (`FOR UPDATE SKIP LOCKED` on PostgreSQL; on SQLite the
claim holds the write lock, so claimers take turns), leasing each row for a while so a
crashed worker's rows are reclaimed. The claim's sender verdicts (SPF, DKIM, DMARC, ARC:
gateway/inbound/sender_checks.py) are computed first, concurrently and before any
transaction, as they wait on DNS. Each row is then parsed, scrubbed of Wicket's own
links and codes (burning them: gateway/inbound/exposed_secrets.py), classified, routed
and, per mailbox, delivered (gateway/inbound/delivery.py) in a savepoint of a transaction
that gathers several rows (one commit, one disk flush, for all of them; the transaction
is a synchronous unit of work, like every ticket operation). The queue then finishes the
row as delivered, bounced or ignored (duplicates and our own mail coming back in a loop;
the raw bytes stay on the row), defers it when an earlier message must go first, or, on
an exception, fails it with the error kept and a retry scheduled with backoff. After the
last attempt the row stays failed (the dead-letter state) until `wicket replay --failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial

from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from gateway.inbound.delivery import Claimed, WaitForEarlier, deliver_to_mailbox, publish_received
from gateway.inbound.exposed_secrets import ExposedSecrets
from gateway.inbound.parse_ahead import ParseAhead
from gateway.inbound.routing import Router
from gateway.inbound.sender_checks import SenderChecks
from gateway.logs import bound
from gateway.mail.classify import MailKind, classify
from gateway.mail.verdicts import SenderVerdicts
from gateway.metrics import PROCESSED, PROCESSING_SECONDS
from gateway.models import InboundEmail, InboundStatus
from gateway.settings import Settings
from gateway.storage.database import Database, lost_race
from gateway.storage.queue import LeasedQueue, Policy, QueueTable, Statuses
from gateway.tickets.events import EventBus, mail_muted
from gateway.tickets.numbers import NumbersNeeded, TicketNumbers

log = logging.getLogger(__name__)

UNIT_ROWS = 32  # claimed rows one processing transaction takes on at most
# ... and on PostgreSQL at least this many when claimed, however long they take: a
# transaction's own statements (renewing the leases, loading the mailbox and the agents) and
# its commit are shared by its messages, and when each message takes longer than
# `process_commit_seconds` (a busy host, a round trip per statement) one message per
# transaction would pay them all. SQLite keeps the time bound alone: there the transaction
# holds the database's one write lock, which the SMTP listeners' commits wait for.
MIN_UNIT_ROWS = 8
DEFER_SECONDS = 0.2  # a message waiting for an earlier one from its sender looks again this soon
PORTAL_SOURCE = "portal"  # InboundEmail.source of the portal's own submissions
DEFERRED = "deferred"  # outcomes of a message put back in the queue with its attempt kept
LOST_RACE = "lost_race"
NEEDS_NUMBERS = "needs_numbers"  # rolled back, run again once ticket numbers are reserved

# The inbound queue (docs/architecture.md, "The leased queue"): its statements are built once,
# as building and cache-keying an UPDATE per message cost a tenth of processing.
INBOUND_QUEUE = QueueTable(
    InboundEmail.__table__,
    Statuses(
        ready=InboundStatus.PENDING, leased=InboundStatus.PROCESSING,
        retrying=InboundStatus.FAILED, dead=InboundStatus.FAILED,
    ),
    returning=("raw", "mail_from", "rcpt_tos", "sha256", "attempts", "send_mail", "peer", "helo", "source"),  # a `Claimed`
    settle_values=("outcome", "ticket_id"),
    lost_error="gave up: a worker was lost while processing this message",
    name="inbound",
)  # fmt: skip


class Processor:
    def __init__(
        self, db: Database, settings: Settings, router: Router, events: EventBus, checks: SenderChecks | None
    ) -> None:
        self._db = db
        self._min_unit = 1 if db.is_sqlite else MIN_UNIT_ROWS
        self._window = UNIT_ROWS  # rows the next transaction takes on (`_process_unit`)
        self._settings = settings
        self._router = router
        self.events = events
        self._wakeup = asyncio.Event()
        self._unfinished: list[int] = []  # claimed by us, not yet through a committed transaction
        self._claimed: dict[int, int] = {}  # the current claim's rows: id -> attempt (the lease)
        self._parsing = ParseAhead(settings.process_parse_workers, settings.max_display_html_bytes)
        self._exposed = ExposedSecrets(settings)
        self._checks = checks
        self._verdicts: dict[int, SenderVerdicts] = {}  # the current claim's, by row id
        self._numbers = TicketNumbers(UNIT_ROWS)  # reserved outside processing transactions
        self._wanted: int | None = None  # the mailbox the last transaction stopped for numbers in
        self._queue = LeasedQueue(INBOUND_QUEUE, Policy(
            batch=settings.process_batch_size, lease_seconds=settings.process_lease_seconds,
            max_attempts=settings.process_max_attempts, retry_base_seconds=settings.process_retry_base_seconds,
        ))  # fmt: skip

    def wake(self) -> None:
        """New rows were stored: look now rather than at the next poll."""
        self._wakeup.set()

    def warm_up(self) -> None:
        """Load now, off the event loop, what the first message's checks would otherwise load."""
        if self._checks is not None:
            self._checks.warm_up()

    async def run(self) -> None:
        """Process forever; back off while the database is unreachable."""
        self.warm_up()
        backoff = self._settings.process_poll_seconds
        while True:
            try:
                processed = await self.process_batch()
                backoff = self._settings.process_poll_seconds
            except (OperationalError, InterfaceError, OSError) as error:
                log.warning("processor cannot reach the database (%s); retrying in %.1fs", error, backoff)
                # Mail stored meanwhile proves the database is back: it ends the wait early.
                await self._wait_for_mail(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            if not processed:
                await self._wait_for_mail(self._settings.process_poll_seconds)

    async def _wait_for_mail(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), seconds)
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
        """Stop the parse workers and the checks' threads (after the processing task has stopped)."""
        self._parsing.close()
        if self._checks is not None:
            self._checks.close()

    async def process(self, inbound_id: int) -> None:
        """Run one claimed row through the pipeline, recording the outcome either way."""
        rest = [inbound_id]
        while rest:  # twice when it opens a ticket and no numbers are reserved
            rest = await self._process_claimed(rest)

    async def release(self) -> None:
        """Hand back the claimed rows not yet processed, their attempt not spent, and the
        unused ticket numbers: the node stops.

        Another worker, or this node started again, takes them at once rather than when
        their lease runs out. A row that a transaction still in flight finished meanwhile
        is left alone: it no longer matches the lease it was claimed with.
        """
        rows = [(row_id, self._claimed[row_id]) for row_id in self._unfinished if row_id in self._claimed]
        self._unfinished, self._claimed = [], {}
        if not rows and not self._numbers.holding():
            return

        def hand_back(session: Session) -> None:
            for row_id, attempt in rows:
                self._queue.defer(session.connection(), row_id, attempt, 0)
            self._numbers.give_back(session)

        try:
            await self._db.write(hand_back)
        except (OperationalError, InterfaceError, OSError) as error:
            log.warning("could not hand back %d claimed message(s) and the reserved ticket numbers (%s); the "
                        "messages are claimed again when their lease runs out", len(rows), error)

    async def _claim(self) -> list[int]:
        claim = await self._db.write(lambda session: self._queue.claim(session.connection()))
        self._claimed = {row[0]: Claimed(*row).attempts for row in claim.rows}
        self._parsing.submit([(row[0], row[1]) for row in claim.rows])
        await self._check_senders([Claimed(*row) for row in claim.rows])
        return [row[0] for row in claim.rows]

    async def _check_senders(self, rows: list[Claimed]) -> None:
        """The claim's sender verdicts, all at once, before any transaction (they wait on DNS).

        The portal's own submissions are not checked: they come from a signed-in contact, not
        from an SMTP client. A row processed without a verdict here (the portal's immediate
        processing) stores none.
        """
        checks = self._checks
        if checks is None:  # switched off: no verdicts are stored
            self._verdicts = {}
            return
        checked = [row for row in rows if row.source != PORTAL_SOURCE]
        verdicts = await asyncio.gather(*(
            checks.check(row.raw, peer=row.peer, helo=row.helo or "", mail_from=row.mail_from)
            for row in checked
        ))  # fmt: skip
        self._verdicts = {row.id: verdict for row, verdict in zip(checked, verdicts, strict=True)}

    async def _process_claimed(self, ids: list[int]) -> list[int]:
        """Process claimed rows in one transaction until its time is up; return the rest.

        Each message runs in a savepoint, so one that fails or must wait rolls back alone
        and its outcome is recorded in the same transaction. Committing several messages
        at once spares a disk flush per message; `process_commit_seconds` bounds how long
        the transaction (and, on SQLite, the write lock) is held (on PostgreSQL once it has
        `MIN_UNIT_ROWS` messages), and on SQLite it ends after the message in hand as soon
        as an SMTP listener waits for the lock. On PostgreSQL it also ends after a message
        that lost a race with another worker's transaction (a deadlock PostgreSQL broke by
        failing our statement): the other transaction waits for this one's locks, and the
        message, due again at once with its attempt kept, runs in a later transaction
        (docs/architecture.md, "The leased queue"). The transaction is one
        synchronous unit of work (`Database.write`): on SQLite it runs on the writer
        thread in one hop. A message that opens a ticket in a mailbox with no ticket numbers
        reserved ends the transaction before it; a block is then reserved in a transaction
        of its own, and the message runs in the next (gateway/tickets/numbers.py).
        """
        rest = await self._db.write(partial(self._process_unit, ids))
        if self._wanted is not None:
            mailbox_id, self._wanted = self._wanted, None
            await self._numbers.reserve(self._db, mailbox_id)
        return rest

    def _process_unit(self, ids: list[int], session: Session) -> list[int]:
        # A transaction takes on a window of the claim: renewing (and reading back) every
        # remaining row of a large claim in each transaction would read most rows many times.
        # The window follows what the last transaction got through: while SMTP listeners
        # keep ending transactions after a message or two, a transaction renews two rows,
        # not the whole window; it doubles again while transactions finish theirs.
        window = ids[: self._window]
        ours = self._still_ours(session, window)
        self._numbers.attach(session)
        began = time.monotonic()
        for position, inbound_id in enumerate(window):
            if position >= self._min_unit and (
                time.monotonic() - began >= self._settings.process_commit_seconds or self._db.listeners_waiting()
            ):
                self._window = max(self._min_unit, 2 * position)
                return ids[position:]
            started = time.perf_counter()
            with bound(inbound_id=inbound_id):
                outcome = self._process_one(session, ours.get(inbound_id))
            if outcome == NEEDS_NUMBERS:
                return ids[position:]
            PROCESSED.labels(str(outcome)).inc()
            PROCESSING_SECONDS.observe(time.perf_counter() - started)
            if outcome == LOST_RACE:  # commit now: the other transaction of the cycle waits for our locks
                return ids[position + 1 :]
        self._window = min(UNIT_ROWS, 2 * self._window)
        return ids[len(window):]

    def _process_one(self, session: Session, inbound: Claimed | None) -> str:
        if inbound is None:
            return "skipped"  # another worker reclaimed and finished it after our lease ran out
        try:
            with session.begin_nested(), mail_muted(session, not inbound.send_mail):
                status, outcome, ticket_id = self._outcome(session, inbound)
                # All at once, after the message's own rows: one UPDATE of the inbound row.
                connection, note = session.connection(), outcome[:4000]
                self._queue.finish(connection, inbound.id, inbound.attempts, status, outcome=note, ticket_id=ticket_id)
            return status
        except NumbersNeeded as needed:  # nothing of it is left: the savepoint rolled back
            self._wanted = needed.mailbox_id
            return NEEDS_NUMBERS
        except WaitForEarlier:  # back in the queue without spending an attempt
            self._queue.defer(session.connection(), inbound.id, inbound.attempts, DEFER_SECONDS)
            return DEFERRED
        except Exception as error:
            if lost_race(error):  # due again at once, its attempt kept; the unit ends (`_process_unit`)
                log.info("processing inbound email %d lost a race with another worker: %s", inbound.id, error)
                self._queue.defer(session.connection(), inbound.id, inbound.attempts, 0)
                return LOST_RACE
            self._record_failure(session, inbound, error)
            return InboundStatus.FAILED

    def _still_ours(self, session: Session, ids: list[int]) -> dict[int, Claimed]:
        """Renew the leases of rows still in processing, as the transaction's first statement.

        Being a write, it locks the rows (PostgreSQL) or the database (SQLite, whose plain
        reads would otherwise each see a different moment) until the transaction ends, so
        a row another worker finished meanwhile is never processed a second time. Returns
        the rows that are still ours, by id.
        """
        return {row[0]: Claimed(*row) for row in self._queue.renew(session.connection(), ids)}

    def _record_failure(self, session: Session, inbound: Claimed, error: Exception) -> None:
        log.warning("processing inbound email %d failed: %r", inbound.id, error)
        last_error = f"{type(error).__name__}: {error}"[:4000]
        # A concurrent worker stored the same message (IntegrityError): the retry, at once,
        # sees it as a duplicate. Otherwise backoff, and after the last attempt the dead letter.
        retry_now = isinstance(error, IntegrityError)
        self._queue.fail(session.connection(), inbound.id, inbound.attempts, last_error, retry_now=retry_now)

    def _outcome(self, session: Session, inbound: Claimed) -> tuple[InboundStatus, str, int | None]:
        """The row's new status, the outcome note and the ticket it went to."""
        # Our own links and codes quoted back are burned and never reach a stored or shown text.
        mail = self._exposed.scrub(session, self._parsing.parsed(inbound.id, inbound.raw), inbound.id)
        verdict = classify(mail, loop_token=self._settings.loop_token, envelope_sender=inbound.mail_from)
        plan = self._router.plan(session.connection(), inbound.rcpt_tos, mail.headers)
        if not plan.mailboxes and not plan.pushes:
            return InboundStatus.BOUNCED, "no recipient is a mailbox or routed any more", None
        if verdict.kind is MailKind.LOOP:
            return InboundStatus.IGNORED, "mail loop: " + "; ".join(verdict.reasons), None
        checked = self._verdicts.get(inbound.id)
        deliveries = [
            deliver_to_mailbox(session, self._settings, self.events, inbound, mail, verdict, route, checked)
            for route in plan.mailboxes.values()
        ]
        stored = [d for d in deliveries if not d.duplicate]
        ticket_id = next((d.ticket_id for d in deliveries if d.ticket_id), None)
        if deliveries and not stored:
            return InboundStatus.IGNORED, "duplicate of a message already on the ticket", ticket_id
        if plan.pushes:
            publish_received(
                session, self.events, inbound, mail, verdict, plan.pushes, stored,
                verdicts=checked.to_json() if checked is not None else None,
            )
        notes = [f"{verdict.kind}"] + ([f"rule {d.rule}" for d in stored if d.rule]) + list(mail.defects[:5])
        notes += [f"pushed to {len(plan.pushes)} webhook(s)"] if plan.pushes else []
        if checked is not None and checked.dmarc_failed:
            notes.append(f"DMARC fail for {checked.dmarc.domain}")
        return InboundStatus.DELIVERED, "; ".join(notes), ticket_id
