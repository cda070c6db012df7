"""Every way Wicket's listener departs from stock aiosmtpd, pinned against stock aiosmtpd itself.

Each test sends the same commands, over real sockets, to a stock `aiosmtpd.smtp.SMTP`
with a `Sink` handler and to Wicket's listener, both built from the listener's own
constructor options (`protocol_options`, STARTTLS offered), and asserts both answers: what
aiosmtpd says on its own and what Wicket says instead. An aiosmtpd upgrade that changes
the stock text or behaviour (the DATA replies `WicketSMTP.push` swaps by exact text, the
EHLO lines the `handle_EHLO` hook filters, the AUTH answers) fails here by name, before it
silently changes what Wicket answers. The overrides kept for speed (`_getaddr`, `__dir__`)
are pinned to give aiosmtpd's own results.
"""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from gateway.inbound.smtp import REPLY_TOO_BIG, WicketHandler, WicketSMTP, protocol_options
from gateway.models import Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database
from tests.portal.helpers import with_settings
from tests.support import SUPPORT, Server, self_signed_certificate, send, simple_mail

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")

LIMIT = 64 * 1024  # a small size limit, so an oversized message is quick to send
CRLF_MAIL = simple_mail().replace(b"\n", b"\r\n")
HEADERS = f"From: alice@customer.test\r\nTo: {SUPPORT}\r\nSubject: Long\r\n\r\n".encode()


@dataclass(frozen=True)
class Pair:
    stock: Server
    wicket: Server
    gateway: Gateway
    cafile: Path


class Failing(Sink):
    """A handler whose DATA hook fails, to see aiosmtpd's own answer to a handler error."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raise RuntimeError("boom")


async def serve_stock(settings: Settings, handler: object) -> tuple[asyncio.Server, Server]:
    options = protocol_options(settings)
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(handler, **options), host="127.0.0.1", port=0
    )
    return server, server.sockets[0].getsockname()[:2]


@pytest.fixture
async def pair(settings: Settings, db: Database, mailbox: Mailbox, tmp_path: Path) -> AsyncIterator[Pair]:
    cert, key = self_signed_certificate(tmp_path)
    configured = with_settings(settings, smtp_tls_cert_file=cert, smtp_tls_key_file=key, max_message_size=LIMIT)
    gateway = Gateway(configured, db, resolver=FixedResolver())
    await gateway.start()
    stock, stock_address = await serve_stock(configured, Sink())
    try:
        wicket = await gateway.serve_smtp(host="127.0.0.1", port=0)
        yield Pair(stock_address, wicket.sockets[0].getsockname()[:2], gateway, cert)
    finally:
        stock.close()
        await stock.wait_closed()
        await gateway.stop()


def _client(server: Server, cafile: Path | None) -> smtplib.SMTP:
    client = smtplib.SMTP(*server, timeout=30)
    client.command_encoding = "utf-8"  # SMTPUTF8 paths are sent raw
    client.ehlo("client.test")
    if cafile is not None:
        context = ssl.create_default_context(cafile=str(cafile))
        context.check_hostname = False  # the certificate names localhost; we connect to 127.0.0.1
        client.starttls(context=context)
        client.ehlo("client.test")
    return client


def _ehlo(server: Server, cafile: Path | None) -> list[bytes]:
    with _client(server, cafile) as client:
        code, lines = client.ehlo("client.test")
        assert code == 250
        return [line.strip() for line in lines.split(b"\n")]


def _commands(server: Server, cafile: Path | None, *commands: str) -> list[tuple[int, bytes]]:
    with _client(server, cafile) as client:
        return [client.docmd(*command.split(" ", 1)) for command in commands]


async def ehlo(server: Server, cafile: Path | None = None) -> list[bytes]:
    """The EHLO lines without their codes (after STARTTLS when `cafile` is given)."""
    return await asyncio.to_thread(_ehlo, server, cafile)


async def commands(server: Server, *lines: str, cafile: Path | None = None) -> list[tuple[int, bytes]]:
    """The replies to `lines`, sent one by one after EHLO (after STARTTLS when `cafile` is given)."""
    return await asyncio.to_thread(_commands, server, cafile, *lines)


def hostname(pair: Pair) -> bytes:
    return pair.gateway.settings.smtp_hostname.encode()


async def test_ehlo_on_a_plain_session_is_aiosmtpds_own(pair: Pair) -> None:
    stock = await ehlo(pair.stock)
    assert stock == [hostname(pair), f"SIZE {LIMIT}".encode(), b"8BITMIME", b"SMTPUTF8", b"STARTTLS", b"HELP"]
    assert await ehlo(pair.wicket) == stock


async def test_ehlo_after_starttls_lists_auth_in_aiosmtpd_and_not_in_wicket(pair: Pair) -> None:
    stock = await ehlo(pair.stock, pair.cafile)
    # Every mechanism is excluded, yet aiosmtpd still advertises the bare keyword.
    assert stock == [hostname(pair), f"SIZE {LIMIT}".encode(), b"8BITMIME", b"SMTPUTF8", b"AUTH", b"HELP"]
    assert await ehlo(pair.wicket, pair.cafile) == [line for line in stock if line != b"AUTH"]


async def test_auth_is_refused_by_aiosmtpd_for_want_of_tls_or_mechanism_and_by_wicket_outright(pair: Pair) -> None:
    command = "AUTH PLAIN AGFsaWNlAHNlY3JldA=="
    assert await commands(pair.stock, command) == [
        (538, b"5.7.11 Encryption required for requested authentication mechanism")
    ]
    assert await commands(pair.stock, command, cafile=pair.cafile) == [(504, b"5.5.4 Unrecognized authentication type")]
    not_offered = [(502, b"5.5.1 AUTH is not offered here")]
    assert await commands(pair.wicket, command) == not_offered
    assert await commands(pair.wicket, command, cafile=pair.cafile) == not_offered


async def test_help_lists_auth_in_aiosmtpd_and_not_in_wicket(pair: Pair) -> None:
    verbs = b"DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET STARTTLS VRFY"
    assert await commands(pair.stock, "HELP", "HELP AUTH") == [
        (250, b"Supported commands: AUTH " + verbs),
        (250, b"Syntax: AUTH <mechanism>"),
    ]
    assert await commands(pair.wicket, "HELP", "HELP AUTH") == [
        (250, b"Supported commands: " + verbs),
        (501, b"Supported commands: " + verbs),
    ]


async def test_an_oversized_message_gets_aiosmtpds_552_with_an_enhanced_code_in_wicket(pair: Pair) -> None:
    raw = simple_mail(size=LIMIT + 10).replace(b"\n", b"\r\n")  # short lines, as aiosmtpd counts them
    assert await send(pair.stock, raw) == (552, b"Error: Too much mail data")
    assert await send(pair.wicket, raw) == (552, REPLY_TOO_BIG[4:].encode())


async def test_a_line_over_a_mebibyte_gets_aiosmtpds_500_with_an_enhanced_code_in_wicket(pair: Pair) -> None:
    raw = HEADERS + b"x" * (1024 * 1024 + 10) + b"\r\n"  # over the size limit too: the line is judged first
    assert await send(pair.stock, raw) == (500, b"Line too long (see RFC5321 4.5.3.1.6)")
    assert await send(pair.wicket, raw) == (500, b"5.5.2 Line too long")


async def test_a_line_over_rfc_5321s_limit_is_refused_by_aiosmtpd_and_stored_by_wicket(pair: Pair) -> None:
    raw = HEADERS + b"x" * 2000 + b"\r\n"
    assert await send(pair.stock, raw) == (500, b"Line too long (see RFC5321 4.5.3.1.6)")
    code, reply = await send(pair.wicket, raw)
    assert code == 250 and reply.startswith(b"2.0.0 Queued as "), reply


async def test_a_failing_data_hook_is_a_500_naming_the_error_in_aiosmtpd_and_a_451_in_wicket(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    stock, address = await serve_stock(pair.gateway.settings, Failing())
    try:
        assert await send(address, CRLF_MAIL) == (500, b"Error: (RuntimeError) boom")
    finally:
        stock.close()
        await stock.wait_closed()

    async def failing_save(*args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(pair.gateway.store, "save", failing_save)
    assert await send(pair.wicket, CRLF_MAIL) == (451, b"4.3.0 Temporary failure, please retry later")


PATHS = [
    "<alice@customer.test>",
    "<alice.doe+tag@mail.customer.test> SIZE=1000",
    "<alice@customer.test>  BODY=8BITMIME",
    '<"alice doe"@customer.test>',
    "<alice@[127.0.0.1]>",
    "<alice@customer.test> (a comment)",
    "<alice@customer.test>(a comment)",
    "<ålice@customer.test> SMTPUTF8",
    "<>",
    "<alice@>",
    "<@customer.test>",
    "<alice@customer..test>",
    "alice@customer.test",
    "<alice@customer.test",
    "<" + "a" * 70 + "@customer.test>",
    "<alice@customer.test> SIZE=10\x00",
]


async def test_mail_from_is_answered_as_aiosmtpd_answers_it(pair: Pair) -> None:
    lines = [line for path in PATHS for line in (f"MAIL FROM:{path}", "RSET")]
    assert await commands(pair.wicket, *lines) == await commands(pair.stock, *lines)


async def test_the_fast_path_reader_gives_aiosmtpds_own_result() -> None:
    # WicketSMTP reads plain <local@domain> paths itself instead of through the email package.
    for limit in (0, 64):
        ours = WicketSMTP(Sink(), hostname="mx.example.test")
        ours.local_part_limit = limit
        for path in PATHS:
            argument = path.partition(":")[2] if path.startswith("MAIL") else path
            assert ours._getaddr(argument) == SMTP._getaddr(ours, argument), (path, limit)


async def test_the_listener_knows_every_verb_and_mechanism_aiosmtpd_does(gateway: Gateway) -> None:
    # WicketSMTP lists its protocol methods once per class instead of aiosmtpd's dir() walk
    # per connection; the tables aiosmtpd builds from them must not change.
    handler = WicketHandler(gateway.db, gateway.router, gateway.store, gateway.settings)
    stock = SMTP(handler, hostname="mx.example.test")
    ours = WicketSMTP(handler, hostname="mx.example.test")
    assert ours._smtp_methods.keys() == stock._smtp_methods.keys()
    assert {"EHLO", "MAIL", "RCPT", "DATA", "STARTTLS", "QUIT"} <= ours._smtp_methods.keys()
    assert ours._auth_methods.keys() == stock._auth_methods.keys()
    assert ours._handle_hooks.keys() == stock._handle_hooks.keys()
