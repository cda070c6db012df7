"""Outbound mail to a relay over TLS: STARTTLS and implicit TLS against a real aiosmtpd relay,
its certificate verified, and nothing (not even the credentials) sent to a relay we cannot verify."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from gateway.outbound.senders import SmtpSender, TemporaryFailure
from gateway.settings import Settings
from tests.portal.helpers import with_settings
from tests.support import self_signed_certificate, simple_mail

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")


@dataclass
class TlsRelay:
    """A relay that takes mail and credentials only over TLS, and keeps what it took."""

    port: int = 0
    received: list[Envelope] = field(default_factory=list)
    logins: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 2.0.0 OK"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append(data.password)
        return AuthResult(success=data.password == b"relay-secret", handled=False)


StartRelay = Callable[[str], Any]


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path)


@pytest.fixture
async def start_relay(certificate: tuple[Path, Path]) -> AsyncIterator[StartRelay]:
    """`await start_relay("starttls" | "tls")`: a relay on a free port of 127.0.0.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    servers: list[asyncio.Server] = []

    async def start(security: str) -> TlsRelay:
        relay = TlsRelay()

        def protocol() -> SMTP:
            if security == "starttls":  # plain first; MAIL and AUTH are refused until STARTTLS
                return SMTP(relay, tls_context=context, require_starttls=True, authenticator=relay.authenticate)
            return SMTP(relay, authenticator=relay.authenticate, auth_require_tls=False)

        server = await asyncio.get_running_loop().create_server(
            protocol, "127.0.0.1", 0, ssl=context if security == "tls" else None
        )
        servers.append(server)
        relay.port = server.sockets[0].getsockname()[1]
        return relay

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def relay_settings(settings: Settings, relay: TlsRelay, security: str, ca_file: Path | None) -> Settings:
    return with_settings(
        settings, relay_host="localhost", relay_port=relay.port, relay_security=security, relay_ca_file=ca_file,
        relay_username="wicket", relay_password="relay-secret",
    )  # fmt: skip


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_mail_reaches_a_tls_relay_whose_certificate_chains_to_the_configured_ca(
    settings: Settings, start_relay: StartRelay, certificate: tuple[Path, Path], security: str
) -> None:
    relay = await start_relay(security)
    sender = SmtpSender(relay_settings(settings, relay, security, ca_file=certificate[0]))

    await sender.send("support@example.test", ["alice@customer.test"], simple_mail("Over TLS"))

    [envelope] = relay.received
    assert envelope.rcpt_tos == ["alice@customer.test"] and b"Over TLS" in envelope.original_content
    assert relay.logins == [b"relay-secret"]


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_a_relay_whose_certificate_cannot_be_verified_gets_neither_mail_nor_credentials(
    settings: Settings, start_relay: StartRelay, security: str
) -> None:
    relay = await start_relay(security)
    sender = SmtpSender(relay_settings(settings, relay, security, ca_file=None))  # the system CAs: self-signed fails

    with pytest.raises(TemporaryFailure, match="certificate verify failed"):
        await sender.send("support@example.test", ["alice@customer.test"], simple_mail("Must not leave"))

    assert relay.received == [] and relay.logins == []


async def test_a_relay_reached_under_a_name_its_certificate_does_not_carry_is_refused(
    settings: Settings, start_relay: StartRelay, certificate: tuple[Path, Path]
) -> None:
    relay = await start_relay("starttls")
    trusted = relay_settings(settings, relay, "starttls", ca_file=certificate[0])
    sender = SmtpSender(with_settings(trusted, relay_host="127.0.0.1"))  # the certificate names localhost

    with pytest.raises(TemporaryFailure, match="certificate verify failed"):
        await sender.send("support@example.test", ["alice@customer.test"], simple_mail("Wrong name"))

    assert relay.received == [] and relay.logins == []
