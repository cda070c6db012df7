"""Customer mail speaks the contact's language, else the mailbox's default; agents' mail stays English."""

from __future__ import annotations

from sqlalchemy import select, update

from gateway.cli.runtime import Gateway
from gateway.models import Contact, Mailbox, Ticket, TicketStatus
from gateway.directory.contacts import contact_for
from gateway.tickets.commands import Commands
from gateway.tickets.replies import AgentReply, apply_reply
from tests.mailflow import ALICE, add_tom, html_of, settle, text_of
from tests.support import ReceiveEmail


async def german_alice(gateway: Gateway) -> None:
    def work(session) -> None:  # type: ignore[no-untyped-def]
        contact_for(session, ALICE, "Alice Doe").language = "de"

    await gateway.db.run_write(work)


async def test_a_contact_whose_profile_says_german_gets_german_mail(
    gateway: Gateway, receive_email: ReceiveEmail
) -> None:
    await german_alice(gateway)
    await receive_email("new-request.eml")
    [ack] = (await settle(gateway)).to(ALICE)
    assert "Hallo Alice Doe," in text_of(ack)
    assert "Vielen Dank für Ihre Nachricht an" in text_of(ack) and "Thank you" not in text_of(ack)
    assert '<html lang="de" dir="ltr">' in html_of(ack) and "Ticket ansehen" in html_of(ack)

    tom = await add_tom(gateway)
    async with gateway.db.sessions.begin() as session:
        ticket = await session.scalar(select(Ticket))
        assert ticket is not None
        await session.run_sync(
            apply_reply, gateway.events, ticket, tom, AgentReply("", Commands(status=TicketStatus.RESOLVED)), thread_rule="cli"
        )
    [resolved] = (await settle(gateway)).to(ALICE)[1:]
    assert "als gelöst markiert" in text_of(resolved) and "Wie waren wir?" in html_of(resolved)


async def test_without_a_choice_mail_speaks_the_mailbox_default(
    gateway: Gateway, receive_email: ReceiveEmail, mailbox: Mailbox
) -> None:
    await gateway.db.run_write(
        lambda session: session.execute(update(Mailbox).where(Mailbox.id == mailbox.id).values(language="fr"))
    )
    await receive_email("new-request.eml")
    [ack] = (await settle(gateway)).to(ALICE)
    assert "Merci d’avoir écrit à" in text_of(ack)
    assert '<html lang="fr" dir="ltr">' in html_of(ack)
    async with gateway.db.sessions() as session:
        alice = await session.scalar(select(Contact).where(Contact.email == ALICE))
        assert alice is not None and alice.language is None  # the default is not copied onto the contact


async def test_an_arabic_contact_gets_right_to_left_mail(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    def work(session) -> None:  # type: ignore[no-untyped-def]
        contact_for(session, ALICE, "Alice Doe").language = "ar"

    await gateway.db.run_write(work)
    await receive_email("new-request.eml")
    [ack] = (await settle(gateway)).to(ALICE)
    assert '<html lang="ar" dir="rtl">' in html_of(ack) and "شكرًا لمراسلتك" in text_of(ack)
