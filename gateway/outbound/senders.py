"""Senders hand finished, signed messages to the world: SMTP relay, maildir or memory.

Every sender has `send(mail_from, rcpt_tos, raw)`, which returns once the message is
accepted and otherwise raises `TemporaryFailure` (try again later: 4xx replies, timeouts,
refused connections, a relay rejecting our credentials) or `PermanentFailure` (5xx for
this message: it will never be accepted as it is), and `close()` for a node that stops.
`SmtpSender` talks to the configured relay with aiosmtplib over a kept connection,
`MaildirSender` files messages under `var/maildir` for `make run` and the dev mail viewer,
and `MemorySender` keeps them in a list for tests.
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

    async def close(self) -> None:
        """Let go of what the sender keeps open (a relay connection) when the node stops."""


def _failure(code: int, text: str) -> DeliveryError:
    kind = PermanentFailure if code >= 500 else TemporaryFailure
    return kind(f"{code} {text}".strip())


RELAY_IDLE_SECONDS = 5.0  # a kept connection unused this long says QUIT; relays wait a minute or more
RELAY_EMAILS_PER_CONNECTION = 100  # then a fresh one, as some relays cap what one connection carries


class SmtpSender:
    """Delivery through an SMTP relay, with STARTTLS or implicit TLS and AUTH as configured.

    Over TLS the relay's certificate and host name are always verified, against
    `relay_ca_file` when one is set (an internal CA), else the system's CAs; credentials are
    never sent to a relay that fails the check.

    One connection carries email after email, as an MTA's SMTP client keeps its
    connections: connecting, EHLO, STARTTLS and AUTH cost more than sending a notification
    (docs/architecture.md, "One email, from the socket to the page", step 5). It is closed with QUIT after `RELAY_IDLE_SECONDS`
    unused or `RELAY_EMAILS_PER_CONNECTION` emails, and dropped after any failure but a
    refusal of the one email (which aiosmtplib answers with RSET). A kept connection the
    relay has hung up on meanwhile is replaced and the email sent over the new one.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None
        self._carried = 0
        self._using = asyncio.Lock()
        self._idle: asyncio.TimerHandle | None = None

    async def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        async with self._using:
            if self._idle is not None:
                self._idle.cancel()
            try:
                await self._send(mail_from, rcpt_tos, raw)
            finally:
                if self._client is not None:
                    self._idle = asyncio.get_running_loop().call_later(RELAY_IDLE_SECONDS, self._close_idle)

    async def close(self) -> None:
        """Say QUIT on the kept connection, if there is one."""
        async with self._using:
            if self._idle is not None:
                self._idle.cancel()
            await self._quit()

    async def _send(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        s = self._settings
        kept = False
        try:
            try:
                client, kept = await self._connection()
                await client.sendmail(mail_from, rcpt_tos, raw, timeout=s.relay_timeout_seconds)
            except aiosmtplib.SMTPServerDisconnected:
                self._drop()
                if not kept:
                    raise
                client, _ = await self._connection()  # the relay hung up on the kept one meanwhile
                await client.sendmail(mail_from, rcpt_tos, raw, timeout=s.relay_timeout_seconds)
            self._carried += 1
        except aiosmtplib.SMTPRecipientsRefused as error:
            worst = min(error.recipients, key=lambda r: r.code)  # any 4xx means: try again
            raise _failure(worst.code, f"{worst.recipient}: {worst.message}") from error
        except aiosmtplib.SMTPAuthenticationError as error:
            self._drop()
            raise TemporaryFailure(f"the relay refused our credentials: {error.code} {error.message}") from error
        except aiosmtplib.SMTPResponseException as error:
            raise _failure(error.code, error.message) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            self._drop()
            raise TemporaryFailure(f"relay {s.relay_host}:{s.relay_port} unreachable: {error}") from error
        except BaseException:
            self._drop()  # cancelled mid-conversation: the connection's state is unknown
            raise

    async def _connection(self) -> tuple[aiosmtplib.SMTP, bool]:
        """The kept connection when it is still open and not spent, else a new one; whether it was kept."""
        if self._client is not None and self._client.is_connected and self._carried < RELAY_EMAILS_PER_CONNECTION:
            return self._client, True
        await self._quit()
        s = self._settings
        client = aiosmtplib.SMTP(
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
        try:
            await client.connect()
        except BaseException:
            client.close()
            raise
        self._client, self._carried = client, 0
        return client, False

    async def _quit(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _close_idle(self) -> None:
        self._idle = None
        if self._client is not None and not self._using.locked():
            task = asyncio.ensure_future(self.close())
            _background.add(task)
            task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()  # idle closes in flight, held so they finish


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

    async def close(self) -> None:
        """Nothing is kept open between emails."""


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

    async def close(self) -> None:
        """Nothing is kept open between emails."""

    def to(self, address: str) -> list[SentMail]:
        return [m for m in self.sent if address.lower() in (r.lower() for r in m.rcpt_tos)]


def build_sender(settings: Settings) -> Sender:
    if settings.outbound_sender == "smtp":
        return SmtpSender(settings)
    if settings.outbound_sender == "memory":
        return MemorySender()
    return MaildirSender(settings.maildir_dir)
