"""Customer files too large to attach reach the agent as signed, agent-scoped, expiring links.

With `notify_attachment_max_bytes` below the customer's files, the notification attaches
nothing and lists each file with a link for that agent alone. The link serves the file to
whoever holds it while it is valid and the agent still works the mailbox (agents have no
portal session), as a download; the outbox keeps the email with the link replaced, and the
access log never shows it.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.downloads import REDACTED, download_token
from gateway.cli.runtime import Gateway
from gateway.directory.agents import add_agent, remove_agent
from gateway.directory.mailboxes import add_mailbox
from gateway.models import Attachment, OutboxMessage, utcnow
from gateway.settings import Settings
from gateway.storage.database import orm
from portal.app import create_app, runner_options
from tests.mailflow import TOM, add_tom, settle, text_of
from tests.portal.helpers import audit_events, with_settings
from tests.support import SUPPORT, ReceiveEmail

CSV = b"order,amount\n" + b"1234,99.00\n" * 40
DOWNLOAD = re.compile(r"http://portal\.example\.test/agent/files/([A-Za-z0-9_.-]+)")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_settings(settings, notify_attachment_max_bytes=100)


def mail_with_a_large_file() -> bytes:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "bob@customer.test", SUPPORT, "My orders"
    mail.set_content("All my orders are in the file.")
    mail.add_attachment(CSV, maintype="text", subtype="csv", filename="orders.csv")
    return mail.as_bytes()


async def test_an_agent_gets_a_link_instead_of_a_file_over_the_limit_and_it_serves_the_file_to_them(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail, aiohttp_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    await add_tom(gateway)
    await receive_email(mail_with_a_large_file())
    [notification] = (await settle(gateway)).to(TOM)
    assert not [p for p in notification.message.walk() if p.get_filename()], "nothing attached over the limit"
    text = text_of(notification)
    assert "orders.csv" in text
    [token] = DOWNLOAD.findall(text)
    assert DOWNLOAD.search(notification.message.get_body(("html",)).get_content())  # type: ignore[union-attr]

    server = TestServer(create_app(settings, gateway.db, processor=gateway.processor))
    await server.start_server(**runner_options())  # the access log production writes
    browser = await aiohttp_client(server)
    response = await browser.get(f"/agent/files/{token}")
    assert (response.status, await response.read()) == (200, CSV)
    assert response.content_type == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert [e.detail["attachment"] for e in await audit_events(gateway.db, "attachment.downloaded_by_agent")]

    def look(session: Session):
        kept = session.scalar(select(OutboxMessage.raw).where(OutboxMessage.rcpt_tos.is_not(None))
                                    .where(OutboxMessage.kind == "notification"))  # fmt: skip
        return kept

    kept = await gateway.db.read(orm(look))
    assert kept is not None and token.encode() not in kept and REDACTED.encode() in kept
    assert token not in caplog.text and "/agent/files/[redacted]" in caplog.text


async def test_a_link_for_another_agent_an_expired_forged_or_removed_agents_link_is_404(
    gateway: Gateway, settings: Settings, receive_email: ReceiveEmail, aiohttp_client: Any
) -> None:
    tom = await add_tom(gateway)

    def change(session: Session):
        add_mailbox(session, "sales@example.test", "Sales")
        sam = add_agent(session, "sam@example.test", "Sam", mailboxes=["sales@example.test"])
        return sam

    sam = await gateway.db.write(change)
    await receive_email(mail_with_a_large_file())
    await settle(gateway)
    file = await gateway.db.read(orm(lambda session: session.scalar(select(Attachment.public_id))))
    assert file is not None
    key, soon = settings.keys[0], utcnow() + timedelta(hours=1)
    browser = await aiohttp_client(create_app(settings, gateway.db, processor=gateway.processor))

    async def status(token: str) -> int:
        return (await browser.get(f"/agent/files/{token}")).status

    valid = download_token(key, file, tom.id, soon)
    assert await status(valid) == 200
    assert await status(download_token(key, file, sam.id, soon)) == 404, "Sam does not work this mailbox"
    assert await status(download_token(key, file, tom.id, utcnow() - timedelta(seconds=1))) == 404
    assert await status(valid[:-2] + ("AA" if not valid.endswith("AA") else "BB")) == 404
    assert await status(valid.replace(f".{tom.id}.", f".{sam.id}.")) == 404, "the agent is part of what is signed"
    await gateway.db.write(lambda session: remove_agent(session, TOM))
    assert await status(valid) == 404, "a removed agent's links stop working"
