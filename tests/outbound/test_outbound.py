"""Acknowledgements and agent notifications: when they are sent and what they look like."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.directory.agents import add_agent
from gateway.models import Mailbox, OutboxMessage, OutboxStatus, Ticket, utcnow
from gateway.settings import Settings
from gateway.storage import statements
from gateway.storage.database import orm
from gateway.tickets.markers import format_marker
from tests.mailflow import ALICE, LINK, TOM, add_tom, build_mail, html_of, settle, text_of
from tests.plans import postgres_plan, rows_read, sqlite_plan
from tests.support import SUPPORT, ReceiveEmail, fixture_bytes


async def only_ticket(gateway: Gateway) -> Ticket:
    def look(session: Session):
        [ticket] = session.scalars(select(Ticket)).all()
        return ticket

    return await gateway.db.read(orm(look))


async def test_new_ticket_is_acknowledged_with_threading_headers_link_and_code(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await receive_email("new-request.eml")
    [ack] = (await settle(gateway)).to(ALICE)
    ticket = await only_ticket(gateway)
    headers = ack.message
    assert headers["From"] == f"Example Support <{SUPPORT}>"
    assert headers["To"] == f"Alice Doe <{ALICE}>"
    assert headers["Subject"] == "Re: [#1001] Printer on floor 3 is jammed"
    assert headers["Message-ID"].endswith("@example.test>")
    assert headers["In-Reply-To"] == headers["References"] == "<new-request-1@customer.test>"
    assert headers["Auto-Submitted"] == "auto-replied"
    assert headers["X-Wicket-Loop"] == "example.test"
    assert headers["Thread-Topic"] == "Printer on floor 3 is jammed"
    assert len(base64.b64decode(headers["Thread-Index"])) == 27
    assert headers["Reply-To"].startswith(f"support+t.{ticket.public_id}.")
    assert ack.mail_from == headers["Reply-To"]
    text, html = text_of(ack), html_of(ack)
    assert format_marker(gateway.settings.keys[0], SUPPORT, ticket.public_id, ALICE) in text
    url = LINK.search(text)
    assert url is not None and f'href="{url.group(0)}"' in html and "View this ticket" in html
    assert "enter the code " in text and "http://portal.example.test/code" in text


async def test_every_email_of_a_ticket_shares_one_thread_index_header_block(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await add_tom(gateway)
    await receive_email("new-request.eml")
    await receive_email("reply-gmail.eml")
    sent = (await settle(gateway)).sent
    blocks = {base64.b64decode(m.message["Thread-Index"])[:22] for m in sent}
    assert len(sent) == 3 and len(blocks) == 1


async def test_mail_that_must_not_be_answered_gets_no_acknowledgement(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    for name in ("auto-reply-rfc3834.eml", "list-mail.eml", "precedence-bulk.eml", "bounce-dsn.eml",
                 "loop-own-header.eml"):
        await receive_email(name)
    sender = await settle(gateway)
    assert sender.sent == []


async def test_acknowledgements_are_capped_per_sender_within_the_window(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    for number in range(settings.ack_limit_per_sender + 2):
        await receive_email(build_mail(sender=ALICE, to=SUPPORT, subject=f"Question {number}", body="Hello?\n"))
    sender = await settle(gateway)
    assert len(sender.to(ALICE)) == settings.ack_limit_per_sender


async def test_the_acknowledgement_cap_reads_only_the_requesters_tickets_of_its_window(gateway: Gateway) -> None:
    # Each new ticket counts its requester's recent acknowledgements. A requester with
    # thousands of tickets (an alerting system, a large customer) must not make that count
    # read every ticket they ever opened: the plan searches their tickets by time.
    if not gateway.db.is_sqlite:
        pytest.skip("reads SQLite's query plan")
    plan = await sqlite_plan(gateway.db, statements.registered("notify.acknowledgements_since"))
    ticket_search = [step for step in plan if re.match(r"(SEARCH|SCAN) ticket\b", step)]
    assert ticket_search and re.search(r"\(requester_id=\? AND created_at>\?\)", ticket_search[0]), plan


async def test_the_acknowledgement_cap_stops_counting_at_the_cap(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    # A sender opening ticket after ticket (a monitoring system, a form that mails) must
    # not make each new ticket count every acknowledgement of the window: the count stops
    # once it reaches the cap, whatever the sender opened since.
    if gateway.db.is_sqlite:
        pytest.skip("reads PostgreSQL's executed plan")
    for number in range(4 * settings.ack_limit_per_sender):
        await receive_email(build_mail(sender=ALICE, to=SUPPORT, subject=f"Alert {number}", body="Disk full\n"))
    await gateway.processor.drain()
    statement = statements.registered("notify.acknowledgements_since")

    def explain(connection: Connection) -> list[str]:
        alice = connection.scalar(select(Ticket.requester_id).limit(1))
        since = utcnow().replace(tzinfo=None) - timedelta(hours=1)
        values = {"requester_id": alice, "since": since, "opened_after": since, "cap": settings.ack_limit_per_sender}
        return postgres_plan(connection, statement, values, analyze=True)

    plan = await gateway.db.read(explain)
    assert rows_read(plan) and max(rows_read(plan)) <= settings.ack_limit_per_sender, plan


async def test_a_long_conversation_references_its_first_email_and_the_newest_ones(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    # Mail clients need the root and the recent ancestors; a thread of hundreds of emails
    # is cut to the first plus the newest nineteen, oldest first (RFC 5322 section 3.6.4).
    await add_tom(gateway)
    customer_ids: list[str] = []
    for number in range(70):  # more than the thread reads from each end of a ticket
        raw = build_mail(sender=ALICE, to=SUPPORT, subject="Invoice", body=f"Message {number}",
                         in_reply_to=customer_ids[-1] if customer_ids else None)  # fmt: skip
        customer_ids.append(re.search(rb"Message-ID: (<[^>]+>)", raw)[1].decode())
        await receive_email(raw)
    sender = await settle(gateway)
    acknowledgement, *notifications = sender.sent
    assert [m.rcpt_tos for m in notifications] == [[TOM]] * 70
    # Oldest first: each customer email, then what processing it queued.
    timeline = [customer_ids[0], acknowledgement.message["Message-ID"]]
    for customer_id, notification in zip(customer_ids, notifications, strict=True):
        timeline += [customer_id] if customer_id != customer_ids[0] else []
        timeline.append(notification.message["Message-ID"])
    last = notifications[-1].message
    expected = timeline[:-1]  # the thread the last notification was queued into: not itself
    assert last["References"].split() == [expected[0], *expected[-19:]]
    assert last["In-Reply-To"] == customer_ids[-1]


@pytest.mark.parametrize("shape", ["all", "customer", "all_before", "customer_before"])
async def test_the_thread_of_an_email_reads_the_ends_of_its_ticket_never_the_whole_ticket(
    gateway: Gateway, shape: str
) -> None:
    # Every email composed reads its thread. A ticket with thousands of emails (an alert
    # that keeps firing, a mailing loop) must not make that read, and the sort after it,
    # grow with the ticket: each part walks an index on the ticket from one end and stops.
    if not gateway.db.is_sqlite:
        pytest.skip("reads SQLite's query plan")
    statement = statements.registered(f"compose.thread_{shape}")
    plan = await sqlite_plan(gateway.db, statement)
    reads = [step for step in plan if re.match(r"(SEARCH|SCAN) (message|outbox_message)\b", step)]
    by_ticket = re.compile(r"USING INDEX ix_(message_ticket|outbox_message_ticket_order) \(ticket_id=\?( AND id<\?)?\)")
    assert reads and all(by_ticket.search(step) for step in reads), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
    assert re.search(r"\bLIMIT\b", str(statement.compile(dialect=sqlite.dialect()))), statement


async def test_a_mailbox_can_turn_acknowledgements_off(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    await gateway.db.write(lambda session: session.execute(update(Mailbox).values(auto_acknowledge=False)))
    await receive_email("new-request.eml")
    assert (await settle(gateway)).sent == []


async def test_agents_hear_of_new_tickets_and_customer_replies_with_their_signed_reply_address(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    tom = await add_tom(gateway)
    await receive_email("new-request.eml")
    await receive_email("reply-gmail.eml")
    first, second = (await settle(gateway)).to(TOM)
    ticket = await only_ticket(gateway)
    assert first.message["From"] == f"Alice Doe via Example Support <{SUPPORT}>"
    assert first.message["Reply-To"].startswith(f"support+a.{ticket.public_id}.{tom.id}.")
    assert "New ticket [#1001] from Alice Doe <alice@customer.test>" in text_of(first)
    assert "Alice Doe <alice@customer.test> wrote on [#1001]" in text_of(second)
    assert "error E-203" in text_of(second) and "wrote:" not in text_of(second)
    assert first.message["Message-ID"] in second.message["References"]


async def test_notification_preferences_are_respected(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    await gateway.db.write(lambda session: add_agent(session, TOM, "Tom Agent", notify_customer_messages=False))
    await receive_email("new-request.eml")
    await receive_email("reply-gmail.eml")
    assert len((await settle(gateway)).to(TOM)) == 1


async def test_mail_answering_a_notification_threads_by_its_stored_message_id(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await add_tom(gateway)
    await receive_email("new-request.eml")
    [notification] = (await settle(gateway)).to(TOM)
    await receive_email(
        build_mail(sender="Jo Colleague <jo@customer.test>", to=SUPPORT, subject="Fwd: printer",
                   body="Same here.\n", in_reply_to=notification.message["Message-ID"])
    )

    def look(session: Session):
        assert len(session.scalars(select(Ticket)).all()) == 1

    await gateway.db.read(orm(look))


async def test_a_team_forward_notifies_the_other_agents_and_acknowledges_nobody(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await add_tom(gateway)
    await gateway.db.write(lambda session: add_agent(session, "uma@example.test", "Uma Agent"))
    await receive_email("forward-inline-gmail.eml")
    sender = await settle(gateway)
    assert [m.rcpt_tos for m in sender.sent] == [["uma@example.test"]]


async def test_a_delivery_report_on_the_signed_return_address_marks_the_email_bounced(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await receive_email("new-request.eml")
    [ack] = (await settle(gateway)).to(ALICE)
    message_id = ack.message["Message-ID"].strip("<>")
    report = fixture_bytes("bounce-dsn.eml").replace(b"outbound-1@example.test", message_id.encode())
    await receive_email(report, to=ack.mail_from, mail_from="")

    def look(session: Session):
        row = session.scalar(select(OutboxMessage).where(OutboxMessage.rfc_message_id == message_id))
        return row

    row = await gateway.db.read(orm(look))
    assert row is not None and row.status == OutboxStatus.BOUNCED
    assert row.last_error and "5.1.1" in row.last_error


async def test_a_sender_address_that_cannot_be_mailed_still_opens_a_ticket_without_acknowledgement(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    raw = "From: Jörg <jörg@exämple.de>\r\nTo: support@example.test\r\nSubject: Hallo\r\n\r\nHilfe!\r\n"
    inbound = await receive_email(raw.encode(), mail_from="relay@example.de")
    assert inbound.status == "delivered"
    assert await only_ticket(gateway)
    assert (await settle(gateway)).sent == []


async def test_customer_mail_wears_the_mailbox_brand(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    def change(session: Session):
        session.execute(update(Mailbox).values(brand_name="Acme Help", primary_color="#aa3300"))

    await gateway.db.write(change)
    await receive_email("new-request.eml")
    [ack] = (await settle(gateway)).to(ALICE)
    assert ack.message["From"] == f"Acme Help <{SUPPORT}>"
    assert "background:#aa3300" in html_of(ack) and "Thank you for writing to Acme Help" in text_of(ack)
