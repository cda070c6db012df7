"""The outbox worker against a real relay: retries on 4xx, failure on 5xx, at-least-once, leases."""

from __future__ import annotations

import asyncio
import mailbox
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession

from gateway.cli.runtime import Gateway
from gateway.models import Message, OutboxMessage, OutboxStatus, utcnow
from gateway.outbound.outbox import OutboxWorker
from gateway.outbound.senders import MaildirSender, MemorySender, SmtpSender
from gateway.outbound.sent_marks import SENT_MARK_LINGER_SECONDS, SentMarks
from gateway.settings import Settings
from gateway.storage.database import orm
from tests.mailflow import ALICE, new_requests
from tests.outbound.relays import Relay, relay_settings
from tests.support import ReceiveEmail


async def queued_acknowledgement(receive_email: ReceiveEmail, gateway: Gateway) -> OutboxMessage:
    await receive_email("new-request.eml")
    return await gateway.db.read(orm(lambda session: session.scalars(select(OutboxMessage)).one()))


async def outbox_row(gateway: Gateway, row_id: int) -> OutboxMessage:
    return await gateway.db.read(orm(lambda session: session.get_one(OutboxMessage, row_id)))


async def ticket_notes(gateway: Gateway) -> list[str]:
    def look(session: OrmSession):
        return list(session.scalars(select(Message.body_text).where(Message.internal.is_(True))).all())

    return await gateway.db.read(orm(look))


async def test_relay_delivery_authenticates_and_marks_the_row_sent(
    gateway: Gateway, settings: Settings, relay: Relay, receive_email: ReceiveEmail
) -> None:
    row = await queued_acknowledgement(receive_email, gateway)
    smtp = relay_settings(settings, relay)
    assert await OutboxWorker(gateway.db, smtp, SmtpSender(smtp)).drain() == 1
    [envelope] = relay.received
    assert (envelope.mail_from, envelope.rcpt_tos) == (row.mail_from, [ALICE])
    assert relay.logins == [(b"wicket", b"relay-secret")]
    done = await outbox_row(gateway, row.id)
    assert (done.status, done.attempts, done.sent_at is not None) == (OutboxStatus.SENT, 1, True)


async def test_relay_answering_4xx_is_retried_until_it_accepts(
    gateway: Gateway, settings: Settings, relay: Relay, receive_email: ReceiveEmail
) -> None:
    row = await queued_acknowledgement(receive_email, gateway)
    relay.data_replies = ["451 4.3.0 Try again later", "421 4.7.0 Busy"]
    smtp = relay_settings(settings, relay)
    await OutboxWorker(gateway.db, smtp, SmtpSender(smtp)).drain()
    done = await outbox_row(gateway, row.id)
    assert (done.status, done.attempts) == (OutboxStatus.SENT, 3)
    assert len(relay.received) == 1


async def test_temporary_failures_back_off_exponentially(
    gateway: Gateway, settings: Settings, relay: Relay, receive_email: ReceiveEmail
) -> None:
    row = await queued_acknowledgement(receive_email, gateway)
    relay.data_replies = ["451 4.3.0 Try again later"]
    smtp = relay_settings(settings, relay, outbox_retry_base_seconds=60)
    before = utcnow()
    await OutboxWorker(gateway.db, smtp, SmtpSender(smtp)).drain()
    waiting = await outbox_row(gateway, row.id)
    assert waiting.status == OutboxStatus.QUEUED and waiting.last_error == "451 4.3.0 Try again later"
    assert waiting.next_attempt_at is not None and waiting.next_attempt_at >= before + timedelta(seconds=60)


async def test_relay_answering_5xx_fails_the_email_and_says_so_on_the_ticket(
    gateway: Gateway, settings: Settings, relay: Relay, receive_email: ReceiveEmail
) -> None:
    row = await queued_acknowledgement(receive_email, gateway)
    relay.data_replies = ["554 5.7.1 Message rejected as spam"]
    smtp = relay_settings(settings, relay)
    await OutboxWorker(gateway.db, smtp, SmtpSender(smtp)).drain()
    failed = await outbox_row(gateway, row.id)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == (OutboxStatus.FAILED, 1, None)
    assert failed.last_error == "554 5.7.1 Message rejected as spam"
    assert await ticket_notes(gateway) == [f"Not delivered to {ALICE}: 554 5.7.1 Message rejected as spam"]


async def test_the_last_temporary_failure_is_final(
    gateway: Gateway, settings: Settings, relay: Relay, receive_email: ReceiveEmail
) -> None:
    row = await queued_acknowledgement(receive_email, gateway)
    relay.data_replies = ["451 4.3.0 Later"] * 5
    smtp = relay_settings(settings, relay, outbox_max_attempts=3)
    await OutboxWorker(gateway.db, smtp, SmtpSender(smtp)).drain()
    failed = await outbox_row(gateway, row.id)
    assert (failed.status, failed.attempts) == (OutboxStatus.FAILED, 3)
    assert len(await ticket_notes(gateway)) == 1


async def test_wrong_relay_credentials_are_a_temporary_failure(
    gateway: Gateway, settings: Settings, relay: Relay, receive_email: ReceiveEmail
) -> None:
    row = await queued_acknowledgement(receive_email, gateway)
    smtp = relay_settings(settings, relay, relay_password="wrong", outbox_retry_base_seconds=60)
    await OutboxWorker(gateway.db, smtp, SmtpSender(smtp)).drain()
    waiting = await outbox_row(gateway, row.id)
    assert waiting.status == OutboxStatus.QUEUED
    assert waiting.last_error is not None and "credentials" in waiting.last_error


async def test_an_unreachable_relay_is_a_temporary_failure(
    gateway: Gateway, settings: Settings, relay: Relay, receive_email: ReceiveEmail
) -> None:
    row = await queued_acknowledgement(receive_email, gateway)
    smtp = relay_settings(settings, relay, relay_port=1, outbox_retry_base_seconds=60)
    await OutboxWorker(gateway.db, smtp, SmtpSender(smtp)).drain()
    waiting = await outbox_row(gateway, row.id)
    assert waiting.status == OutboxStatus.QUEUED and "unreachable" in (waiting.last_error or "")


class Crash(BaseException):
    """The process dies: nothing after this point runs."""


@dataclass
class CrashAfterSend:
    """A relay connection that delivers the message, then the worker dies before marking it."""

    delivered: list[bytes] = field(default_factory=list)

    async def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        self.delivered.append(raw)
        raise Crash


def message_id(raw: bytes) -> bytes:
    return next(line for line in raw.split(b"\r\n") if line.startswith(b"Message-ID:"))


async def test_a_crash_between_send_and_mark_resends_once_with_the_same_message_id_after_the_lease(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    row = await queued_acknowledgement(receive_email, gateway)
    crashing = CrashAfterSend()
    with pytest.raises(Crash):
        await OutboxWorker(gateway.db, settings, crashing).drain()
    assert (await outbox_row(gateway, row.id)).status == OutboxStatus.SENDING

    second = MemorySender()
    assert await OutboxWorker(gateway.db, settings, second).drain() == 0  # the lease still holds

    def change(session: OrmSession):
        session.execute(update(OutboxMessage).values(lease_expires_at=utcnow() - timedelta(seconds=1)))

    await gateway.db.write(change)
    assert await OutboxWorker(gateway.db, settings, second).drain() == 1
    assert await OutboxWorker(gateway.db, settings, second).drain() == 0
    [resent] = second.sent
    assert message_id(resent.raw) == message_id(crashing.delivered[0])
    assert (await outbox_row(gateway, row.id)).status == OutboxStatus.SENT


async def test_concurrent_workers_send_each_email_exactly_once(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    await new_requests(receive_email, 6)
    senders = [MemorySender(), MemorySender()]
    small = Settings(**{**settings.model_dump(), "outbox_batch_size": 1})
    await asyncio.gather(*(OutboxWorker(gateway.db, small, s).drain() for s in senders))
    sent = sorted(r for s in senders for m in s.sent for r in m.rcpt_tos)
    assert sent == [f"c{n}@customer.test" for n in range(6)]


async def test_maildir_sender_files_messages_for_the_dev_mail_viewer(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    await queued_acknowledgement(receive_email, gateway)
    await OutboxWorker(gateway.db, settings, MaildirSender(settings.maildir_dir)).drain()
    [stored] = list(mailbox.Maildir(settings.maildir_dir, create=False))
    assert stored["Delivered-To"] == ALICE
    assert stored["Subject"] == "Re: [#1001] Printer on floor 3 is jammed"


async def test_an_email_whose_worker_dies_on_the_last_attempt_fails_with_a_note(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    row = await queued_acknowledgement(receive_email, gateway)
    once = Settings(**{**settings.model_dump(), "outbox_max_attempts": 1})
    with pytest.raises(Crash):
        await OutboxWorker(gateway.db, once, CrashAfterSend()).drain()

    def change(session: OrmSession):
        session.execute(update(OutboxMessage).values(lease_expires_at=utcnow() - timedelta(seconds=1)))

    await gateway.db.write(change)
    assert await OutboxWorker(gateway.db, once, MemorySender()).drain() == 0
    assert (await outbox_row(gateway, row.id)).status == OutboxStatus.FAILED
    [note] = await ticket_notes(gateway)
    assert note.startswith(f"Not delivered to {ALICE}: gave up")


@dataclass
class SlowSender:
    """A relay that takes `seconds` per email; records which rows were marked sent when each arrived."""

    gateway: Gateway
    seconds: float
    marked_before: list[int] = field(default_factory=list)

    async def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        def sent_rows(session: OrmSession) -> int:
            return len(session.scalars(select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.SENT)).all())

        self.marked_before.append(await self.gateway.db.read(orm(sent_rows)))
        await asyncio.sleep(self.seconds)


@pytest.fixture
def marked_per_commit(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Per commit from now on: how many rows it marked sent (commits marking none left out)."""
    marked_in: list[int] = []
    pending = [0]
    mark_sent = OutboxWorker._mark_sent

    def counted(worker: OutboxWorker, session: OrmSession, row: OutboxMessage) -> None:
        mark_sent(worker, session, row)
        pending[0] += 1

    def commit(_connection: object) -> None:
        if pending[0]:
            marked_in.append(pending[0])
            pending[0] = 0

    monkeypatch.setattr(OutboxWorker, "_mark_sent", counted)
    for engine in gateway.db.engines:
        event.listen(engine, "commit", commit)
    yield marked_in
    for engine in gateway.db.engines:
        event.remove(engine, "commit", commit)


async def test_emails_a_fast_relay_takes_are_marked_sent_in_one_commit_not_one_each(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail, marked_per_commit: list[int]
) -> None:
    # Marking rows sent is a transaction of its own beside the sending. A relay that
    # answers within the linger (the maildir here, which hands each email to a thread as a
    # relay's network round trip would yield) has the claim's rows marked together.
    await new_requests(receive_email, 8)
    await OutboxWorker(gateway.db, settings, MaildirSender(settings.maildir_dir)).drain()
    assert len(list(mailbox.Maildir(settings.maildir_dir, create=False))) == 8
    rows = await gateway.db.read(orm(lambda session: list(session.scalars(select(OutboxMessage.status)))))
    assert rows == [OutboxStatus.SENT] * 8
    assert marked_per_commit == [8]


async def test_a_slow_relay_has_each_email_marked_sent_while_the_next_are_sent(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    # The linger bounds how long a sent row waits for its mark, so a crash resends only the
    # emails of the last moments, however long the claim takes to send.
    await new_requests(receive_email, 4)
    slow = SlowSender(gateway, seconds=SENT_MARK_LINGER_SECONDS * 4)
    await OutboxWorker(gateway.db, settings, slow).drain()
    assert slow.marked_before[0] == 0
    assert slow.marked_before[-1] >= 2, slow.marked_before


async def test_a_worker_stopped_while_the_database_fails_its_last_marks_still_stops(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stopping, the worker still records what the relay took (SentMarks.flush); when that
    # commit fails, its error must not swallow the stop and leave the worker running.
    await new_requests(receive_email, 1)
    sending = asyncio.Event()

    class Stalled:
        async def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
            sending.set()
            await asyncio.Event().wait()

        async def close(self) -> None:
            return None

    async def unreachable(self: object) -> None:
        raise OperationalError("COMMIT", {}, Exception("the database went away"))

    monkeypatch.setattr(SentMarks, "flush", unreachable)
    worker = asyncio.create_task(OutboxWorker(gateway.db, settings, Stalled()).run())
    await asyncio.wait_for(sending.wait(), 5)
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(worker, 5)
