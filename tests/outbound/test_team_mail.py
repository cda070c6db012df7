"""The team's mail, whole, over real SMTP: files both ways, a colleague in Cc, reply-all.

A customer mails with a file, an inline picture and a colleague in Cc; the agent is
notified with the file attached and the picture inline; the agent answers by email with a
PDF; the customer and the colleague each receive the answer with the PDF, their own link,
the requester in To, the other in Cc and the threading headers; the colleague signs in with
her link, sees the PDF on the ticket and replies in the portal, and the agent hears of it.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.models import Attachment, AuthorType, Message, Ticket
from gateway.outbound.senders import SentMail
from gateway.settings import Settings
from gateway.storage.database import orm
from portal.app import create_app
from tests.mailflow import LINK, TOM, add_tom, settle, smtp_send, text_of
from tests.portal.helpers import link_path, post_form
from tests.support import SUPPORT

BOB, CAROL = "bob@customer.test", "carol@customer.test"
PNG = b"\x89PNG\r\n\x1a\n" + b"chart" * 40
CSV = b"invoice,amount\n1234,99.00\n"
PDF = b"%PDF-1.4\n% credit note\n" + b"0" * 2000 + b"\n%%EOF\n"


def files_of(mail: SentMail) -> dict[str, EmailMessage]:
    return {part.get_filename(): part for part in mail.message.walk() if part.get_filename()}


def addresses(mail: SentMail, header: str) -> list[str]:
    return [address for _, address in getaddresses(mail.message.get_all(header, []))]


def customer_mail() -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Bob <{BOB}>"
    mail["To"] = SUPPORT
    mail["Cc"] = f"Carol <{CAROL}>"
    mail["Subject"] = "Invoice 1234 is wrong"
    mail["Message-ID"] = make_msgid(domain="customer.test")
    mail.set_content("The amount on invoice 1234 is wrong; the CSV and a chart are attached.")
    mail.add_alternative('<p>The amount is wrong, see:</p><p><img src="cid:chart@customer.test"></p>', subtype="html")
    mail.get_body(("html",)).add_related(  # type: ignore[union-attr]
        PNG, maintype="image", subtype="png", cid="<chart@customer.test>", filename="chart.png"
    )
    mail.add_attachment(CSV, maintype="text", subtype="csv", filename="invoice.csv")
    return mail.as_bytes()


def agent_answer(notification: SentMail) -> tuple[str, bytes]:
    agent_address = notification.message["Reply-To"]
    mail = EmailMessage()
    mail["From"] = f"Tom Agent <{TOM}>"
    mail["To"] = agent_address
    mail["Subject"] = f"Re: {notification.message['Subject']}"
    mail["Message-ID"] = make_msgid(domain="example.test")
    mail["In-Reply-To"] = notification.message["Message-ID"]
    mail.set_content(f"Sorry about that: the credit note is attached.\n\n> {text_of(notification)[:200]}")
    mail.add_attachment(PDF, maintype="application", subtype="pdf", filename="credit-note.pdf")
    return agent_address, mail.as_bytes()


async def test_a_customer_a_colleague_in_cc_and_an_agent_exchange_files_and_answers_over_smtp(
    gateway: Gateway, settings: Settings, smtp_server: tuple[str, int], aiohttp_client: Any
) -> None:
    await add_tom(gateway)
    original = customer_mail()
    await smtp_send(smtp_server, BOB, [SUPPORT], original)
    sender = await settle(gateway)

    [notification] = sender.to(TOM)
    carried = files_of(notification)
    assert carried["invoice.csv"].get_content_disposition() == "attachment"
    assert carried["invoice.csv"].get_payload(decode=True) == CSV
    chart = carried["chart.png"]
    assert (chart["Content-ID"], chart.get_payload(decode=True)) == ("<chart@customer.test>", PNG)
    html = notification.message.get_body(("html",))
    assert html is not None and html.get_content_type() == "text/html"
    assert 'src="cid:chart@customer.test"' in html.get_content(), "the picture shows inline for the agent"
    assert notification.message.get_body(("related",)) is not None, "the picture travels beside the HTML"

    agent_address, answer = agent_answer(notification)
    await smtp_send(smtp_server, TOM, [agent_address], answer)
    sender = await settle(gateway)

    to_bob = [m for m in sender.to(BOB) if "credit note is attached" in text_of(m)]
    to_carol = [m for m in sender.to(CAROL) if "credit note is attached" in text_of(m)]
    assert len(to_bob) == len(to_carol) == 1
    links = set()
    for copy, reader in ((to_bob[0], BOB), (to_carol[0], CAROL)):
        assert copy.rcpt_tos == [reader], "each copy goes to its reader alone"
        assert files_of(copy)["credit-note.pdf"].get_payload(decode=True) == PDF
        assert files_of(copy)["credit-note.pdf"].get_content_type() == "application/pdf"
        assert (addresses(copy, "To"), addresses(copy, "Cc")) == ([BOB], [CAROL])
        original_id = re.search(rb"Message-ID: <([^>]+)>", original).group(1).decode()  # type: ignore[union-attr]
        assert copy.message["In-Reply-To"] and original_id in copy.message["References"]
        assert "> " not in text_of(copy) and "chart" not in text_of(copy), "the quoted notification stays out"
        [link] = LINK.findall(text_of(copy))
        links.add(link)
    assert len(links) == 2, "each reader has a link of their own"

    carol = await aiohttp_client(create_app(settings, gateway.db, processor=gateway.processor))
    carol_link = LINK.search(text_of(to_carol[0])).group(1)  # type: ignore[union-attr]
    assert (await post_form(carol, link_path(carol_link), {})).status == 303

    def look(session: Session):
        ticket = session.scalar(select(Ticket))
        pdf = session.scalar(select(Attachment).where(Attachment.filename == "credit-note.pdf"))
        return ticket, pdf

    ticket, pdf = await gateway.db.read(orm(look))
    assert ticket is not None and pdf is not None and pdf.sha256
    page = await (await carol.get(f"/tickets/{ticket.public_id}")).text()
    assert "credit-note.pdf" in page and "credit note is attached" in page
    download = await carol.get(f"/tickets/{ticket.public_id}/attachments/{pdf.public_id}")
    assert (download.status, await download.read()) == (200, PDF)

    answer_from_portal = await post_form(carol, f"/tickets/{ticket.public_id}/reply",
                                         {"message": "Thanks, the credit note looks right."},
                                         page=f"/tickets/{ticket.public_id}")  # fmt: skip
    assert answer_from_portal.status == 303
    sender = await settle(gateway)

    def look(session: Session):
        last = session.scalar(select(Message).order_by(Message.id.desc()).limit(1))
        return last

    last = await gateway.db.read(orm(look))
    assert last is not None and (last.author_type, last.from_email) == (AuthorType.CUSTOMER, CAROL)
    assert [m for m in sender.to(TOM) if "credit note looks right" in text_of(m)], "the agent hears of it"
