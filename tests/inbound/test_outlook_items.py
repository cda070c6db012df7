"""Outlook items through the production path: a mail carrying one, and a .msg file
received as mail, end as tickets whose messages and files say what the item held."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import Attachment, InboundStatus, Message, Ticket
from gateway.storage.database import orm
from gateway.tickets.queries import show_ticket
from tests.support import SUPPORT, ReceiveEmail

POI = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "poi"


def _mail_carrying(item: bytes, body: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Alice <alice@customer.test>"
    message["To"] = SUPPORT
    message["Subject"] = "Fwd: the mail our supplier sent"
    message["Message-ID"] = "<carrying-item-1@customer.test>"
    message.set_content(body)
    message.add_attachment(item, maintype="application", subtype="vnd.ms-outlook", filename="supplier.msg")
    return message.as_bytes()


async def _stored(gateway: Gateway) -> tuple[Message, list[Attachment]]:
    def look(session: Session) -> tuple[Message, list[Attachment]]:
        message = session.execute(select(Message)).scalar_one()
        files = session.execute(select(Attachment).where(Attachment.message_id == message.id).order_by(Attachment.id))
        return message, list(files.scalars())

    return await gateway.db.read(orm(look))


async def test_a_mail_carrying_an_outlook_item_stores_the_item_and_every_file_in_it(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    item = (POI / "attachment_test_msg.msg").read_bytes()
    inbound = await receive_email(_mail_carrying(item, ""))
    assert inbound.status == InboundStatus.DELIVERED, inbound.last_error
    message, files = await _stored(gateway)
    assert [file.filename for file in files] == ["supplier.msg", "test-unicode.doc", "pj1.txt"]
    assert files[0].data == item  # the original, as sent
    assert message.body_text.strip() == "contenu"  # the mail had no text: the item's is used


async def test_a_damaged_outlook_item_is_stored_whole_and_the_message_says_it_could_not_be_read(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    damaged = (POI / "attachment_test_msg.msg").read_bytes()[:6000]
    inbound = await receive_email(_mail_carrying(damaged, "please see the attached mail"))
    assert inbound.status == InboundStatus.DELIVERED, inbound.last_error
    message, files = await _stored(gateway)
    assert [(file.filename, file.data) for file in files] == [("supplier.msg", damaged)]
    assert any(defect.startswith("Outlook item supplier.msg could not be read") for defect in message.defects)
    assert message.body_text.strip() == "please see the attached mail"


async def test_an_outlook_msg_file_received_as_mail_becomes_a_ticket_from_its_sender(
    receive_email: ReceiveEmail, gateway: Gateway
) -> None:
    inbound = await receive_email((POI / "attachment_msg_pdf.msg").read_bytes(), to=SUPPORT)
    assert inbound.status == InboundStatus.DELIVERED, inbound.last_error
    assert inbound.raw.startswith(b"From: Nick Booth <nick.booth@pof.com.au>\r\n")  # a message was stored, not OLE
    ticket_ref = await gateway.db.read(orm(lambda session: session.execute(select(Ticket.ref)).scalar_one()))
    shown = await show_ticket(gateway.db, ticket_ref, SUPPORT)
    assert (shown["subject"], shown["requester"]) == ("test email", "nick.booth@pof.com.au")
    (message,) = shown["messages"]
    assert message["message_id"] == "3975CB0784A2C249A2EDDD4D43C53D08045B971A87@Stitch.pof.com.au"
    assert message["body_text"].strip() == "Test email with 1 msg attachment, 1 pdf"
    assert [file["filename"] for file in message["attachments"]] == ["Test Attachment.msg", "smbprn.00009008.KdcPjl.pdf"]


async def test_the_same_msg_file_received_twice_is_a_duplicate(receive_email: ReceiveEmail, gateway: Gateway) -> None:
    item = (POI / "attachment_test_msg.msg").read_bytes()  # it has no Message-ID: dedupe goes by the bytes
    first = await receive_email(item, to=SUPPORT)
    again = await receive_email(item, to=SUPPORT)
    assert (first.status, again.status) == (InboundStatus.DELIVERED, InboundStatus.IGNORED)
    assert (again.outcome or "").startswith("duplicate")
