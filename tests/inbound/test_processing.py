"""Processing stored mail into tickets: threading, dedupe, classification, failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from sqlalchemy import event, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import (
    Agent,
    Contact,
    InboundEmail,
    InboundStatus,
    Mailbox,
    Message,
    OutboxMessage,
    Ticket,
    TicketStatus,
    utcnow,
)
from gateway.inbound.dns import FixedResolver
from gateway.inbound.processor import INBOUND_QUEUE
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from gateway.storage.queue import LeasedQueue
from gateway.tickets.events import MessageAdded, TicketCreated
from gateway.tickets.markers import format_marker
from gateway.tickets.reply_address import ReplyAddress, format_reply_address
from tests.portal.helpers import with_settings
from tests.support import SUPPORT, ReceiveEmail, fixture_bytes


async def tickets(gateway: Gateway) -> list[Ticket]:
    def look(session: Session):
        return list(session.execute(select(Ticket).order_by(Ticket.id)).scalars())

    return await gateway.db.read(orm(look))


async def messages_of(gateway: Gateway, ticket: Ticket) -> list[Message]:
    def look(session: Session):
        query = select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
        return list(session.execute(query).scalars())

    return await gateway.db.read(orm(look))


async def requester_email(gateway: Gateway, ticket: Ticket) -> str:
    return await gateway.db.read(orm(lambda session: (session.get_one(Contact, ticket.requester_id)).email))


async def seed_outbound(gateway: Gateway, ticket: Ticket, rfc_message_id: str) -> None:
    """Record that Wicket sent `rfc_message_id` on `ticket` (as the outbox would)."""

    def change(session: Session):
        session.add(
            OutboxMessage(
                kind="agent_reply", mailbox_id=ticket.mailbox_id, ticket_id=ticket.id, mail_from=SUPPORT,
                rcpt_tos=["alice@customer.test"], rfc_message_id=rfc_message_id, raw=b"", status="sent",
            )
        )

    await gateway.db.write(change)


async def store_copies(gateway: Gateway, count: int, tag: str) -> None:
    """`count` copies of new-request.eml, each under a Message-ID of its own, stored pending."""
    for n in range(count):
        raw = fixture_bytes("new-request.eml").replace(b"Message-ID: <", f"Message-ID: <{tag}{n}.".encode())
        await gateway.receive(raw, mail_from="alice@customer.test", rcpt_tos=(SUPPORT,))


@pytest.fixture
async def patient_gateway(
    settings: Settings, db: Database, mailbox: Mailbox, resolver: FixedResolver
) -> AsyncIterator[Gateway]:
    """On SQLite, a gateway whose processing transactions could run a minute: only listeners end them early.

    It has processed a first message, so its ticket numbers are reserved, as a running
    node's are (gateway/tickets/numbers.py): the tests count its transactions.
    """
    if not db.is_sqlite:
        pytest.skip("PostgreSQL's row locks never hold up a listener's insert")
    gateway = Gateway(with_settings(settings, process_commit_seconds=60.0), db, resolver=resolver)
    await gateway.start()
    await store_copies(gateway, 1, "first")
    assert await gateway.processor.drain() == 1
    yield gateway
    await gateway.stop()


async def test_new_request_opens_ticket_1001_for_its_sender(receive_email: ReceiveEmail, gateway: Gateway) -> None:
    inbound = await receive_email("new-request.eml")
    assert inbound.status == InboundStatus.DELIVERED
    [ticket] = await tickets(gateway)
    assert ticket.ref == 1001
    assert ticket.subject == "Printer on floor 3 is jammed"
    assert ticket.status == TicketStatus.OPEN
    assert inbound.ticket_id == ticket.id
    assert await requester_email(gateway, ticket) == "alice@customer.test"
    [message] = await messages_of(gateway, ticket)
    assert message.thread_rule == "new"
    assert message.rfc_message_id == "new-request-1@customer.test"


async def test_three_message_thread_makes_one_ticket(receive_email: ReceiveEmail, gateway: Gateway) -> None:
    for name in ["new-request.eml", "reply-gmail.eml", "reply-outlook.eml"]:
        await receive_email(name)
    [ticket] = await tickets(gateway)
    first, gmail, outlook = await messages_of(gateway, ticket)
    assert [first.thread_rule, gmail.thread_rule, outlook.thread_rule] == ["new", "headers", "headers"]
    assert gmail.reply_text.strip().startswith("Thanks, I tried turning it off and on again.")
    assert "wrote:" not in gmail.reply_text
    assert "wrote:" in gmail.quoted_text
    assert outlook.reply_text.strip().startswith("The technician came by")


async def test_reply_that_lost_its_headers_threads_by_subject_tag(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    await receive_email("new-request.eml")
    await receive_email("reply-lost-headers-with-tag.eml")
    [ticket] = await tickets(gateway)
    assert [m.thread_rule for m in await messages_of(gateway, ticket)] == ["new", "subject_tag"]


async def test_stranger_using_a_subject_tag_gets_a_new_ticket(receive_email: ReceiveEmail, gateway: Gateway) -> None:
    await receive_email("new-request.eml")
    await receive_email("stranger-with-tag.eml")
    first, second = await tickets(gateway)
    assert len(await messages_of(gateway, first)) == 1
    assert await requester_email(gateway, second) == "mallory@evil.test"


async def test_two_senders_with_the_same_subject_make_two_tickets(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    await receive_email("new-request.eml")
    await receive_email("same-subject-other-sender.eml")
    first, second = await tickets(gateway)
    assert first.subject == second.subject
    assert await requester_email(gateway, second) == "bob@example.org"


async def test_mail_to_a_signed_reply_address_threads_by_that_address(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    await receive_email("new-request.eml")
    [ticket] = await tickets(gateway)
    address = format_reply_address(ReplyAddress(SUPPORT, "t", ticket.public_id), gateway.settings.keys[0])
    await receive_email("same-subject-other-sender.eml", to=address)
    [ticket] = await tickets(gateway)
    assert [m.thread_rule for m in await messages_of(gateway, ticket)] == ["new", "reply_address"]


async def test_ticket_marker_in_the_body_threads_a_reply(receive_email: ReceiveEmail, gateway: Gateway) -> None:
    await receive_email("new-request.eml")
    [ticket] = await tickets(gateway)
    marker = format_marker(gateway.settings.keys[0], SUPPORT, ticket.public_id, "alice@customer.test")
    raw = (
        b"From: Alice Doe <alice@customer.test>\r\nTo: support@example.test\r\nSubject: my answer\r\n"
        b"Message-ID: <marker-1@example.org>\r\n\r\nSee below.\r\n> " + marker.encode() + b"\r\n"
    )
    await receive_email(raw)
    [ticket] = await tickets(gateway)
    assert [m.thread_rule for m in await messages_of(gateway, ticket)] == ["new", "marker"]


async def test_duplicate_delivery_makes_no_second_message(receive_email: ReceiveEmail, gateway: Gateway) -> None:
    await receive_email("duplicate-a.eml")
    again = await receive_email("duplicate-b.eml")
    assert again.status == InboundStatus.IGNORED
    [ticket] = await tickets(gateway)
    assert len(await messages_of(gateway, ticket)) == 1


async def test_different_mail_sharing_a_message_id_is_not_a_duplicate(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    """Some senders (ticketing tools, notifiers) reuse one Message-ID for different mail."""
    head = (
        b"From: Notifier <notify@customer.test>\r\nTo: support@example.test\r\n"
        b"Message-ID: <same-id@customer.test>\r\n"
    )
    first = await receive_email(head + b"Subject: Incident INC001 opened\r\n\r\nPrinter on fire.\r\n")
    second = await receive_email(head + b"Subject: Incident INC002 opened\r\n\r\nScanner jammed.\r\n")
    assert (first.status, second.status) == (InboundStatus.DELIVERED, InboundStatus.DELIVERED)


async def test_mail_without_message_id_is_deduplicated_by_its_bytes(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    first = await receive_email("missing-message-id.eml")
    second = await receive_email("missing-message-id.eml")
    assert (first.status, second.status) == (InboundStatus.DELIVERED, InboundStatus.IGNORED)
    [ticket] = await tickets(gateway)
    [message] = await messages_of(gateway, ticket)
    assert message.rfc_message_id is None
    assert "missing Message-ID" in " ".join(message.defects)


async def test_auto_replies_are_stored_flagged_and_never_reopen(receive_email: ReceiveEmail, gateway: Gateway) -> None:
    await receive_email("new-request.eml")
    [ticket] = await tickets(gateway)
    await gateway.db.write(lambda session: session.execute(update(Ticket).values(status=TicketStatus.CLOSED)))
    await seed_outbound(gateway, ticket, "outbound-2@example.test")
    await receive_email("auto-reply-rfc3834.eml")
    [ticket] = await tickets(gateway)
    assert ticket.status == TicketStatus.CLOSED
    auto = (await messages_of(gateway, ticket))[-1]
    assert (auto.classification, auto.thread_rule) == ("auto_reply", "headers")


async def test_each_automatic_style_is_classified(receive_email: ReceiveEmail, gateway: Gateway) -> None:
    expected = {
        "auto-reply-rfc3834.eml": "auto_reply",
        "auto-reply-x-autoreply.eml": "auto_reply",
        "auto-reply-outlook-suppress.eml": "auto_reply",
        "precedence-bulk.eml": "list",
        "list-mail.eml": "list",
        "bounce-dsn.eml": "bounce",
        "bounce-undeliverable-outlook.eml": "bounce",
    }
    for name, kind in expected.items():
        inbound = await receive_email(name)

        def look(session: Session):
            message = session.scalar(select(Message).where(Message.inbound_email_id == inbound.id))
            ticket = session.get_one(Ticket, message.ticket_id)
            return message, ticket

        message, ticket = await gateway.db.read(orm(look))
        assert message.classification == kind, name
        assert ticket.flag == kind, name


async def test_bounce_is_linked_to_the_ticket_of_the_bounced_mail(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    await receive_email("new-request.eml")
    [ticket] = await tickets(gateway)
    await seed_outbound(gateway, ticket, "outbound-1@example.test")
    inbound = await receive_email("bounce-dsn.eml")
    [ticket] = await tickets(gateway)
    [bounce] = [m for m in await messages_of(gateway, ticket) if m.inbound_email_id == inbound.id]
    assert (bounce.classification, bounce.thread_rule) == ("bounce", "headers")


async def test_our_own_mail_coming_back_is_ignored_as_a_loop(receive_email: ReceiveEmail, gateway: Gateway) -> None:
    inbound = await receive_email("loop-own-header.eml")
    assert inbound.status == InboundStatus.IGNORED
    assert inbound.outcome and inbound.outcome.startswith("mail loop")
    assert await tickets(gateway) == []


async def test_forward_by_team_member_makes_the_original_sender_requester(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    await gateway.db.write(lambda session: session.add(Agent(email="tom@example.test", name="Tom Agent")))
    await receive_email("forward-inline-gmail.eml")
    await receive_email("forward-attached-rfc822.eml")
    inline, attached = await tickets(gateway)
    assert (await requester_email(gateway, inline), inline.subject) == ("carol@client.test", "Invoice question")
    assert (await requester_email(gateway, attached), attached.subject) == ("dan@client.test", "Cannot log in")


async def test_forward_by_a_stranger_keeps_the_forwarder_as_requester(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    await receive_email("forward-by-stranger.eml")
    [ticket] = await tickets(gateway)
    assert await requester_email(gateway, ticket) == "eve@outside.test"


async def test_customer_reply_reopens_a_closed_ticket(receive_email: ReceiveEmail, gateway: Gateway) -> None:
    await receive_email("new-request.eml")
    await gateway.db.write(lambda session: session.execute(update(Ticket).values(status=TicketStatus.CLOSED)))
    await receive_email("reply-apple-mail.eml")
    [ticket] = await tickets(gateway)
    assert ticket.status == TicketStatus.OPEN


async def test_customer_reply_to_a_ticket_waiting_on_them_makes_it_open_again(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    events: list[MessageAdded] = []
    gateway.events.subscribe(MessageAdded, lambda _session, event: events.append(event))
    await receive_email("new-request.eml")
    await gateway.db.write(lambda session: session.execute(update(Ticket).values(status=TicketStatus.PENDING)))
    await receive_email("reply-apple-mail.eml")
    [ticket] = await tickets(gateway)
    assert ticket.status == TicketStatus.OPEN
    assert [event.reopened for event in events] == [False], "waiting on the customer is not a reopening"


async def test_spoofed_control_headers_make_an_ordinary_customer_ticket(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    inbound = await receive_email("spoofed-control-headers.eml")
    assert inbound.status == InboundStatus.DELIVERED
    [ticket] = await tickets(gateway)
    [message] = await messages_of(gateway, ticket)
    assert (message.author_type, message.internal, message.classification) == ("customer", False, "normal")


async def test_malformed_mail_is_stored_and_marked(receive_email: ReceiveEmail, gateway: Gateway) -> None:
    for name in ["malformed-headers.eml", "unterminated-mime.eml", "huge-header-line.eml", "empty-body.eml",
                 "broken-encoded-words.eml"]:
        inbound = await receive_email(name)
        assert inbound.status == InboundStatus.DELIVERED, (name, inbound.last_error)
    marked = await gateway.db.read(orm(lambda session: session.execute(select(Message.defects)).scalars().all()))
    assert sum(1 for defects in marked if defects) >= 3


async def test_attachments_and_inline_images_are_stored_with_decoded_names(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    await receive_email("attachments-encoded-names.eml")
    await receive_email("inline-image.eml")

    def look(session: Session):
        rows = session.execute(select(Message).order_by(Message.id)).scalars().all()
        files = {}
        for row in rows:
            session.refresh(row, ["attachments"])
            files.update({a.filename: a for a in row.attachments})
        return files

    files = await gateway.db.read(orm(look))
    assert {"Résumé 2026.pdf", "Überweisung.txt", "notes.txt", "logo.png"} <= set(files)
    assert files["Résumé 2026.pdf"].data.startswith(b"%PDF-1.4")
    logo = files["logo.png"]
    assert (logo.inline, logo.content_id, logo.size) == (True, "logo123@customer.test", 85)


async def test_processor_publishes_created_then_added_inside_the_transaction(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    seen: list[tuple[str, int]] = []

    def remember(session: Session, event: TicketCreated | MessageAdded) -> None:
        assert session.in_transaction()
        seen.append((type(event).__name__, event.ticket.ref))

    gateway.events.subscribe(TicketCreated, remember)
    gateway.events.subscribe(MessageAdded, remember)
    await receive_email("new-request.eml")
    await receive_email("reply-gmail.eml")
    assert seen == [("TicketCreated", 1001), ("MessageAdded", 1001)]


async def test_failure_is_kept_retried_and_dead_lettered_after_the_last_attempt(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    def broken(session: Session, event: TicketCreated) -> None:
        raise RuntimeError("notification service exploded")

    gateway.events.subscribe(TicketCreated, broken)
    inbound = await receive_email("new-request.eml")
    assert inbound.status == InboundStatus.FAILED
    assert inbound.attempts == gateway.settings.process_max_attempts
    assert inbound.next_attempt_at is None
    assert "notification service exploded" in (inbound.last_error or "")
    assert await tickets(gateway) == []


async def test_row_left_processing_by_a_dead_worker_is_reclaimed(gateway: Gateway) -> None:
    inbound_id = await gateway.receive(fixture_bytes("new-request.eml"), mail_from="alice@customer.test",
                                       rcpt_tos=(SUPPORT,))

    def change(session: Session):
        session.execute(
            update(InboundEmail).where(InboundEmail.id == inbound_id).values(
                status=InboundStatus.PROCESSING, attempts=1, lease_expires_at=utcnow() - timedelta(seconds=1)
            )
        )

    await gateway.db.write(change)
    assert await gateway.processor.drain() == 1
    row = await gateway.db.read(orm(lambda session: session.get_one(InboundEmail, inbound_id)))
    assert (row.status, row.attempts) == (InboundStatus.DELIVERED, 2)


async def test_ticket_refs_count_per_mailbox(receive_email: ReceiveEmail, gateway: Gateway) -> None:
    await gateway.db.write(lambda session: session.add(Mailbox(address="sales@example.test", name="Sales")))
    await gateway.router.reload()
    await receive_email("new-request.eml")
    await receive_email("same-subject-other-sender.eml", to="sales@example.test")
    await receive_email("duplicate-a.eml")
    assert sorted(t.ref for t in await tickets(gateway)) == [1001, 1001, 1002]

    def look(session: Session):
        assert session.scalar(select(func.count(Ticket.public_id.distinct()))) == 3

    await gateway.db.read(orm(look))


async def test_mail_stored_after_an_outage_is_processed_at_once_not_after_the_backoff(
    settings: Settings, db: Database, mailbox: Mailbox, resolver: FixedResolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The processor failed to reach the database three times and now waits, doubling each
    # time. A message stored successfully proves the database is back: it must not wait
    # for the rest of the backoff.
    gateway = Gateway(with_settings(settings, process_poll_seconds=0.5), db, resolver=resolver)  # backoff 0.5, 1, 2 s
    await gateway.start()
    outage = {"left": 3}
    process_batch = gateway.processor.process_batch

    async def unreachable_then_back() -> int:
        if outage["left"]:
            outage["left"] -= 1
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
        return await process_batch()

    monkeypatch.setattr(gateway.processor, "process_batch", unreachable_then_back)
    gateway.run_processor()
    while outage["left"]:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # now sleeping in the backoff
    inbound_id = await gateway.receive(
        fixture_bytes("new-request.eml"), mail_from="alice@customer.test", rcpt_tos=(SUPPORT,)
    )

    async def delivered() -> None:
        while (await gateway.db.read(orm(lambda s: s.get_one(InboundEmail, inbound_id).status))) != InboundStatus.DELIVERED:
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(delivered(), timeout=1.0)
    finally:
        await gateway.stop()


async def test_processing_commits_after_the_message_in_hand_when_an_smtp_listener_waits(
    patient_gateway: Gateway, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On SQLite a processing transaction holds the one write lock that every 250 waits for:
    # however long it may run, it ends as soon as a listener waits for the lock.
    commits: list[int] = []
    for engine in db.engines:
        event.listen(engine, "commit", lambda _connection: commits.append(1))

    async def transactions_to_process(waiting: bool) -> int:
        monkeypatch.setattr(db, "listeners_waiting", lambda: waiting)
        await store_copies(patient_gateway, 4, f"{waiting}")
        before = len(commits)
        assert await patient_gateway.processor.drain() == 4
        return len(commits) - before

    alone = await transactions_to_process(waiting=False)
    yielding = await transactions_to_process(waiting=True)
    assert yielding - alone == 3  # one transaction per message instead of one for all four


async def test_while_listeners_keep_waiting_each_processing_transaction_renews_only_the_rows_it_can_take_on(
    patient_gateway: Gateway, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A transaction renews the leases of (and reads back) the window of the claim it takes on.
    # When listeners make every transaction end after one message, renewing the whole
    # window each time would read the same stored mail again and again.
    renewed: list[int] = []
    renew = LeasedQueue.renew

    def counting(queue: LeasedQueue, connection: Any, ids: Any) -> Any:
        if queue.table is INBOUND_QUEUE:
            renewed.append(len(ids))
        return renew(queue, connection, ids)

    monkeypatch.setattr(LeasedQueue, "renew", counting)
    monkeypatch.setattr(db, "listeners_waiting", lambda: True)
    await store_copies(patient_gateway, 10, "w")
    assert await patient_gateway.processor.drain() == 10
    assert renewed[0] == 10 and max(renewed[1:]) <= 2, renewed


async def test_a_stopping_processor_hands_back_the_rows_it_claimed_and_did_not_process(
    settings: Settings, db: Database, mailbox: Mailbox, resolver: FixedResolver
) -> None:
    # A node stopped for a restart must not leave its claimed mail leased: the restarted
    # node would wait out the lease (five minutes) before those tickets appear.
    gateway = Gateway(settings, db, resolver=resolver)
    await gateway.start()
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow(session: Session, event: TicketCreated) -> None:
        loop.call_soon_threadsafe(started.set)
        time.sleep(0.3)

    gateway.events.subscribe(TicketCreated, slow)
    await store_copies(gateway, 5, "s")
    gateway.run_processor()
    await asyncio.wait_for(started.wait(), 10)
    await gateway.stop()

    def look(session: Session):
        return session.execute(select(InboundEmail.status, InboundEmail.attempts, InboundEmail.lease_expires_at)).all()

    rows = await db.read(orm(look))
    assert {status for status, _, _ in rows} <= {InboundStatus.DELIVERED, InboundStatus.PENDING}, rows
    assert any(status == InboundStatus.PENDING for status, _, _ in rows)  # the stop came in the middle
    assert all(attempts == 0 and lease is None for status, attempts, lease in rows if status == InboundStatus.PENDING)
    restarted = Gateway(settings, db, resolver=resolver)
    await restarted.start()
    try:
        assert await restarted.processor.drain() == sum(status == InboundStatus.PENDING for status, _, _ in rows)
    finally:
        await restarted.stop()
