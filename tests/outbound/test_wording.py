"""What customer mail says: the greeting, the link's lifetime from settings, "resolved" when resolved."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import Ticket, TicketStatus
from gateway.outbound.senders import SentMail
from gateway.settings import Settings
from gateway.storage.database import orm
from gateway.tickets.commands import Commands
from gateway.tickets.replies import AgentReply, apply_reply
from tests.mailflow import ALICE, add_tom, build_mail, html_of, settle
from tests.mailflow import text_of as crlf_text_of
from tests.portal.helpers import with_settings
from tests.support import SUPPORT, ReceiveEmail


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Links that live 45 minutes, so a lifetime taken from anywhere but settings shows."""
    return with_settings(settings, reply_link_ttl_minutes=45)


def text_of(mail: SentMail) -> str:
    return crlf_text_of(mail).replace("\r\n", "\n")


async def only_ticket(gateway: Gateway) -> Ticket:
    def _look(session: Session):
        [ticket] = (session.scalars(select(Ticket))).all()
        return ticket

    return await gateway.db.read(orm(_look))


async def test_the_acknowledgement_greets_by_display_name_with_a_capital_sentence_start(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await receive_email("new-request.eml")
    [ack] = (await settle(gateway)).to(ALICE)
    text = text_of(ack)
    assert "Hello Alice Doe,\n\nThank you for writing to Example Support." in text
    assert "Hello Alice Doe,</p>" in html_of(ack) and "<p>Thank you for writing" in html_of(ack)


async def test_a_sender_without_a_name_or_with_an_address_for_a_name_is_greeted_hello(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await receive_email(build_mail(sender=ALICE, to=SUPPORT, subject="No name", body="Help?\n"))
    await receive_email(build_mail(sender="bob@customer.test <bob@customer.test>", to=SUPPORT,
                                   subject="Address as name", body="Help?\n"))  # fmt: skip
    sender = await settle(gateway)
    for address in (ALICE, "bob@customer.test"):
        [ack] = sender.to(address)
        assert "Hello,\n\nThank you" in text_of(ack) and "Hello " + address not in text_of(ack)
        assert address not in text_of(ack).split("Thank you")[0]


async def test_the_link_lifetime_in_mail_comes_from_settings(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    await receive_email("new-request.eml")
    [ack] = (await settle(gateway)).to(ALICE)
    assert "expires in 45 minutes" in text_of(ack) and "expires in 45 minutes" in html_of(ack)
    assert "expires soon" not in text_of(ack)


async def resolved_by_tom(
    gateway: Gateway, receive_email: ReceiveEmail, text: str, *, thread_rule: str
) -> list[SentMail]:
    """Alice opens ticket #1001, Tom resolves it with `text`; what Alice got after her acknowledgement."""
    tom = await add_tom(gateway)
    await receive_email("new-request.eml")
    await settle(gateway)
    ticket = await only_ticket(gateway)

    def resolve(session: Session) -> None:
        current = session.get_one(Ticket, ticket.id)
        apply_reply(session, gateway.events, current, tom, AgentReply(text, Commands(status=TicketStatus.RESOLVED)),
                    thread_rule=thread_rule)

    await gateway.db.write(resolve)
    return (await settle(gateway)).to(ALICE)[1:]


async def test_the_mail_that_resolves_a_ticket_says_resolved(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    [answer] = await resolved_by_tom(gateway, receive_email, "Tray 2 is fixed.", thread_rule="api")
    assert "Tray 2 is fixed." in text_of(answer)
    assert "resolved" in text_of(answer).lower() and "resolved" in html_of(answer).lower()


async def test_resolving_without_a_reply_mails_the_customer_that_the_ticket_is_resolved(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    [resolved] = await resolved_by_tom(gateway, receive_email, "", thread_rule="cli")
    assert "Tom Agent has marked your ticket [#1001] \"Printer on floor 3 is jammed\" as resolved." in text_of(resolved)
    assert resolved.message["Subject"] == "Re: [#1001] Printer on floor 3 is jammed"
