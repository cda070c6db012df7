"""Who joins a ticket by mail: nothing in a mail grants access by itself.

A ticket's public id and ref are identifiers printed in every mail and URL. The body
marker is signed for the contact it was mailed to and, like the subject tag, threads only
mail from someone who already takes part; a stranger who quotes either opens a ticket of
their own, which tells the agents what it mentions. A reply that threads by its reply
address or headers stores its sender's words on the ticket without making the sender a
participant; addresses the requester puts in Cc there do join. Scenarios run over a real
SMTP socket and the real portal.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.tokens import issue_link
from gateway.cli.runtime import Gateway
from gateway.directory.agents import add_agent
from gateway.models import Contact, Message, Ticket
from gateway.settings import Settings
from gateway.storage.database import orm
from gateway.tickets.replies import AgentReply, apply_reply
from portal.app import create_app
from tests.mailflow import TOM, add_tom, build_mail, outbox_sender, settle, smtp_send, text_of
from tests.portal.helpers import sign_in_with_link
from tests.support import SUPPORT, participant_emails

BOB, MALLORY, CAROL = "bob@customer.test", "mallory@evil.test", "carol@customer.test"
SIGNED_MARKER = re.compile(r"\[wicket:[^\]\s]+\]")


async def tickets_and_messages(gateway: Gateway) -> tuple[list[Ticket], list[Message]]:
    def look(session: Session):
        tickets = list(session.scalars(select(Ticket).order_by(Ticket.id)).all())
        messages = list(session.scalars(select(Message).order_by(Message.id)).all())
        return tickets, messages

    tickets, messages = await gateway.db.read(orm(look))
    return tickets, messages


async def participants(gateway: Gateway, ticket: Ticket) -> set[str]:
    return await participant_emails(gateway.db, ticket.id)


async def bob_opens_a_ticket(gateway: Gateway, smtp: tuple[str, int]) -> tuple[Ticket, Any]:
    await smtp_send(smtp, BOB, [SUPPORT], build_mail(
        sender=f"Bob <{BOB}>", to=SUPPORT, subject="Refund for order 1234",
        body="My card number ends in 4242; please refund the order.\n"))
    [acknowledgement] = (await settle(gateway)).to(BOB)
    [ticket], _ = await tickets_and_messages(gateway)
    return ticket, acknowledgement


async def portal_status_as(
    aiohttp_client: Any, settings: Settings, gateway: Gateway, email: str, path: str
) -> int:
    """Sign `email` in with a link of their own, as anyone can, and open `path`."""

    def change(session: Session):
        contact = session.scalar(select(Contact).where(Contact.email == email))
        assert contact is not None
        issued = issue_link(session, settings, contact)
        return issued

    issued = await gateway.db.write(change)
    browser = await aiohttp_client(create_app(settings, gateway.db, processor=gateway.processor))
    assert (await sign_in_with_link(browser, issued)).status == 303
    return (await browser.get(path, allow_redirects=False)).status


async def agent_replies(gateway: Gateway, settings: Settings, ticket: Ticket, text: str) -> None:
    def change(session: Session):
        tom = add_agent(session, "tom@example.test", "Tom Agent")
        box_ticket = session.get_one(Ticket, ticket.id)
        apply_reply(session, gateway.events, box_ticket, tom, AgentReply(text=text), thread_rule="cli")

    await gateway.db.write(change)


async def test_a_stranger_quoting_a_tickets_public_id_opens_her_own_ticket_and_sees_nothing(
    gateway: Gateway, settings: Settings, smtp_server: tuple[str, int], aiohttp_client: Any
) -> None:
    bob_ticket, _ = await bob_opens_a_ticket(gateway, smtp_server)

    await smtp_send(smtp_server, MALLORY, [SUPPORT], build_mail(
        sender=f"Mallory <{MALLORY}>", to=SUPPORT, subject="Hello",
        body=f"Just a note. [wicket:{bob_ticket.public_id}]\n"))
    await settle(gateway)

    tickets, messages = await tickets_and_messages(gateway)
    assert len(tickets) == 2, "the stranger's mail opened a ticket of its own"
    mallorys = [m for m in messages if not m.internal][-1]
    assert mallorys.ticket_id == tickets[1].id and mallorys.thread_rule == "new"
    assert await participants(gateway, bob_ticket) == {BOB}
    mention = [m for m in messages if m.ticket_id == tickets[1].id and m.internal]
    assert mention and f"#{bob_ticket.ref}" in mention[0].body_text, "agents see what the mail mentions"

    assert await portal_status_as(aiohttp_client, settings, gateway, MALLORY,
                                  f"/tickets/{bob_ticket.public_id}") == 404
    await agent_replies(gateway, settings, bob_ticket, "Your refund is on its way.")
    sender = await settle(gateway)
    assert not [m for m in sender.to(MALLORY) if "refund is on its way" in text_of(m)]
    assert [m for m in sender.to(BOB) if "refund is on its way" in text_of(m)]


async def test_a_stranger_holding_a_leaked_signed_marker_still_joins_nothing(
    gateway: Gateway, settings: Settings, smtp_server: tuple[str, int]
) -> None:
    bob_ticket, acknowledgement = await bob_opens_a_ticket(gateway, smtp_server)
    marker = SIGNED_MARKER.search(text_of(acknowledgement))
    assert marker is not None

    await smtp_send(smtp_server, MALLORY, [SUPPORT], build_mail(
        sender=MALLORY, to=SUPPORT, subject="Re: Refund", body=f"Me too.\n> {marker.group(0)}\n"))
    await settle(gateway)

    tickets, messages = await tickets_and_messages(gateway)
    assert len(tickets) == 2 and [m for m in messages if not m.internal][-1].ticket_id == tickets[1].id
    assert await participants(gateway, bob_ticket) == {BOB}


async def test_the_participant_replying_with_only_the_signed_marker_threads_by_it(
    gateway: Gateway, smtp_server: tuple[str, int]
) -> None:
    bob_ticket, acknowledgement = await bob_opens_a_ticket(gateway, smtp_server)
    marker = SIGNED_MARKER.search(text_of(acknowledgement))
    assert marker is not None and bob_ticket.public_id in marker.group(0)

    # Bob's client lost the threading headers and he wrote to the plain address.
    await smtp_send(smtp_server, BOB, [SUPPORT], build_mail(
        sender=BOB, to=SUPPORT, subject="About my refund", body=f"Any news?\n> {marker.group(0)}\n"))
    await settle(gateway)
    tickets, messages = await tickets_and_messages(gateway)
    assert len(tickets) == 1
    assert (messages[-1].ticket_id, messages[-1].thread_rule) == (bob_ticket.id, "marker")


async def test_a_marker_without_a_valid_signature_threads_nobody(
    gateway: Gateway, smtp_server: tuple[str, int]
) -> None:
    bob_ticket, acknowledgement = await bob_opens_a_ticket(gateway, smtp_server)
    marker = SIGNED_MARKER.search(text_of(acknowledgement))
    assert marker is not None
    forged = marker.group(0)[:-3] + ("aa]" if not marker.group(0).endswith("aa]") else "bb]")
    for body in (f"Any news?\n> {forged}\n", f"Any news?\n> [wicket:{bob_ticket.public_id}]\n"):
        await smtp_send(smtp_server, BOB, [SUPPORT], build_mail(
            sender=BOB, to=SUPPORT, subject="About my refund", body=body))
    await settle(gateway)
    _, messages = await tickets_and_messages(gateway)
    assert [m.thread_rule for m in messages if not m.internal][-2:] == ["new", "new"]


async def test_a_reply_threaded_by_headers_from_a_non_participant_does_not_make_them_one(
    gateway: Gateway, settings: Settings, smtp_server: tuple[str, int], aiohttp_client: Any
) -> None:
    bob_ticket, acknowledgement = await bob_opens_a_ticket(gateway, smtp_server)
    # Bob forwarded the acknowledgement; Carol answers it.
    await smtp_send(smtp_server, CAROL, [SUPPORT], build_mail(
        sender=CAROL, to=SUPPORT, subject="Re: Refund", body="I am Bob's manager; please hurry.\n",
        in_reply_to=acknowledgement.message["Message-ID"]))
    await settle(gateway)

    tickets, messages = await tickets_and_messages(gateway)
    assert len(tickets) == 1
    assert (messages[-1].ticket_id, messages[-1].thread_rule) == (bob_ticket.id, "headers")
    assert await participants(gateway, bob_ticket) == {BOB}
    assert await portal_status_as(aiohttp_client, settings, gateway, CAROL,
                                  f"/tickets/{bob_ticket.public_id}") == 404


async def test_addresses_the_requester_puts_in_cc_on_a_threaded_reply_take_part(
    gateway: Gateway, settings: Settings, smtp_server: tuple[str, int], aiohttp_client: Any
) -> None:
    bob_ticket, acknowledgement = await bob_opens_a_ticket(gateway, smtp_server)
    reply_to = acknowledgement.message["Reply-To"]
    await smtp_send(smtp_server, BOB, [reply_to], build_mail(
        sender=BOB, to=reply_to, subject="Re: Refund", body="Adding Carol, who handles our accounts.\n",
        in_reply_to=acknowledgement.message["Message-ID"], Cc=f"Carol <{CAROL}>, {SUPPORT}"))
    await settle(gateway)

    assert await participants(gateway, bob_ticket) == {BOB, CAROL}
    assert await portal_status_as(aiohttp_client, settings, gateway, CAROL,
                                  f"/tickets/{bob_ticket.public_id}") == 200


async def test_cc_added_by_someone_other_than_the_requester_joins_nobody(
    gateway: Gateway, smtp_server: tuple[str, int]
) -> None:
    bob_ticket, acknowledgement = await bob_opens_a_ticket(gateway, smtp_server)
    await smtp_send(smtp_server, CAROL, [SUPPORT], build_mail(
        sender=CAROL, to=SUPPORT, subject="Re: Refund", body="Looping in a friend.\n",
        in_reply_to=acknowledgement.message["Message-ID"], Cc=MALLORY))
    await settle(gateway)
    assert await participants(gateway, bob_ticket) == {BOB}


async def test_addresses_an_agent_puts_in_cc_on_an_email_reply_take_part(
    gateway: Gateway, smtp_server: tuple[str, int]
) -> None:
    await add_tom(gateway)
    bob_ticket, _ = await bob_opens_a_ticket(gateway, smtp_server)
    [notification] = outbox_sender(gateway).to(TOM)
    agent_address = notification.message["Reply-To"]
    await smtp_send(smtp_server, TOM, [agent_address], build_mail(
        sender=f"Tom Agent <{TOM}>", to=agent_address, subject="Re: Refund",
        body="Carol from accounts will confirm.\n", in_reply_to=notification.message["Message-ID"],
        Cc=f"{CAROL}, {SUPPORT}"))
    await settle(gateway)
    assert await participants(gateway, bob_ticket) == {BOB, CAROL}
