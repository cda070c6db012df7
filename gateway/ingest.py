"""The processor: drains pending InboundEmail rows into tickets.

A worker claims a batch of rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL; on SQLite the
single writer serialises claims), leasing each for a while so a crashed worker's rows are
reclaimed. Each row is then parsed, classified, routed and threaded in a savepoint of a
transaction that gathers several rows (one commit, one disk flush, for all of them; the
transaction is a synchronous unit of work, like every ticket operation), and
the lifecycle wrapper moves it to delivered, bounced or ignored (duplicates and our
own mail coming back in a loop; the raw bytes stay on the row) — or, on an
exception, to failed with the error kept and a retry scheduled with backoff. After the
last attempt the row stays failed (the dead-letter state) until `wicket replay --failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, InterfaceError
from sqlalchemy.orm import Session

from gateway.agent_replies import deliver_agent_mail
from gateway.classify import Classification, MailKind, classify
from gateway.conversations import ThreadRule, find_conversation
from gateway.db import Database
from gateway.logs import bound
from gateway.events import EventBus, MessageAdded, TicketCreated
from gateway.metrics import PROCESSED, PROCESSING_SECONDS
from gateway.models import (
    Agent,
    Attachment,
    AuthorType,
    InboundEmail,
    InboundStatus,
    Mailbox,
    Message,
    utcnow,
)
from gateway.parse import ParsedEmail, parse_email
from gateway.routing import Route, Router
from gateway.settings import Settings
from gateway.tickets import add_participant, contact_for, open_ticket, reopen_on_customer_reply

log = logging.getLogger(__name__)

UNKNOWN_SENDER = "unknown-sender@invalid"

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
_MESSAGES = Message.__table__
_INSERT_MESSAGE = insert(_MESSAGES).returning(_MESSAGES.c.id, _MESSAGES.c.public_id)
_MESSAGE_COLUMNS = tuple(c.key for c in _MESSAGES.columns if c.key not in ("id", "public_id"))
# Statements built once: building and cache-keying an expression costs more than running it.
_DUPLICATE = select(Message.id, Message.ticket_id).where(
    Message.mailbox_id == bindparam("mailbox_id"), Message.dedupe_key == bindparam("key")
)
_EARLIER_UNPROCESSED = (
    select(InboundEmail.id)
    .where(
        InboundEmail.message_id.in_(bindparam("ids", expanding=True)),
        InboundEmail.id < bindparam("inbound_id"),
        InboundEmail.status.in_([InboundStatus.PENDING, InboundStatus.PROCESSING]),
    )
    .limit(1)
)
_TEAM_MEMBER = select(Agent.id).where(Agent.email == bindparam("email"), Agent.active.is_(True))


def dedupe_key(message_id: str | None, raw_sha256: str) -> str:
    """Same Message-ID, or the same bytes when there is none, means the same message."""
    if message_id:
        return "mid:" + hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
    return "raw:" + raw_sha256


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed inbound row, as plain values: the processor writes it back with Core UPDATEs."""

    id: int
    raw: bytes
    mail_from: str
    rcpt_tos: list[str]
    sha256: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """What processing one row did for one mailbox."""

    ticket_id: int | None
    message_id: int | None
    duplicate: bool
    rule: ThreadRule | None


class WaitForEarlier(Exception):
    """The message continues one that is not processed yet; try again shortly."""


class Processor:
    def __init__(self, db: Database, settings: Settings, router: Router, events: EventBus) -> None:
        self._db = db
        self._settings = settings
        self._router = router
        self._events = events
        self._wakeup = asyncio.Event()
        self._unfinished: list[int] = []  # claimed by us, not yet through a committed transaction

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
                .returning(InboundEmail.id)
            )
            return sorted(rows.scalars().all())

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
        ours = self._still_ours(session, ids)
        began = time.monotonic()
        for position, inbound_id in enumerate(ids):
            if position and time.monotonic() - began >= self._settings.process_commit_seconds:
                return ids[position:]
            started = time.perf_counter()
            with bound(inbound_id=inbound_id):
                outcome = self._process_one(session, ours.get(inbound_id))
            PROCESSED.labels(str(outcome)).inc()
            PROCESSING_SECONDS.observe(time.perf_counter() - started)
        return []

    def _process_one(self, session: Session, inbound: Claimed | None) -> str:
        if inbound is None:
            return "skipped"  # another worker reclaimed and finished it after our lease ran out
        try:
            with session.begin_nested():
                status, outcome, ticket_id = self._outcome(session, inbound)
                # All at once, after the message's own rows: one UPDATE of the inbound row.
                finished = {"outcome": outcome[:4000], "ticket_id": ticket_id, "last_error": None}
                _update(session, inbound.id, status=status, lease_expires_at=None, next_attempt_at=None, **finished)
            return status
        except WaitForEarlier:  # back in the queue without spending an attempt
            retry_at = utcnow() + timedelta(seconds=0.2)
            _update(session, inbound.id, status=InboundStatus.PENDING, lease_expires_at=None, next_attempt_at=retry_at,
                    attempts=inbound.attempts - 1)
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
        _update(session, inbound.id, status=InboundStatus.FAILED, lease_expires_at=None, next_attempt_at=retry_at,
                last_error=last_error)

    def _outcome(self, session: Session, inbound: Claimed) -> tuple[InboundStatus, str, int | None]:
        """The row's new status, the outcome note and the ticket it went to."""
        mail = parse_email(inbound.raw)
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
        deliveries = [self._deliver_to(session, inbound, mail, verdict, r) for r in routes.values()]
        stored = [d for d in deliveries if not d.duplicate]
        ticket_id = next((d.ticket_id for d in deliveries if d.ticket_id), None)
        if not stored:
            return InboundStatus.IGNORED, "duplicate of a message already on the ticket", ticket_id
        notes = [f"{verdict.kind}"] + ([f"rule {d.rule}" for d in stored if d.rule]) + list(mail.defects[:5])
        return InboundStatus.DELIVERED, "; ".join(notes), ticket_id

    def _deliver_to(
        self,
        session: Session,
        inbound: Claimed,
        mail: ParsedEmail,
        verdict: Classification,
        route: Route,
    ) -> Delivery:
        key = dedupe_key(mail.message_id, inbound.sha256)
        existing = session.connection().execute(_DUPLICATE, {"mailbox_id": route.mailbox_id, "key": key}).first()
        if existing is not None:
            return Delivery(existing.ticket_id, existing.id, duplicate=True, rule=None)

        # Issue #6: mail on a signed agent address is the agent's reply when it is really theirs;
        # otherwise it continues below as mail to the plain mailbox address.
        if route.reply is not None and route.reply.kind == "a":
            action = deliver_agent_mail(session, self._settings, inbound.id, inbound.mail_from, mail, verdict, route, key)
            if action is not None:
                return Delivery(action.ticket_id, action.id, duplicate=False, rule=ThreadRule.REPLY_ADDRESS)
            route = Route(route.mailbox_id, route.mailbox_address, None)

        mailbox = held_mailbox(session, route.mailbox_id)
        # Column sizes bound what junk headers can put here (PostgreSQL refuses longer values).
        sender_email = ((mail.sender.email if mail.sender else "") or inbound.mail_from or UNKNOWN_SENDER)[:320]
        sender_name = (mail.sender.name if mail.sender else "")[:200]
        sender = contact_for(session, sender_email, sender_name)
        ticket, rule = find_conversation(session, mailbox.id, mail, route.reply, sender.id)
        if ticket is None:
            self._wait_for_earlier(session, inbound, mail)

        created = ticket is None
        reopened = False
        if ticket is None:
            requester = sender
            subject = mail.subject
            if mail.forwarded is not None and self._is_team_member(session, sender_email):
                original = mail.forwarded.sender
                requester = contact_for(session, original.email or sender_email, original.name)
                subject = mail.forwarded.subject or subject
            flag = None if verdict.kind is MailKind.NORMAL else str(verdict.kind)
            ticket = open_ticket(session, mailbox, requester, subject, flag)
            if requester.id != sender.id:
                add_participant(session, ticket, sender)
        elif verdict.answerable:
            add_participant(session, ticket, sender)
            reopened = reopen_on_customer_reply(ticket)

        # Core inserts: the ORM's unit of work cost more than everything else in this step.
        message = Message(
            ticket_id=ticket.id,
            mailbox_id=mailbox.id,
            dedupe_key=key,
            inbound_email_id=inbound.id,
            direction="in",
            author_type=AuthorType.CUSTOMER,
            author_contact_id=sender.id,
            author_agent_id=None,
            internal=False,
            classification=str(verdict.kind),
            thread_rule=str(rule),
            rfc_message_id=mail.message_id,
            in_reply_to=list(mail.in_reply_to),
            references=list(mail.references),
            subject=mail.subject,
            from_email=sender_email,
            from_name=sender_name,
            to=[a.email for a in mail.to],
            cc=[a.email for a in mail.cc],
            body_text=mail.text,
            body_html=mail.html,
            reply_text=mail.reply_text,
            quoted_text=mail.quoted_text,
            defects=list(mail.defects),
            sent_at=mail.date,
            created_at=ticket.created_at if created else utcnow(),  # one moment: no second ticket UPDATE
        )
        rows = session.connection()
        message.id, message.public_id = rows.execute(_INSERT_MESSAGE, _column_values(message)).one()
        if mail.attachments:
            rows.execute(
                insert(Attachment.__table__),
                [
                    {
                        "message_id": message.id,
                        "filename": a.filename,
                        "content_type": a.content_type,
                        "size": a.size,
                        "sha256": a.sha256,
                        "content_id": a.content_id,
                        "inline": a.inline,
                        "data": a.data,
                    }
                    for a in mail.attachments
                ],
            )
        if not created:  # a new ticket's row already says so: nothing for the ORM to flush
            ticket.last_activity_at = message.created_at

        if created:
            self._events.publish(session, TicketCreated(mailbox, ticket, message, verdict, mail))
        else:
            self._events.publish(
                session, MessageAdded(mailbox, ticket, message, verdict, mail, reopened)
            )
        return Delivery(ticket.id, message.id, duplicate=False, rule=rule)

    @staticmethod
    def _wait_for_earlier(session: Session, inbound: Claimed, mail: ParsedEmail) -> None:
        """Raise WaitForEarlier when a message this one replies to is still being processed.

        With several workers a reply can be claimed while its parent is still in another
        worker's transaction; threading it now would open a second ticket.
        """
        ids = [i for i in (*mail.in_reply_to, *mail.references) if i][:100]
        if not ids:
            return
        earlier = session.connection().scalar(_EARLIER_UNPROCESSED, {"ids": ids, "inbound_id": inbound.id})
        if earlier is not None:
            raise WaitForEarlier(earlier)

    @staticmethod
    def _is_team_member(session: Session, email: str) -> bool:
        return session.connection().scalar(_TEAM_MEMBER, {"email": email.lower()}) is not None


def _update(session: Session, inbound_id: int, **values: object) -> None:
    session.connection().execute(update(_INBOUND).where(_INBOUND.c.id == inbound_id).values(**values))


def held_mailbox(session: Session, mailbox_id: int) -> Mailbox:
    """The mailbox, held for the rest of the transaction (the identity map holds only weakly,
    so each message would load it again)."""
    held: dict[int, Mailbox] = session.info.setdefault("wicket.mailboxes", {})
    mailbox = held.get(mailbox_id)
    if mailbox is None:
        mailbox = held[mailbox_id] = session.get_one(Mailbox, mailbox_id)
    return mailbox


def _column_values(message: Message) -> dict[str, object]:
    return {key: getattr(message, key) for key in _MESSAGE_COLUMNS}
