"""A scripted SMTP relay for outbox tests, and settings that send to it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from gateway.settings import Settings


@dataclass
class Relay:
    """A tiny SMTP relay: answers DATA from a script of replies, then 250; keeps what it took.

    `peers` has the client's address for every DATA it answered, so tests see which emails
    came over one connection; with `hang_up`, it drops each connection after its first DATA,
    as a relay that timed out an idle client would have; `mail_replies` script MAIL (a 421
    also hangs up, as relays do); with `vanish_after_data`, the next DATA is stored and the
    connection cut before its 250 leaves; `quits` counts the clients that said goodbye
    (answered after `quit_delay`).
    """

    data_replies: list[str] = field(default_factory=list)
    mail_replies: list[str] = field(default_factory=list)
    vanish_after_data: bool = False
    received: list[Envelope] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    peers: list[object] = field(default_factory=list)
    hang_up: bool = False
    quit_delay: float = 0.0
    quits: int = 0
    port: int = 0

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.mail_replies.pop(0) if self.mail_replies else "250 OK"
        if reply.startswith("250"):
            envelope.mail_from = address
        elif reply.startswith("421") and server.transport is not None:
            asyncio.get_running_loop().call_soon(server.transport.close)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.peers.append(session.peer)
        reply = self.data_replies.pop(0) if self.data_replies else "250 2.0.0 OK"
        if reply.startswith("250"):
            self.received.append(envelope)
        if self.vanish_after_data and server.transport is not None:
            self.vanish_after_data = False
            server.transport.abort()  # stored, and the 250 never leaves
        elif self.hang_up and server.transport is not None:
            asyncio.get_running_loop().call_soon(server.transport.close)  # after the reply is written
        return reply

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quits += 1
        await asyncio.sleep(self.quit_delay)
        return "221 Bye"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"relay-secret", handled=False)


def relay_settings(settings: Settings, relay: Relay, **overrides: Any) -> Settings:
    values = {"relay_host": "127.0.0.1", "relay_port": relay.port, "relay_security": "none",
              "relay_username": "wicket", "relay_password": "relay-secret", "outbox_retry_base_seconds": 0}
    return Settings(**{**settings.model_dump(), **values, **overrides})
