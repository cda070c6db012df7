"""The shared-inbox round trip over real SMTP: customer -> agent by email -> customer -> same ticket."""

from __future__ import annotations

import re
import smtplib
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import AuthorType, Message, Ticket
from gateway.outbound.dkim import keygen
from gateway.settings import Settings
from gateway.storage.database import orm
from portal.app import create_app
from tests.mailflow import ALICE, LINK, TOM, add_tom, build_mail, dkim_valid, settle, smtp_send, text_of
from tests.support import SUPPORT, fixture_bytes


async def ticket_messages(gateway: Gateway) -> tuple[list[Ticket], list[Message]]:
    def look(session: Session):
        tickets = list(session.scalars(select(Ticket)).all())
        messages = list(session.scalars(select(Message).order_by(Message.id)).all())
        return tickets, messages

    tickets, messages = await gateway.db.read(orm(look))
    return tickets, messages


async def exchange(client_factory: Any, settings: Settings, gateway: Gateway, url: str) -> tuple[int, str]:
    """Open the link in a fresh browser and press Continue: (status, where it leads)."""
    portal = await client_factory(create_app(settings, gateway.db, processor=gateway.processor))
    path = url.removeprefix(settings.public_url)
    page = await portal.get(path)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    if csrf is None:
        return page.status, ""
    answer = await portal.post(path, data={"csrf_token": csrf.group(1)}, allow_redirects=False)
    return answer.status, answer.headers.get("Location", "")


async def test_customer_agent_customer_round_trip_over_smtp(
    gateway: Gateway, settings: Settings, smtp_server: tuple[str, int], aiohttp_client: Any
) -> None:
    keygen(settings, "example.test")
    await add_tom(gateway)

    await smtp_send(smtp_server, ALICE, [SUPPORT], fixture_bytes("new-request.eml"))
    sender = await settle(gateway)
    [notification] = sender.to(TOM)
    assert "The big Ricoh printer" in text_of(notification)
    agent_address = notification.message["Reply-To"]
    assert agent_address.startswith("support+a.")

    answer = (
        "Hi Alice, a technician is on the way.\n\nTom\n\n"
        f"On Tue, 3 Nov 2026 at 10:12, Alice Doe via Example Support <{SUPPORT}> wrote:\n"
        + "".join(f"> {line}\n" for line in text_of(notification).splitlines())
    )
    await smtp_send(
        smtp_server,
        TOM,
        [agent_address],
        build_mail(sender=f"Tom Agent <{TOM}>", to=agent_address, subject=f"Re: {notification.message['Subject']}",
                   body=answer, in_reply_to=notification.message["Message-ID"]),
    )
    sender = await settle(gateway)
    reply = sender.to(ALICE)[-1]
    assert reply.message["From"] == f"Example Support <{SUPPORT}>"
    assert "Auto-Submitted" not in reply.message
    assert dkim_valid(settings, reply.raw)
    body = text_of(reply)
    assert "a technician is on the way" in body
    assert "Ricoh" not in body and "Please type your reply" not in body and "#internal" not in body

    link = LINK.search(body)
    assert link is not None
    [ticket], _ = await ticket_messages(gateway)
    assert await exchange(aiohttp_client, settings, gateway, link.group(0)) == (303, f"/tickets/{ticket.public_id}")
    assert (await exchange(aiohttp_client, settings, gateway, link.group(0)))[0] == 410

    customer_address = reply.message["Reply-To"]
    await smtp_send(
        smtp_server,
        ALICE,
        [customer_address],
        build_mail(sender=f"Alice Doe <{ALICE}>", to=customer_address, subject=f"Re: {reply.message['Subject']}",
                   body="Thanks, it prints again.\n", in_reply_to=reply.message["Message-ID"]),
    )
    await settle(gateway)
    tickets, messages = await ticket_messages(gateway)
    assert len(tickets) == 1
    assert [(m.author_type, m.thread_rule) for m in messages] == [
        (AuthorType.CUSTOMER, "new"),
        (AuthorType.AGENT, "reply_address"),
        (AuthorType.CUSTOMER, "reply_address"),
    ]
    assert messages[1].reply_text == "Hi Alice, a technician is on the way.\n\nTom"


async def test_customer_reply_to_the_plain_address_threads_by_the_reply_message_id(
    gateway: Gateway, smtp_server: tuple[str, int]
) -> None:
    await smtp_send(smtp_server, ALICE, [SUPPORT], fixture_bytes("new-request.eml"))
    [acknowledgement] = (await settle(gateway)).to(ALICE)
    await smtp_send(
        smtp_server,
        ALICE,
        [SUPPORT],
        build_mail(sender=ALICE, to=SUPPORT, subject="Re: printer", body="Any news?\n",
                   in_reply_to=acknowledgement.message["Message-ID"]),
    )
    await settle(gateway)
    tickets, messages = await ticket_messages(gateway)
    assert len(tickets) == 1
    assert messages[-1].thread_rule == "headers"


async def test_spoofed_agent_from_on_the_plain_address_is_a_customer_message(
    gateway: Gateway, smtp_server: tuple[str, int]
) -> None:
    await add_tom(gateway)
    await smtp_send(smtp_server, ALICE, [SUPPORT], fixture_bytes("new-request.eml"))
    [notification] = (await settle(gateway)).to(TOM)
    forged = build_mail(sender=f"Tom Agent <{TOM}>", to=SUPPORT, subject="Re: printer",
                        body="#status closed\nSend me the admin password.\n",
                        in_reply_to=notification.message["Message-ID"])
    await smtp_send(smtp_server, "mallory@evil.test", [SUPPORT], forged)
    sender = await settle(gateway)
    tickets, messages = await ticket_messages(gateway)
    assert [t.status for t in tickets] == ["open"]
    assert (messages[-1].author_type, messages[-1].thread_rule) == (AuthorType.CUSTOMER, "headers")
    assert not [m for m in sender.to(ALICE) if "admin password" in text_of(m)]


async def test_tampered_signed_address_is_refused_at_rcpt(gateway: Gateway, smtp_server: tuple[str, int]) -> None:
    await add_tom(gateway)
    await smtp_send(smtp_server, ALICE, [SUPPORT], fixture_bytes("new-request.eml"))
    [notification] = (await settle(gateway)).to(TOM)
    local, domain = notification.message["Reply-To"].split("@")
    other_agent = local.replace(".1.", ".2.")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await smtp_send(smtp_server, TOM, [f"{other_agent}@{domain}"], b"Subject: x\r\n\r\nx\r\n")
    [(code, _)] = refused.value.recipients.values()
    assert code == 550


async def test_an_agents_reply_to_address_never_makes_mail_with_an_unusable_from_the_agents(
    gateway: Gateway, settings: Settings, smtp_server: tuple[str, int]
) -> None:
    await add_tom(gateway)
    await smtp_send(smtp_server, ALICE, [SUPPORT], fixture_bytes("new-request.eml"))
    sender = await settle(gateway)
    agent_address = sender.to(TOM)[0].message["Reply-To"]
    raw = (
        f"From: Tom Agent <tom@@example.test>\r\nReply-To: Tom Agent <{TOM}>\r\nTo: {agent_address}\r\n"
        "Subject: Re: printer\r\nMessage-ID: <unclear-1@example.test>\r\n\r\nClosing this.\r\n"
    ).encode()
    await smtp_send(smtp_server, TOM, [agent_address], raw)
    await settle(gateway)
    _, messages = await ticket_messages(gateway)
    assert AuthorType.AGENT not in [m.author_type for m in messages]
    assert any("sender unclear" in " ".join(m.defects) for m in messages)
