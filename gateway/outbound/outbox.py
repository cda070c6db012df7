"""The durable outbox: queueing outbound mail in the caller's transaction, and delivering it.

`enqueue` renders nothing and sends nothing: it stores a finished `EmailMessage` that
carries no secret as bytes, in the same transaction as the change that caused it, so a
rolled-back change sends nothing and a committed one is never forgotten. Mail with a
magic link (ticket mail, sign-in mail) is queued the same way as a draft
(gateway/outbound/drafts.py), because the link must not exist before the email leaves and no
column may hold it.

`OutboxWorker` delivers. The rows are a leased queue (gateway/storage/queue.py;
docs/architecture.md, "The leased queue"): it claims due rows by marking them `sending`
with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), renders a draft at every attempt
(a fresh link each time, the earlier attempt's revoked; the row keeps only the copy with
link and code replaced, written while the row is still ours), DKIM-signs the email and
hands it to the Sender, then marks it `sent` right after the relay said 250, in a short
transaction that the rows sent meanwhile share (gateway/outbound/sent_marks.py). On
PostgreSQL the drafts of one claim render in one transaction, each in a savepoint.
A 4xx, a timeout or an unreachable relay puts the row back in the queue
with exponential backoff; a 5xx, or the last attempt, marks it `failed` and writes an
internal note on the ticket, as does a claim that finds a row's worker lost on its last
attempt. Delivery is at-least-once: only a crash in the window between the relay's 250
and the `sent` commit (one local transaction, shared by the rows sent meanwhile; a
stopping worker finishes it before exiting) sends a message again once its lease has
expired, with the same Message-ID, so receiving systems that deduplicate by Message-ID
show it once. A lease still running is never
claimed, so two workers never send one row. `record_bounce` marks a row `bounced` when a
delivery report for it comes back. Mail to customers that is sent or given up on becomes
a `message.sent` or `delivery.failed` webhook event in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from email.policy import SMTP
from functools import partial

from sqlalchemy import bindparam, insert, select, tuple_, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from gateway.auth.exposed import revoke_link
from gateway.models import Mailbox, Message, OutboxMessage, OutboxStatus, Ticket, loaded, utcnow
from gateway.outbound.compose import CUSTOMER_KINDS
from gateway.outbound.dkim import DkimSigner
from gateway.outbound.drafts import Prepared, Rendered, prepare_draft
from gateway.outbound.request_mail import REQUEST_CONFIRMATION, prepare_request_confirmation
from gateway.outbound.senders import PermanentFailure, Sender
from gateway.outbound.sent_marks import SentMarks
from gateway.outbound.signin_mail import SIGNIN, prepare_signin_draft
from gateway.outbound.webhooks.recorder import about_ticket, record_event
from gateway.settings import Settings
from gateway.storage import statements
from gateway.storage.database import Database
from gateway.storage.queue import LeasedQueue, Policy, QueueTable, Row, Statuses
from gateway.tickets.notes import add_note

log = logging.getLogger(__name__)

LOST = "gave up: the worker was lost while sending, too many times"
_COLUMNS = tuple(column.key for column in OutboxMessage.__table__.c)  # a claimed row comes back whole
# The outbox queue (docs/architecture.md, "The leased queue"); a failed attempt waits as queued.
OUTBOX_QUEUE = QueueTable(
    OutboxMessage.__table__,
    Statuses(
        ready=OutboxStatus.QUEUED, leased=OutboxStatus.SENDING, retrying=OutboxStatus.QUEUED, dead=OutboxStatus.FAILED
    ),
    returning=_COLUMNS[1:],
    settle_values=("sent_at",),
    lost_error=LOST,
    name="outbox",
)
# Prepared like the queue's own moves: the outbox keeps a copy of every email it sends.
_KEEP_COPY = statements.prepare(
    "outbox.keep_copy",
    update(OutboxMessage.__table__)
    .where(OUTBOX_QUEUE.fence(bindparam("row_id"), bindparam("attempt")))
    .values(raw=bindparam("raw"), link_id=bindparam("link_id"))
    .returning(OutboxMessage.__table__.c.id),
)


def enqueue(
    session: Session,
    *,
    mailbox: Mailbox,
    to: list[str],
    email: EmailMessage,
    kind: str,
    ticket: Ticket | None = None,
    message: Message | None = None,
    envelope_from: str | None = None,
) -> OutboxMessage:
    """Queue `email` for delivery to `to`; it must already carry its Message-ID and no link or code."""
    message_id = email["Message-ID"]
    if not message_id:
        raise ValueError("outbound email needs a Message-ID before it is queued")
    row = OutboxMessage(
        kind=kind,
        mailbox_id=mailbox.id,
        ticket_id=ticket.id if ticket else None,
        message_id=message.id if message else None,
        mail_from=envelope_from or mailbox.address,
        rcpt_tos=to,
        rfc_message_id=str(message_id).strip().strip("<>"),
        raw=email.as_bytes(policy=SMTP),
        next_attempt_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def queue_email(
    session: Session, *, mailbox: Mailbox, to: list[str], email: EmailMessage, kind: str, envelope_from: str | None = None
) -> None:
    """`enqueue` for a synchronous unit of work: a finished email with no link or code in it."""
    message_id = email["Message-ID"]
    if not message_id:
        raise ValueError("outbound email needs a Message-ID before it is queued")
    session.execute(
        insert(OutboxMessage).values(
            kind=kind,
            mailbox_id=mailbox.id,
            mail_from=envelope_from or mailbox.address,
            rcpt_tos=to,
            rfc_message_id=str(message_id).strip().strip("<>"),
            raw=email.as_bytes(policy=SMTP),
            next_attempt_at=utcnow(),
        )
    )


def record_bounce(session: Session, mailbox_id: int, rfc_message_id: str, reason: str) -> None:
    """Mark the email a delivery report names as bounced (the report itself is on the ticket)."""
    session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.mailbox_id == mailbox_id,
            OutboxMessage.rfc_message_id == rfc_message_id,
            OutboxMessage.status != OutboxStatus.BOUNCED,
        )
        .values(status=OutboxStatus.BOUNCED, last_error=reason[:4000])
    )


def _note_failure(session: Session, row: OutboxMessage, reason: str) -> None:
    """Say on the ticket that an email will not arrive, so an agent can act on it."""
    if row.ticket_id is not None:
        ticket = session.get_one(Ticket, row.ticket_id)
        add_note(session, ticket, f"Not delivered to {', '.join(row.rcpt_tos)}: {reason}", thread_rule="delivery")


def _record_webhook(session: Session, row: OutboxMessage, event_type: str, detail: dict[str, str]) -> None:
    """`message.sent` or `delivery.failed` for mail to customers, in the transaction that settles it."""
    if row.ticket_id is None or row.kind not in CUSTOMER_KINDS:
        return
    ticket = session.get_one(Ticket, row.ticket_id)
    data = {"ticket": about_ticket(session, ticket), "email": {
        "id": row.public_id, "kind": row.kind, "to": list(row.rcpt_tos), "message_id": row.rfc_message_id, **detail,
    }}  # fmt: skip
    record_event(session, event_type, data, ticket)


def _compose_all(prepared: dict[int, Prepared]) -> dict[int, Rendered | Exception]:
    """Every prepared email composed, or the error its composing raised."""
    composed: dict[int, Rendered | Exception] = {}
    for row_id, email in prepared.items():
        try:
            composed[row_id] = email.render()
        except Exception as error:  # noqa: BLE001 - the row's own failed attempt
            composed[row_id] = error
    return composed


def _outbox_row(values: Row) -> OutboxMessage:
    return loaded(OutboxMessage, dict(zip(_COLUMNS, values, strict=True)))


class OutboxWorker:
    def __init__(self, db: Database, settings: Settings, sender: Sender) -> None:
        self._db = db
        self._settings = settings
        self._sender = sender
        self._signer = DkimSigner(settings)
        self._queue = LeasedQueue(OUTBOX_QUEUE, Policy(
            batch=settings.outbox_batch_size, lease_seconds=settings.outbox_lease_seconds,
            max_attempts=settings.outbox_max_attempts, retry_base_seconds=settings.outbox_retry_base_seconds,
            retry_max_seconds=settings.outbox_retry_max_seconds,
        ))  # fmt: skip

    async def run(self) -> None:
        """Deliver forever; back off while the database is unreachable."""
        backoff = self._settings.outbox_poll_seconds
        while True:
            try:
                delivered = await self.deliver_batch()
                backoff = self._settings.outbox_poll_seconds
            except (OperationalError, InterfaceError, OSError) as error:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # Stopping, and the last marks' commit failed: its error took the stop's
                    # place, and swallowing it would leave the worker running.
                    raise asyncio.CancelledError from error
                log.warning("outbox cannot reach the database (%s); retrying in %.0fs", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            if not delivered:
                await asyncio.sleep(self._settings.outbox_poll_seconds)

    async def drain(self) -> int:
        """Deliver until nothing is due; return how many attempts were made."""
        total = 0
        while attempted := await self.deliver_batch():
            total += attempted
        return total

    async def deliver_batch(self) -> int:
        """Claim due rows, render their drafts together, send each and mark it sent."""
        rows = await self._claim()
        emails = await self._render_all(rows)
        sent = SentMarks(self._db, self._mark_sent)
        try:
            for row in rows:
                email = emails[row.id]
                if email is None:
                    continue  # the lease went to another worker meanwhile
                try:
                    if isinstance(email, Exception):
                        raise email
                    domain = row.mail_from.rpartition("@")[2]
                    await self._sender.send(row.mail_from, list(row.rcpt_tos), self._signer.sign(email, domain))
                except Exception as error:  # every failure is recorded on the row, never raised
                    await self._record_failure(row, error)
                    continue
                sent.add(row)
        finally:
            await sent.flush()  # the relay has these: record that, even when the worker stops
        return len(rows)

    async def _claim(self) -> list[OutboxMessage]:
        return await self._db.write(self._claim_in)

    def _claim_in(self, session: Session) -> list[OutboxMessage]:
        claim = self._queue.claim(session.connection())
        for lost in claim.lost:
            _note_failure(session, _outbox_row(lost), LOST)
            _record_webhook(session, _outbox_row(lost), "delivery.failed", {"error": LOST})
        return [_outbox_row(values) for values in claim.rows]

    async def _render_all(self, rows: list[OutboxMessage]) -> dict[int, bytes | Exception | None]:
        """Each row's email to send: its draft prepared, composed, and its copy kept.

        Three steps, so no transaction is open while MIME is composed (on SQLite, a
        transaction holds the database's one write lock, which every 250 waits for):

        1. one transaction prepares the claim's drafts, each in a savepoint: it reads what
           the email needs and issues its link (on SQLite it ends early, and the next takes
           the rest, as soon as an SMTP listener waits);
        2. the emails are composed, outside any transaction, on a thread;
        3. one transaction stores each row's copy without secrets, if the row is still ours,
           and burns the links of emails that will not leave: a lease lost meanwhile, a
           failed composition. A crash between 1 and 3 leaves links nobody ever saw expire.

        A row whose lease was lost maps to None, one whose rendering failed to the error,
        recorded as a failed attempt. The bytes sent are never stored.
        """
        emails: dict[int, bytes | Exception | None] = {row.id: row.raw for row in rows if row.draft is None}
        drafts = [row for row in rows if row.draft is not None]
        if not drafts:
            return emails
        prepared: dict[int, Prepared] = {}
        left = drafts
        while left:
            left = await self._db.write(partial(self._prepare_together, left, prepared, emails))
        composed = await asyncio.to_thread(_compose_all, prepared)
        await self._db.write(partial(self._keep_copies, drafts, prepared, composed, emails))
        return emails

    def _prepare_together(
        self,
        drafts: list[OutboxMessage],
        prepared: dict[int, Prepared],
        emails: dict[int, bytes | Exception | None],
        session: Session,
    ) -> list[OutboxMessage]:
        """Prepare drafts in this transaction until a listener waits; return the rest."""
        # A write before the first savepoint: on SQLite the transaction then holds the write
        # lock (waiting for it if need be), where a savepoint that reads first could not take
        # it later and fail as "database is locked". It also finds the rows still ours and
        # keeps them so until the commit (locked on PostgreSQL): a row another worker took
        # over is not prepared, so its link, and a request's note of it, stay that worker's.
        leases = tuple_(OutboxMessage.id, OutboxMessage.attempts).in_([(row.id, row.attempts) for row in drafts])
        ours = set(session.scalars(
            update(OutboxMessage).where(leases, OutboxMessage.status == OutboxStatus.SENDING)
            .values(status=OutboxMessage.status).returning(OutboxMessage.id)
        ))  # fmt: skip
        # Loaded once and held for the transaction: the session's identity map holds objects
        # weakly, so each draft's `session.get` would otherwise read its mailbox and ticket again.
        held: list[object] = []
        if len(drafts) > 1:  # one draft reads each once anyway
            held += session.scalars(select(Mailbox).where(Mailbox.id.in_({row.mailbox_id for row in drafts})))
            held += session.scalars(select(Ticket).where(Ticket.id.in_({row.ticket_id for row in drafts})))
        for position, row in enumerate(drafts):
            if position and self._db.listeners_waiting():
                return drafts[position:]
            if row.id not in ours:
                emails[row.id] = None  # another worker took the row over
                continue
            prepare = {SIGNIN: prepare_signin_draft, REQUEST_CONFIRMATION: prepare_request_confirmation}.get(
                row.kind, prepare_draft
            )
            try:
                with session.begin_nested():
                    prepared[row.id] = prepare(session, self._settings, row)
            except Exception as error:  # noqa: BLE001 - the row's own failed attempt
                emails[row.id] = error
        del held  # released with the transaction
        return []

    def _keep_copies(
        self,
        drafts: list[OutboxMessage],
        prepared: dict[int, Prepared],
        composed: dict[int, Rendered | Exception],
        emails: dict[int, bytes | Exception | None],
        session: Session,
    ) -> None:
        for row in drafts:
            if row.id not in prepared:
                continue
            email, issued = composed[row.id], prepared[row.id].issued
            stored = 0
            if isinstance(email, Rendered):
                kept = {"row_id": row.id, "attempt": row.attempts, "raw": email.kept, "link_id": email.link_id}
                stored = len(statements.rows(_KEEP_COPY, session.connection(), kept))
            if not stored and issued is not None:
                revoke_link(session, issued.link.id)  # this email will not leave with it
            if isinstance(email, Exception):
                emails[row.id] = email
            elif not stored:
                emails[row.id] = None  # another worker took the row over meanwhile
            else:
                row.raw, row.link_id = email.kept, email.link_id
                emails[row.id] = email.raw

    def _mark_sent(self, session: Session, row: OutboxMessage) -> None:
        sent_at = utcnow()
        if self._queue.finish(session.connection(), row.id, row.attempts, OutboxStatus.SENT, sent_at=sent_at):
            _record_webhook(session, row, "message.sent", {"sent_at": sent_at.isoformat()})

    async def _record_failure(self, row: OutboxMessage, error: Exception) -> None:
        reason = f"{error}"[:4000] or type(error).__name__
        log.warning("outbox message %d to %s: attempt %d failed: %s", row.id, row.rcpt_tos, row.attempts, reason)
        permanent = isinstance(error, PermanentFailure)

        def fail(session: Session) -> None:
            status = self._queue.fail(session.connection(), row.id, row.attempts, reason, permanent=permanent)
            if status == OutboxStatus.FAILED:
                _note_failure(session, row, reason)
                _record_webhook(session, row, "delivery.failed", {"error": reason})

        await self._db.write(fail)
