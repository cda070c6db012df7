"""Customer mail speaks the contact's language, else the mailbox's default; agents' mail stays English."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.storage.database import orm

from sqlalchemy import select, update

from gateway.cli.runtime import Gateway
from gateway.models import Agent, Contact, Mailbox, Ticket, TicketStatus
from gateway.directory.contacts import contact_for
from gateway.tickets.commands import Commands
from gateway.tickets.replies import AgentReply, apply_reply
from tests.mailflow import ALICE, add_tom, html_of, settle, text_of
from tests.support import ReceiveEmail


async def german_alice(gateway: Gateway) -> None:
    def work(session) -> None:  # type: ignore[no-untyped-def]
        contact_for(session, ALICE, "Alice Doe").language = "de"

    await gateway.db.write(work)


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

    def _change(session: Session):
        ticket = session.scalar(select(Ticket))
        assert ticket is not None
        resolved = AgentReply("", Commands(status=TicketStatus.RESOLVED))
        apply_reply(session, gateway.events, ticket, session.get_one(Agent, tom.id), resolved, thread_rule="cli")

    await gateway.db.write(_change)
    [resolved] = (await settle(gateway)).to(ALICE)[1:]
    assert "als gelöst markiert" in text_of(resolved) and "Wie waren wir?" in html_of(resolved)


async def test_without_a_choice_mail_speaks_the_mailbox_default(
    gateway: Gateway, receive_email: ReceiveEmail, mailbox: Mailbox
) -> None:
    await gateway.db.write(
        lambda session: session.execute(update(Mailbox).where(Mailbox.id == mailbox.id).values(language="fr"))
    )
    await receive_email("new-request.eml")
    [ack] = (await settle(gateway)).to(ALICE)
    assert "Merci d’avoir écrit à" in text_of(ack)
    assert '<html lang="fr" dir="ltr">' in html_of(ack)
    def _look(session: Session):
        alice = session.scalar(select(Contact).where(Contact.email == ALICE))
        assert alice is not None and alice.language is None  # the default is not copied onto the contact

    await gateway.db.read(orm(_look))


async def test_an_arabic_contact_gets_right_to_left_mail(gateway: Gateway, receive_email: ReceiveEmail) -> None:
    def work(session) -> None:  # type: ignore[no-untyped-def]
        contact_for(session, ALICE, "Alice Doe").language = "ar"

    await gateway.db.write(work)
    await receive_email("new-request.eml")
    [ack] = (await settle(gateway)).to(ALICE)
    assert '<html lang="ar" dir="rtl">' in html_of(ack) and "شكرًا لمراسلتك" in text_of(ack)
