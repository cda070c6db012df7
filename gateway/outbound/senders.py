"""Senders hand finished, signed messages to the world: SMTP relay, maildir or memory.

Every sender has one method, `send(mail_from, rcpt_tos, raw)`, which returns once the
message is accepted and otherwise raises `TemporaryFailure` (try again later: 4xx replies,
timeouts, refused connections, a relay rejecting our credentials) or `PermanentFailure`
(5xx for this message: it will never be accepted as it is). `SmtpSender` talks to the
configured relay with aiosmtplib, `MaildirSender` files messages under `var/maildir` for
`make run` and the dev mail viewer, and `MemorySender` keeps them in a list for tests.
"""

from __future__ import annotations

import asyncio
import mailbox
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol, cast

import aiosmtplib

from gateway.settings import Settings


class DeliveryError(Exception):
    """The message was not accepted."""


class TemporaryFailure(DeliveryError):
    pass


class PermanentFailure(DeliveryError):
    pass


class Sender(Protocol):
    async def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None: ...


def _failure(code: int, text: str) -> DeliveryError:
    kind = PermanentFailure if code >= 500 else TemporaryFailure
    return kind(f"{code} {text}".strip())


class SmtpSender:
    """Delivery through an SMTP relay, with STARTTLS or implicit TLS and AUTH as configured.

    Over TLS the relay's certificate and host name are always verified, against
    `relay_ca_file` when one is set (an internal CA), else the system's CAs; credentials are
    never sent to a relay that fails the check."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        s = self._settings
        try:
            await aiosmtplib.send(
                raw,
                sender=mail_from,
                recipients=rcpt_tos,
                hostname=s.relay_host,
                port=s.relay_port,
                username=s.relay_username,
                password=s.relay_password.get_secret_value() if s.relay_password else None,
                use_tls=s.relay_security == "tls",
                start_tls=s.relay_security == "starttls",
                cert_bundle=str(s.relay_ca_file) if s.relay_ca_file else None,
                timeout=s.relay_timeout_seconds,
                local_hostname=s.smtp_hostname,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            worst = min(error.recipients, key=lambda r: r.code)  # any 4xx means: try again
            raise _failure(worst.code, f"{worst.recipient}: {worst.message}") from error
        except aiosmtplib.SMTPAuthenticationError as error:
            raise TemporaryFailure(f"the relay refused our credentials: {error.code} {error.message}") from error
        except aiosmtplib.SMTPResponseException as error:
            raise _failure(error.code, error.message) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise TemporaryFailure(f"relay {s.relay_host}:{s.relay_port} unreachable: {error}") from error


class MaildirSender:
    """Files every message in one maildir, as a local delivery agent would."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        envelope = f"Return-Path: <{mail_from}>\r\nDelivered-To: {', '.join(rcpt_tos)}\r\n".encode()
        await asyncio.to_thread(self._add, envelope + raw)

    def _add(self, raw: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mailbox.Maildir(self.path, create=True).add(raw)


@dataclass(frozen=True, slots=True)
class SentMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return cast(EmailMessage, message_from_bytes(self.raw, policy=policy.default))


@dataclass
class MemorySender:
    """Keeps what was sent, in order, for tests to read."""

    sent: list[SentMail] = field(default_factory=list)

    async def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        self.sent.append(SentMail(mail_from, list(rcpt_tos), raw))

    def to(self, address: str) -> list[SentMail]:
        return [m for m in self.sent if address.lower() in (r.lower() for r in m.rcpt_tos)]


def build_sender(settings: Settings) -> Sender:
    if settings.outbound_sender == "smtp":
        return SmtpSender(settings)
    if settings.outbound_sender == "memory":
        return MemorySender()
    return MaildirSender(settings.maildir_dir)
