"""An agent's files and Cc on the way to customers: inline pictures, refused types, `#cc`.

Agents answer over a real SMTP socket as in production; what customers receive is read
from the outbox's sender, what they see from the real portal.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import getaddresses, make_msgid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import Attachment, Contact, Message, Ticket, TicketParticipant
from gateway.outbound.files import OutgoingFiles, attach
from gateway.outbound.senders import SentMail
from gateway.settings import Settings
from gateway.storage.database import orm
from portal.app import create_app
from tests.mailflow import LINK, TOM, add_tom, build_mail, settle, smtp_send, text_of
from tests.portal.helpers import link_path, post_form
from tests.support import SUPPORT

BOB, DAVE = "bob@customer.test", "dave@customer.test"
PNG = b"\x89PNG\r\n\x1a\n" + b"signature" * 30


async def bob_asks(gateway: Gateway, smtp: tuple[str, int]) -> SentMail:
    """Bob opens a ticket; returns Tom's notification of it."""
    await smtp_send(smtp, BOB, [SUPPORT], build_mail(
        sender=f"Bob <{BOB}>", to=SUPPORT, subject="Where is my parcel?", body="It has been a week.\n"))
    return (await settle(gateway)).to(TOM)[-1]


def tom_answers(notification: SentMail, text: str, html: str | None = None, **files: bytes) -> tuple[str, bytes]:
    address = notification.message["Reply-To"]
    mail = EmailMessage()
    mail["From"] = f"Tom Agent <{TOM}>"
    mail["To"] = address
    mail["Subject"] = "Re: parcel"
    mail["Message-ID"] = make_msgid(domain="example.test")
    mail["In-Reply-To"] = notification.message["Message-ID"]
    mail.set_content(text)
    if html is not None:
        mail.add_alternative(html, subtype="html")
        mail.get_body(("html",)).add_related(  # type: ignore[union-attr]
            PNG, maintype="image", subtype="png", cid="<map@example.test>", filename="map.png", disposition="inline"
        )
    for name, data in files.items():
        mail.add_attachment(data, maintype="application", subtype="octet-stream", filename=name.replace("_", "."))
    return address, mail.as_bytes()


async def ticket_messages(gateway: Gateway) -> list[Message]:
    def look(session: Session):
        return list((session.scalars(select(Message).order_by(Message.id))).all())

    return await gateway.db.read(orm(look))


async def test_an_agents_inline_picture_reaches_the_customer_in_place_and_shows_in_the_portal(
    gateway: Gateway, settings: Settings, smtp_server: tuple[str, int], aiohttp_client: Any
) -> None:
    await add_tom(gateway)
    notification = await bob_asks(gateway, smtp_server)
    address, answer = tom_answers(notification, "Here is the route it takes.",
                                  '<p>Here is the route it takes.</p><img src="cid:map@example.test">')
    await smtp_send(smtp_server, TOM, [address], answer)
    [copy] = [m for m in (await settle(gateway)).to(BOB) if "route it takes" in text_of(m)]

    related = copy.message.get_body(("related",))
    assert related is not None, "the picture travels beside the HTML"
    [picture] = [p for p in copy.message.walk() if p.get_content_type() == "image/png"]
    assert (picture["Content-ID"], picture.get_payload(decode=True)) == ("<map@example.test>", PNG)
    assert 'src="cid:map@example.test"' in copy.message.get_body(("html",)).get_content()  # type: ignore[union-attr]

    browser = await aiohttp_client(create_app(settings, gateway.db, processor=gateway.processor))
    assert (await post_form(browser, link_path(LINK.search(text_of(copy)).group(1)), {})).status == 303  # type: ignore[union-attr]

    def look(session: Session):
        ticket = session.scalar(select(Ticket))
        stored = session.scalar(select(Attachment).where(Attachment.filename == "map.png"))
        return ticket, stored

    ticket, stored = await gateway.db.read(orm(look))
    assert ticket is not None and stored is not None and stored.inline
    page = await (await browser.get(f"/tickets/{ticket.public_id}")).text()
    assert f'<img class="inline-image" src="/tickets/{ticket.public_id}/attachments/{stored.public_id}"' in page


async def test_a_file_the_portal_would_refuse_keeps_the_agents_reply_from_the_customer(
    gateway: Gateway, smtp_server: tuple[str, int]
) -> None:
    await add_tom(gateway)
    notification = await bob_asks(gateway, smtp_server)
    address, answer = tom_answers(notification, "Run this tool.", tool_exe=b"MZ\x90\x00 not really a program")
    await smtp_send(smtp_server, TOM, [address], answer)
    sender = await settle(gateway)

    assert not [m for m in sender.to(BOB) if "Run this tool" in text_of(m)]
    note = (await ticket_messages(gateway))[-1]
    assert note.internal and "tool.exe: files of this type cannot be attached" in note.body_text

    def look(session: Session):
        kept = session.scalar(select(Attachment.filename).where(Attachment.message_id == note.id))
        return kept

    kept = await gateway.db.read(orm(look))
    assert kept == "tool.exe", "nothing the agent sent is lost"


async def test_the_quoted_customer_picture_a_client_reattaches_is_not_sent_back(
    gateway: Gateway, smtp_server: tuple[str, int]
) -> None:
    await add_tom(gateway)
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = BOB, SUPPORT, "Broken screen"
    mail.set_content("See the picture.")
    mail.add_alternative('<p>See:</p><img src="cid:map@example.test">', subtype="html")
    mail.get_body(("html",)).add_related(  # type: ignore[union-attr]
        PNG, maintype="image", subtype="png", cid="<map@example.test>", filename="map.png"
    )
    await smtp_send(smtp_server, BOB, [SUPPORT], mail.as_bytes())
    notification = (await settle(gateway)).to(TOM)[-1]
    # Tom's client quotes the notification with the customer's picture in it.
    address, answer = tom_answers(notification, "A new screen is on its way.",
                                  '<p>A new screen is on its way.</p><blockquote><img src="cid:map@example.test">'
                                  "</blockquote>")  # fmt: skip
    await smtp_send(smtp_server, TOM, [address], answer)
    [copy] = [m for m in (await settle(gateway)).to(BOB) if "screen is on its way" in text_of(m)]
    assert not [p for p in copy.message.walk() if p.get_content_maintype() == "image"]


async def test_an_agent_adds_a_participant_with_cc_who_then_receives_the_answer_with_a_link_of_their_own(
    gateway: Gateway, smtp_server: tuple[str, int]
) -> None:
    await add_tom(gateway)
    notification = await bob_asks(gateway, smtp_server)
    address, answer = tom_answers(notification, f"#cc Dave <{DAVE}>\nDave from logistics will follow up.")
    await smtp_send(smtp_server, TOM, [address], answer)
    sender = await settle(gateway)

    def look(session: Session):
        joined = set((session.scalars(
            select(Contact.email).join(TicketParticipant, TicketParticipant.contact_id == Contact.id))).all())
        return joined

    joined = await gateway.db.read(orm(look))
    assert joined == {BOB, DAVE}
    copies = {reader: [m for m in sender.to(reader) if "Dave from logistics" in text_of(m)] for reader in (BOB, DAVE)}
    assert all(len(found) == 1 for found in copies.values())
    bob_copy, dave_copy = copies[BOB][0], copies[DAVE][0]
    assert "#cc" not in text_of(bob_copy)
    assert LINK.search(text_of(bob_copy)).group(1) != LINK.search(text_of(dave_copy)).group(1)  # type: ignore[union-attr]
    for copy in (bob_copy, dave_copy):
        shown = [a for _, a in getaddresses(copy.message.get_all("To", []) + copy.message.get_all("Cc", []))]
        assert shown == [BOB, DAVE]
    notes = [m.body_text for m in await ticket_messages(gateway) if m.internal]
    assert any("Tom Agent added dave@customer.test" in note for note in notes)

    # Dave answers by mail, to everyone the copy names, as a mail client's reply-all does.
    reply_to = dave_copy.message["Reply-To"]
    await smtp_send(smtp_server, DAVE, [reply_to], build_mail(
        sender=DAVE, to=reply_to, subject=f"Re: {dave_copy.message['Subject']}", body="Parcel found in our depot.\n",
        in_reply_to=dave_copy.message["Message-ID"], Cc=BOB))
    sender = await settle(gateway)
    last = (await ticket_messages(gateway))[-1]
    assert (last.from_email, last.thread_rule, last.internal) == (DAVE, "reply_address", False)
    assert [m for m in sender.to(TOM) if "Parcel found" in text_of(m)], "the agent hears from the colleague"


async def test_a_malformed_cc_command_is_answered_to_the_agent_not_sent(
    gateway: Gateway, smtp_server: tuple[str, int]
) -> None:
    await add_tom(gateway)
    notification = await bob_asks(gateway, smtp_server)
    address, answer = tom_answers(notification, "#cc dave\nSee Dave.")
    await smtp_send(smtp_server, TOM, [address], answer)
    sender = await settle(gateway)
    assert not [m for m in sender.to(BOB) if "See Dave" in text_of(m)]
    assert "#cc name@example.com" in (await ticket_messages(gateway))[-1].body_text


def test_a_content_id_that_cannot_go_back_into_a_header_travels_as_a_plain_attachment() -> None:
    email = EmailMessage()
    email.set_content("text")
    email.add_alternative("<p>text</p>", subtype="html")
    hostile = Attachment(filename="x.png", content_type="image/png", data=PNG, size=len(PNG), sha256="",
                  content_id='evil"\r\nBcc: mallory@evil.test', inline=True)
    files = OutgoingFiles(attached=[hostile])
    assert files.inline_images == []
    attach(email, files)
    raw = email.as_bytes()
    assert b"Bcc:" not in raw and email.get_body(("related",)) is None
    assert [p.get_filename() for p in email.iter_attachments()] == ["x.png"]
