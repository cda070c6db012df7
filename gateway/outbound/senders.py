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
RELAY_QUIT_SECONDS = 5.0  # how long a goodbye may hold up the next email or a stopping node


class SmtpSender:
    """Delivery through an SMTP relay, with STARTTLS or implicit TLS and AUTH as configured.

    Over TLS the relay's certificate and host name are always verified, against
    `relay_ca_file` when one is set (an internal CA), else the system's CAs; credentials are
    never sent to a relay that fails the check.

    One connection carries email after email, as an MTA's SMTP client keeps its
    connections: connecting, EHLO, STARTTLS and AUTH cost more than sending a notification
    (docs/architecture.md, "One email, from the socket to the page", step 5). It is closed
    with QUIT after `RELAY_IDLE_SECONDS` unused or `RELAY_EMAILS_PER_CONNECTION` emails, and
    dropped after any failure but a well-formed refusal of the one email (which aiosmtplib
    follows with RSET). A kept connection the relay hung up on meanwhile is replaced, and
    one it closes with 421 at MAIL, before any of the email, is tried again on a new one.
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
        try:
            client, kept = await self._connection()
            try:
                await client.sendmail(mail_from, rcpt_tos, raw, timeout=s.relay_timeout_seconds)
            except aiosmtplib.SMTPSenderRefused as error:
                if not (kept and error.code == 421):
                    raise
                # A relay closing a kept connection (its cap on one connection, its idle
                # timeout) answers MAIL with 421, before any of the email: it goes on a new one.
                self._drop()
                client, _ = await self._connection()
                await client.sendmail(mail_from, rcpt_tos, raw, timeout=s.relay_timeout_seconds)
            self._carried += 1
        except aiosmtplib.SMTPRecipientsRefused as error:
            self._keep_if_refused_alone(error)
            worst = min(error.recipients, key=lambda r: r.code)  # any 4xx means: try again
            raise _failure(worst.code, f"{worst.recipient}: {worst.message}") from error
        except aiosmtplib.SMTPAuthenticationError as error:
            self._drop()
            raise TemporaryFailure(f"the relay refused our credentials: {error.code} {error.message}") from error
        except aiosmtplib.SMTPResponseException as error:
            self._keep_if_refused_alone(error)
            raise _failure(error.code, error.message) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            # Cut mid-conversation (after the dot, the relay may have the email): the outbox
            # tries again after its backoff, never at once, as for any unreachable relay.
            self._drop()
            raise TemporaryFailure(f"relay {s.relay_host}:{s.relay_port} unreachable: {error}") from error
        except BaseException:
            self._drop()  # cancelled mid-conversation: the connection's state is unknown
            raise

    def _keep_if_refused_alone(self, error: aiosmtplib.SMTPException) -> None:
        """Keep the connection after the relay refused this email in well-formed words (aiosmtplib
        has sent RSET); drop it after anything else: a garbled reply, a 421, a lost connection."""
        if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
            codes = [recipient.code for recipient in error.recipients]
        elif isinstance(error, aiosmtplib.SMTPSenderRefused | aiosmtplib.SMTPDataError):
            codes = [error.code]
        else:
            codes = [0]
        usable = self._client is not None and self._client.is_connected
        if not (usable and all(400 <= code < 600 and code != 421 for code in codes)):
            self._drop()

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
            await client.connect()  # closes its own socket when it fails
        except aiosmtplib.SMTPAuthenticationError:
            raise
        except aiosmtplib.SMTPResponseException as error:
            # Refused before any email (greeting, EHLO, STARTTLS): an answer to this client
            # that every email would get alike, so each waits for the operator, as an MTA defers.
            raise TemporaryFailure(f"the relay refused the connection: {error.code} {error.message}") from error
        self._client, self._carried = client, 0
        return client, False

    async def _quit(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await client.quit(timeout=RELAY_QUIT_SECONDS)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass  # a goodbye the relay did not answer: closed all the same
        finally:
            client.close()  # also when cancelled while saying QUIT

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
