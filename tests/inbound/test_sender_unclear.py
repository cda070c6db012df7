"""Mail with no usable sender: a flagged ticket the team sees, no contact made up, nobody
mailed but the agents, and replies held until an agent names the requester."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.cli.team import reply_as_agent
from gateway.models import Contact, Message, OutboxMessage, Ticket, TicketParticipant, WebhookEvent
from gateway.outbound.compose import OutboundKind
from gateway.outbound.webhooks.endpoints import add_endpoint
from gateway.storage.database import orm
from gateway.tickets.queries import ticket_by_ref
from gateway.tickets.replies import ReplyError, read_reply
from gateway.tickets.requester import RequesterError, set_requester
from portal.views.webhook_schema import PAYLOADS
from tests.mailflow import TOM, add_tom, build_mail, html_of, settle, smtp_send, text_of
from tests.support import SUPPORT, ReceiveEmail

BOB = "bob@customer.test"


def unclear_mail(number: int, from_header: str = '"Scanner Floor 3" <scanner@@floor3>') -> bytes:
    """A mail whose From, Sender and Reply-To give no valid address."""
    return (
        f"From: {from_header}\r\nSender: scan-to-mail at floor3\r\nReply-To: <noreply@scanner.local>\r\n"
        f"To: {SUPPORT}\r\nSubject: Scan {number} failed\r\nMessage-ID: <unclear-{number}@scanner.customer.test>\r\n"
        "\r\nThe scanner could not deliver a scan.\r\n"
    ).encode()


async def counts(gateway: Gateway) -> tuple[int, int, int]:
    """Tickets, contacts and participants in the database."""
    def look(session: Session) -> tuple[int, int, int]:
        def count(model: type) -> int:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

        return count(Ticket), count(Contact), count(TicketParticipant)

    return await gateway.db.read(orm(look))


async def outbox(gateway: Gateway) -> list[tuple[str, list[str]]]:
    def look(session: Session) -> list[tuple[str, list[str]]]:
        return [(o.kind, o.rcpt_tos) for o in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]

    return await gateway.db.read(orm(look))


async def the_ticket(gateway: Gateway, ref: int = 1001) -> Ticket:
    return await gateway.db.read(orm(lambda session: ticket_by_ref(session, ref)[1]))


async def test_mail_naming_no_usable_sender_opens_a_flagged_ticket_without_a_contact(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    await add_tom(gateway)
    inbound = await receive_email("sender-unclear.eml")
    assert inbound.status == "delivered"
    ticket = await the_ticket(gateway)
    assert (ticket.requester_id, ticket.flag) == (None, "sender_unclear")
    assert ticket.unclear_from == '"Scanner Floor 3" <scanner@@floor3>'
    assert await counts(gateway) == (1, 0, 0)
    message = await gateway.db.read(orm(lambda session: session.scalars(select(Message)).one()))
    assert (message.author_contact_id, message.from_email) == (None, "")
    assert "sender unclear: no valid From, Sender or Reply-To address" in message.defects
    sent = await settle(gateway)
    assert await outbox(gateway) == [(OutboundKind.NOTIFICATION, [TOM])]  # no acknowledgement, no link
    [notification] = sent.to(TOM)
    text = " ".join(text_of(notification).split())
    assert "New ticket [#1001] from an unclear sender" in text
    assert 'Sender unclear: no valid address in From, Sender, Reply-To or the envelope' in text
    assert '(From: "Scanner Floor 3" <scanner@@floor3>)' in text
    assert '#requester name@example.com' in text


async def test_two_such_mails_make_two_tickets_and_still_no_contact(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    await receive_email(unclear_mail(1), mail_from="")  # an empty envelope sender as well
    await receive_email(unclear_mail(2), mail_from="scanner@floor3")
    first, second = await the_ticket(gateway, 1001), await the_ticket(gateway, 1002)
    assert [t.flag for t in (first, second)] == ["sender_unclear", "sender_unclear"]
    assert first.requester_id is None and second.requester_id is None
    assert await counts(gateway) == (2, 0, 0)
    assert await outbox(gateway) == []  # nobody on the team wants news here: nothing at all is queued


async def test_a_hostile_from_is_kept_escaped_and_shown_as_text(receive_email: ReceiveEmail, gateway: Gateway) -> None:
    await add_tom(gateway)
    # U+202E turns the text after it around on screen; the parser keeps it, so it is escaped here.
    await receive_email(unclear_mail(3, '"<script>alert(1)</script>\u202egnp.exe" <x@@y>'), mail_from="")
    ticket = await the_ticket(gateway)
    assert ticket.unclear_from == '"<script>alert(1)</script>\\u202egnp.exe" <x@@y>'
    [notification] = (await settle(gateway)).to(TOM)
    html = html_of(notification)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\u202e" not in text_of(notification) and "\\u202egnp.exe" in text_of(notification)


async def test_a_reply_is_refused_until_the_requester_is_named_then_reaches_them(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    await add_tom(gateway)
    await receive_email("sender-unclear.eml")
    await settle(gateway)

    def answer(session: Session) -> Message:
        return reply_as_agent(session, gateway.events, 1001, TOM, read_reply("We are looking into it."))

    with pytest.raises(ReplyError, match="ticket #1001 has no requester"):
        await gateway.db.write(answer)
    note = await gateway.db.write(lambda session: reply_as_agent(
        session, gateway.events, 1001, TOM, read_reply("#internal\nProbably the scanner on floor 3.")
    ))  # fmt: skip
    assert note.internal  # notes and status changes need nobody to mail

    def name(session: Session) -> Message:
        return set_requester(session, gateway.events, ticket_by_ref(session, 1001)[1], " Bob@Customer.test ",
                             agent=None, name="Bob Roe")  # fmt: skip

    await gateway.db.write(name)
    ticket = await the_ticket(gateway)
    assert ticket.flag is None and ticket.unclear_from is not None
    assert await counts(gateway) == (1, 1, 1)
    with pytest.raises(RequesterError, match="already has a requester"):
        await gateway.db.write(name)
    await gateway.db.write(answer)
    sent = await settle(gateway)
    [reply] = sent.to(BOB)
    assert "We are looking into it." in text_of(reply)


@pytest.mark.parametrize(
    ("address", "why"),
    [("bob@@customer.test", "not a valid email address"), ("printer@floor3", "not a valid email address"),
     (SUPPORT, "the mailbox's own address"), ("support+x@example.test", "the mailbox's own address"),
     (TOM, "a member of the team")],
)  # fmt: skip
async def test_the_requester_must_be_a_valid_customer_address(
    receive_email: ReceiveEmail, gateway: Gateway, address: str, why: str
) -> None:
    await add_tom(gateway)
    await receive_email("sender-unclear.eml")
    with pytest.raises(RequesterError, match=why):
        await gateway.db.write(lambda session: set_requester(
            session, gateway.events, ticket_by_ref(session, 1001)[1], address, agent=None
        ))  # fmt: skip
    assert await counts(gateway) == (1, 0, 0)


async def test_an_emailed_reply_is_refused_with_advice_and_a_requester_line_lets_it_through(
    receive_email: ReceiveEmail, gateway: Gateway, smtp_server: tuple[str, int]
) -> None:
    await add_tom(gateway)
    await receive_email("sender-unclear.eml")
    [notification] = (await settle(gateway)).to(TOM)
    agent_address = notification.message["Reply-To"]

    def answer(body: str) -> bytes:
        return build_mail(sender=f"Tom Agent <{TOM}>", to=agent_address, subject="Re: Scan to email failed",
                          body=body, in_reply_to=notification.message["Message-ID"])  # fmt: skip

    await smtp_send(smtp_server, TOM, [agent_address], answer("Which scanner is it?\n"))
    sent = await settle(gateway)
    [_, notice] = sent.to(TOM)
    assert "ticket #1001 has no requester" in " ".join(text_of(notice).split())
    assert await counts(gateway) == (1, 0, 0)

    await smtp_send(smtp_server, TOM, [agent_address], answer(f"#requester Bob Roe <{BOB}>\n\nWhich scanner?\n"))
    [reply] = (await settle(gateway)).to(BOB)
    assert "Which scanner?" in text_of(reply)
    ticket = await the_ticket(gateway)
    assert ticket.flag is None and ticket.requester_id is not None


async def test_the_ticket_created_webhook_names_no_requester(receive_email: ReceiveEmail, gateway: Gateway) -> None:
    await gateway.db.write(lambda session: add_endpoint(
        session, gateway.settings, "https://hooks.example.test/in", events=["ticket.created"]
    ))  # fmt: skip
    await receive_email("sender-unclear.eml")
    [event] = await gateway.db.read(orm(lambda session: list(session.scalars(select(WebhookEvent)))))
    PAYLOADS["ticket.created"].model_validate_json(event.payload)  # the documented shape, no extra fields
    ticket = json.loads(event.payload)["data"]["ticket"]
    assert (ticket["requester"], ticket["flag"]) == (None, "sender_unclear")


async def test_mail_with_no_usable_sender_brings_nobody_in_by_cc_and_an_invalid_cc_makes_no_contact(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    unclear = unclear_mail(4).replace(b"Subject:", b"Cc: carol@customer.test\r\nSubject:")
    await receive_email(unclear, mail_from="")
    assert await counts(gateway) == (1, 0, 0)
    request = build_mail(sender="Alice Doe <alice@customer.test>", to=SUPPORT, subject="Printer",
                         body="It jams.\n", Cc="printer@localhost, dan@customer.test")  # fmt: skip
    await receive_email(request)

    def contacts(session: Session) -> list[str]:
        return sorted(session.scalars(select(Contact.email)))

    assert await gateway.db.read(orm(contacts)) == ["alice@customer.test", "dan@customer.test"]
