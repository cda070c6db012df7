"""A link or code Wicket issued that comes back in inbound mail is burned and never shown again.

A customer who answers by email quotes the mail they got, live link and code included.
Over real SMTP and HTTP: the quoted link and code stop working at once, and every text
Wicket derives from the reply (stored message fields, the agent API, the agent's
notification) holds a placeholder instead, while the raw message stays byte-exact. Only
links on Wicket's own hosts and codes Wicket really issued are touched.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.directory.agents import create_api_key
from gateway.directory.branding import set_brand
from gateway.models import InboundEmail, MagicLink, Mailbox, Message, Ticket
from gateway.settings import Settings
from gateway.storage.database import orm
from portal.app import create_app, runner_options
from tests.mailflow import ALICE, TOM, add_tom, settle, smtp_send, text_of
from tests.portal.helpers import Client, post_form
from tests.support import SUPPORT, ReceiveEmail, fixture_bytes

pytestmark = pytest.mark.timeout(120)

LINK = re.compile(r"https?://[^\s\"<>]+/l/([A-Za-z0-9_-]{43})")
CODE = re.compile(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b")
LINK_REMOVED, CODE_REMOVED = "[sign-in link removed]", "[sign-in code removed]"


async def portal(aiohttp_client: Any, settings: Settings, gateway: Gateway) -> Client:
    server = TestServer(create_app(settings, db=gateway.db, processor=gateway.processor))
    await server.start_server(**runner_options())
    client: Client = await aiohttp_client(server)
    return client


def quoting_reply(acknowledgement: EmailMessage, text: str, html: str, code: str) -> bytes:
    """Alice's answer, as a mail client writes it: her words above the whole quoted mail."""
    quoted = "".join(f"> {line}\n" for line in text.splitlines())
    reply = EmailMessage(policy=SMTP)
    reply["From"] = f"Alice Doe <{ALICE}>"
    reply["To"] = acknowledgement["Reply-To"]
    reply["Subject"] = f"Re: {acknowledgement['Subject']} (code {code})"
    reply["Message-ID"] = make_msgid(domain="customer.test")
    reply["In-Reply-To"] = reply["References"] = acknowledgement["Message-ID"]
    reply.set_content(
        f"Thanks! The code {code} did not work on my phone though.\n\n"
        f"On Tue, 3 Nov 2026 at 10:12, Example Support <{SUPPORT}> wrote:\n{quoted}"
    )
    reply.add_alternative(
        f"<p>Thanks! The code {code} did not work on my phone though.</p>"
        f"<blockquote>{html}</blockquote>",
        subtype="html",
    )
    return reply.as_bytes()


async def test_a_link_and_code_quoted_back_in_a_reply_are_burned_and_replaced_wherever_they_are_shown(
    gateway: Gateway, settings: Settings, smtp_server: tuple[str, int], aiohttp_client: Any
) -> None:
    await add_tom(gateway)
    api_key = await gateway.db.write(lambda session: create_api_key(session, TOM))
    await smtp_send(smtp_server, ALICE, [SUPPORT], fixture_bytes("new-request.eml"))
    [acknowledgement] = (await settle(gateway)).to(ALICE)
    text = text_of(acknowledgement)
    html = acknowledgement.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    link, code = LINK.search(text), CODE.search(text)
    assert link is not None and code is not None
    token = link.group(1)
    reply = quoting_reply(acknowledgement.message, text, html, code.group(1))
    assert token in reply.decode() and code.group(1) in reply.decode()

    await smtp_send(smtp_server, ALICE, [acknowledgement.message["Reply-To"]], reply)
    sender = await settle(gateway)

    # Burned at once: neither the link nor the code signs anyone in any more.
    browser = await portal(aiohttp_client, settings, gateway)
    answer = await post_form(browser, f"/l/{token}", {}, page="/login")
    assert answer.status in (404, 410), answer.status
    assert "Set-Cookie" not in answer.headers or "session" not in answer.headers["Set-Cookie"]
    by_code = await post_form(browser, "/code", {"email": ALICE, "code": code.group(1)})
    assert by_code.status == 400

    def look(session: Session):
        links = session.scalars(select(MagicLink)).all()
        inbound = session.scalars(select(InboundEmail).order_by(InboundEmail.id)).all()
        stored = session.scalars(select(Message).order_by(Message.id)).all()
        ticket = session.get_one(Ticket, stored[-1].ticket_id)
        return links, inbound, stored, ticket

    links, inbound, stored, ticket = await gateway.db.read(orm(look))
    assert [link_.burned for link_ in links] == [True]

    # The raw message is kept as it came; everything derived from it holds placeholders.
    assert inbound[-1].raw == reply
    message = stored[-1]
    assert message.inbound_email_id == inbound[-1].id
    for field in ("subject", "body_text", "reply_text", "quoted_text", "body_html", "display_html", "display_quoted_html"):
        value = getattr(message, field) or ""
        assert token not in value and code.group(1) not in value, field
    assert CODE_REMOVED in message.subject and CODE_REMOVED in message.reply_text
    assert LINK_REMOVED in message.quoted_text and CODE_REMOVED in message.quoted_text
    assert LINK_REMOVED in (message.body_html or "") and CODE_REMOVED in (message.body_html or "")

    api = await browser.get(f"/api/v1/tickets/{ticket.public_id}", headers={"Authorization": f"Bearer {api_key}"})
    shown = await api.text()
    assert api.status == 200 and CODE_REMOVED in shown
    assert token not in shown and code.group(1) not in shown

    notification = sender.to(TOM)[-1]
    assert "did not work on my phone" in text_of(notification)
    assert CODE_REMOVED in text_of(notification)
    assert token not in notification.raw.decode() and code.group(1) not in notification.raw.decode()


async def test_only_wicket_hosts_and_codes_wicket_issued_are_removed(
    gateway: Gateway, settings: Settings, mailbox: Mailbox, receive_email: ReceiveEmail
) -> None:
    await gateway.db.write(lambda session: set_brand(session, SUPPORT, custom_domain="help.brand.test"))
    unknown, other, third = "A" * 21 + "-" + "b" * 21, "C" * 21 + "_" + "d" * 21, "E" * 43
    body = (
        "ATTACHED: the INVOICE. Ref ABCD-EFGH and part XK42-ZZ9P.\n"
        f"Our portal: http://portal.example.test/l/{unknown}\n"
        f"Brand portal: https://help.brand.test/l/{unknown}?x=1\n"
        f"Glued:<HTTP://Portal.Example.Test:8080/l/{third}>\n"
        f"Someone else's: https://elsewhere.test/l/{other}\n"
    )
    mail = EmailMessage()
    mail["From"] = "Bob <bob@customer.test>"
    mail["To"] = SUPPORT
    mail["Subject"] = "ATTACHED INVOICE ABCD-EFGH"
    mail["Message-ID"] = "<ordinary-1@customer.test>"
    mail.set_content(body)
    row = await receive_email(mail.as_bytes())

    def look(session: Session):
        [message] = session.scalars(select(Message).where(Message.inbound_email_id == row.id)).all()
        return message

    message = await gateway.db.read(orm(look))
    assert message.subject == "ATTACHED INVOICE ABCD-EFGH"
    assert "ATTACHED: the INVOICE. Ref ABCD-EFGH and part XK42-ZZ9P." in message.body_text
    assert f"Our portal: {LINK_REMOVED}\n" in message.body_text
    assert f"Brand portal: {LINK_REMOVED}?x=1\n" in message.body_text
    assert f"Glued:<{LINK_REMOVED}>\n" in message.body_text
    assert f"Someone else's: https://elsewhere.test/l/{other}\n" in message.body_text


async def test_a_code_wicket_issued_is_removed_even_without_its_dash(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail
) -> None:
    await receive_email(fixture_bytes("new-request.eml"))
    sender = await settle(gateway)
    [acknowledgement] = sender.to(ALICE)
    found = CODE.search(text_of(acknowledgement))
    assert found is not None
    typed = found.group(1).replace("-", "")
    mail = EmailMessage()
    mail["From"] = ALICE
    mail["To"] = acknowledgement.message["Reply-To"]
    mail["Subject"] = "Re: code"
    mail["Message-ID"] = "<typed-code@customer.test>"
    mail.set_content(f"I typed {typed} but it did not work.\n")
    row = await receive_email(mail.as_bytes(), to=acknowledgement.message["Reply-To"])

    def look(session: Session):
        [message] = session.scalars(select(Message).where(Message.inbound_email_id == row.id)).all()
        [link] = session.scalars(select(MagicLink)).all()
        return message, link

    message, link = await gateway.db.read(orm(look))
    assert message.body_text.startswith(f"I typed {CODE_REMOVED} but it did not work.")
    assert link.burned
