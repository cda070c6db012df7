"""STARTTLS on the listener: offered when a certificate is configured, and mail sent over it is stored."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import ssl
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from gateway.models import InboundEmail, Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.portal.helpers import with_settings
from tests.support import SUPPORT, self_signed_certificate, simple_mail

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path)


def send_over_starttls(port: int, cert: Path, raw: bytes) -> tuple[str, tuple[int, bytes]]:
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False  # the certificate names localhost; we connect to 127.0.0.1
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        client.starttls(context=context)
        client.ehlo()
        version = client.sock.version()  # type: ignore[union-attr]
        client.mail("alice@customer.test")
        client.rcpt(SUPPORT)
        return version, client.data(raw)


async def test_mail_sent_after_starttls_is_encrypted_and_stored(
    settings: Settings, db: Database, mailbox: Mailbox, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    gateway = Gateway(with_settings(settings, smtp_tls_cert_file=cert, smtp_tls_key_file=key), db, resolver=FixedResolver())
    await gateway.start()
    try:
        server = await gateway.serve_smtp(host="127.0.0.1", port=0)
        port = server.sockets[0].getsockname()[1]
        version, (code, _) = await asyncio.to_thread(send_over_starttls, port, cert, simple_mail("Over TLS"))
    finally:
        await gateway.stop()
    assert version in ("TLSv1.2", "TLSv1.3") and code == 250
    stored = await db.read(orm(lambda session: session.scalars(select(InboundEmail)).one()))
    assert b"Subject: Over TLS" in stored.raw


async def test_without_a_certificate_starttls_is_not_offered(smtp_server: tuple[str, int]) -> None:
    def offered() -> bool:
        with smtplib.SMTP(*smtp_server, timeout=10) as client:
            client.ehlo()
            return client.has_extn("starttls")

    assert not await asyncio.to_thread(offered)
