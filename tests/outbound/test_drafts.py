"""Ticket mail is queued as a draft and rendered, with its magic link, when it is delivered."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

import gateway.outbound.drafts as drafts
from gateway.cli.runtime import Gateway
from gateway.models import MagicLink, OutboxMessage, OutboxStatus, utcnow
from gateway.outbound.outbox import OutboxWorker
from gateway.outbound.senders import MemorySender, SentMail
from gateway.settings import Settings
from gateway.storage.database import orm
from tests.mailflow import ALICE, LINK, add_tom, build_mail, outbox_sender, settle, text_of
from tests.support import SUPPORT, ReceiveEmail


class RefusingOnce(MemorySender):
    """A relay that answers the first attempt with a temporary failure."""

    async def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        if not hasattr(self, "refused"):
            self.refused = raw
            raise OSError("relay busy")
        await super().send(mail_from, rcpt_tos, raw)


async def links_issued(gateway: Gateway) -> int:
    return await gateway.db.read(orm(lambda session: session.scalar(select(func.count(MagicLink.id))) or 0))


async def test_processing_queues_a_draft_and_issues_no_link_until_delivery(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await receive_email("new-request.eml")

    def look(session: Session):
        [row] = session.scalars(select(OutboxMessage)).all()
        return row

    row = await gateway.db.read(orm(look))
    assert row.raw is None and row.draft is not None and row.draft["template"] == "acknowledgement"
    assert await links_issued(gateway) == 0
    [ack] = (await settle(gateway)).to(ALICE)
    assert await links_issued(gateway) == 1
    assert LINK.search(text_of(ack)) is not None
    assert ack.message["Message-ID"] == f"<{row.rfc_message_id}>"


async def test_a_retried_draft_keeps_its_message_id_and_sends_a_fresh_link_revoking_the_first(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    await receive_email("new-request.eml")
    worker_settings = Settings(**{**settings.model_dump(), "outbox_retry_base_seconds": 0})
    sender = RefusingOnce()
    await OutboxWorker(gateway.db, worker_settings, sender).drain()
    [sent] = sender.sent
    first = SentMail(sent.mail_from, sent.rcpt_tos, sender.refused)
    assert first.message["Message-ID"] == sent.message["Message-ID"]
    first_link, second_link = LINK.search(text_of(first)), LINK.search(text_of(sent))
    assert first_link is not None and second_link is not None and first_link.group(1) != second_link.group(1)

    def look(session: Session):
        row = session.scalars(select(OutboxMessage)).one()
        links = session.scalars(select(MagicLink).order_by(MagicLink.id)).all()
        return row, links

    row, links = await gateway.db.read(orm(look))
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)
    assert [link.burned for link in links] == [True, False] and row.link_id == links[1].id


async def test_a_notification_rendered_later_threads_on_what_came_before_it_only(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await add_tom(gateway)
    first = build_mail(sender=ALICE, to=SUPPORT, subject="Invoice", body="Where is it?")
    await receive_email(first)
    first_id = first.split(b"Message-ID: ")[1].split(b"\n")[0].strip().decode()
    second = build_mail(sender=ALICE, to=SUPPORT, subject="Re: Invoice", body="Any news?", in_reply_to=first_id)
    await receive_email(second)
    sender = await settle(gateway)
    notifications = [m for m in sender.sent if ALICE not in m.rcpt_tos]
    assert len(notifications) == 2
    earlier, later = (m.message for m in notifications)
    assert earlier["References"].split()[0] == later["References"].split()[0] == first_id
    assert earlier["Message-ID"] not in earlier["References"]
    assert earlier["Message-ID"] in later["References"]
    assert later["Message-ID"] not in earlier["References"] + later["References"]


async def test_ticket_mail_is_composed_while_the_database_is_free_for_other_writers(
    gateway: Gateway, receive_email: ReceiveEmail, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Composing MIME is the costly part of ticket mail. On SQLite the one write lock is what
    # every 250 of the node waits for, so no transaction may be open while an email is built.
    if not gateway.db.is_sqlite:
        pytest.skip("PostgreSQL has no database-wide write lock")
    await receive_email("new-request.eml")
    compose, probes = drafts.compose, []

    def compose_and_probe(*args: Any, **kwargs: Any) -> Any:
        other = sqlite3.connect(gateway.db.url.database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" while a transaction is open
            other.execute("ROLLBACK")
            probes.append("free")
        except sqlite3.OperationalError as error:
            probes.append(str(error))
        finally:
            other.close()
        return compose(*args, **kwargs)

    monkeypatch.setattr(drafts, "compose", compose_and_probe)
    [ack] = (await settle(gateway)).to(ALICE)
    assert probes == ["free"]
    assert LINK.search(text_of(ack)) is not None


async def test_a_draft_whose_lease_is_lost_while_it_is_composed_is_not_sent_and_its_link_is_burned(
    gateway: Gateway, receive_email: ReceiveEmail, monkeypatch: pytest.MonkeyPatch
) -> None:
    await receive_email("new-request.eml")
    await gateway.processor.drain()
    compose, loop = drafts.compose, asyncio.get_running_loop()

    def take_over(session: Session) -> None:  # a second worker claims the row, its lease expired
        session.execute(update(OutboxMessage).values(
            attempts=OutboxMessage.attempts + 1, lease_expires_at=utcnow() + timedelta(minutes=5)))

    def compose_while_another_worker_takes_over(*args: Any, **kwargs: Any) -> Any:
        asyncio.run_coroutine_threadsafe(gateway.db.write(take_over), loop).result(timeout=5)
        return compose(*args, **kwargs)

    monkeypatch.setattr(drafts, "compose", compose_while_another_worker_takes_over)
    await gateway.outbox.deliver_batch()
    assert outbox_sender(gateway).sent == []

    def look(session: Session):
        return session.scalars(select(OutboxMessage)).one(), session.scalars(select(MagicLink)).all()

    row, links = await gateway.db.read(orm(look))
    assert [link.burned for link in links] == [True]  # issued for the email that never left
    assert (row.raw, row.attempts) == (None, 2)  # the other worker's row, untouched


async def test_a_draft_whose_lease_was_lost_before_it_was_prepared_issues_nothing(
    gateway: Gateway, receive_email: ReceiveEmail, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another worker has the row now and issues its own link (for a request confirmation
    # it also notes that link on the request): this worker must not issue one, nor write over it.
    await receive_email("new-request.eml")
    await gateway.processor.drain()
    claim = gateway.outbox._claim  # noqa: SLF001 - the moment between claiming and preparing

    def take_over(session: Session) -> None:
        session.execute(update(OutboxMessage).values(
            attempts=OutboxMessage.attempts + 1, lease_expires_at=utcnow() + timedelta(minutes=5)))

    async def claim_then_lose() -> Any:
        rows = await claim()
        await gateway.db.write(take_over)
        return rows

    monkeypatch.setattr(gateway.outbox, "_claim", claim_then_lose)
    await gateway.outbox.deliver_batch()
    assert outbox_sender(gateway).sent == []
    assert await links_issued(gateway) == 0


def test_an_email_carrying_no_secret_is_serialized_once_and_kept_as_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    # A notification of a message without files has no link, code or download to replace:
    # serializing it again for the copy would only repeat the bytes sent.
    email = EmailMessage()
    email["Subject"] = "New message on #1001"
    email.set_content("Alice wrote: where is my invoice?")
    serialized, as_bytes = [], EmailMessage.as_bytes

    def counting(message: EmailMessage, *args: Any, **kwargs: Any) -> bytes:
        serialized.append(message)
        return as_bytes(message, *args, **kwargs)

    monkeypatch.setattr(EmailMessage, "as_bytes", counting)
    copy = drafts.rendered(email, None)
    assert copy.kept == copy.raw and b"where is my invoice?" in copy.raw
    assert len(serialized) == 1
