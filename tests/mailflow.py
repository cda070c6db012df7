"""Helpers for the outbound-mail tests: the team, real SMTP conversations, reading sent mail."""

from __future__ import annotations

import asyncio
import re
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from typing import cast

import dkim

from gateway.cli.runtime import Gateway
from gateway.directory.agents import add_agent
from gateway.models import Agent
from gateway.outbound.dkim import keygen
from gateway.outbound.senders import MemorySender, SentMail
from gateway.settings import Settings
from tests.support import ReceiveEmail

TOM = "tom@example.test"
ALICE = "alice@customer.test"
LINK = re.compile(r"http://portal\.example\.test/l/([A-Za-z0-9_-]{43})")


async def add_tom(gateway: Gateway) -> Agent:
    return await gateway.db.write(lambda session: add_agent(session, TOM, "Tom Agent"))


def outbox_sender(gateway: Gateway) -> MemorySender:
    return cast(MemorySender, gateway.sender)


async def new_requests(receive_email: ReceiveEmail, count: int) -> None:
    """`count` customers (c0@…, c1@…) each open a ticket, so each gets an acknowledgement."""
    for number in range(count):
        await receive_email(
            f"From: c{number}@customer.test\r\nTo: support@example.test\r\nSubject: Help {number}\r\n"
            f"Message-ID: <c{number}@customer.test>\r\n\r\nPlease help.\r\n".encode()
        )


async def settle(gateway: Gateway) -> MemorySender:
    """Process everything received, then deliver everything queued."""
    await gateway.processor.drain()
    await gateway.outbox.drain()
    return outbox_sender(gateway)


def build_mail(
    *,
    sender: str,
    to: str,
    subject: str,
    body: str,
    in_reply_to: str | None = None,
    **headers: str,
) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">"))
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return mail.as_bytes()


async def smtp_send(server: tuple[str, int], mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
    """One SMTP transaction over a real socket (smtplib, off the event loop)."""

    def send() -> None:
        with smtplib.SMTP(*server, timeout=10) as client:
            client.sendmail(mail_from, rcpt_tos, raw)

    await asyncio.to_thread(send)


def text_of(mail: SentMail) -> str:
    return mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def html_of(mail: SentMail) -> str:
    return mail.message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def dkim_valid(settings: Settings, raw: bytes, domain: str = "example.test") -> bool:
    """Verify a signature with dkimpy, answering its DNS query from our own key."""
    record = keygen(settings, domain)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record.value.encode() if name.decode().rstrip(".") == record.name else b""

    return bool(dkim.verify(raw, dnsfunc=dns))
