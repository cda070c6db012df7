"""When the outbound relay is down (connection refused), then up but answering 451, the
outbox keeps every message queued with its attempts and the reason, and once the relay
accepts, the running outbox worker delivers each of them exactly once.

The relay is a real aiosmtpd server on 127.0.0.1, started on the port Wicket was told to
use only after Wicket has already failed to reach it.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from email import message_from_bytes

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from gateway.models import Mailbox, OutboxMessage, OutboxStatus
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.portal.helpers import with_settings
from tests.support import SUPPORT, simple_mail

pytestmark = pytest.mark.timeout(90)

CUSTOMERS = [f"customer{n}@customer.test" for n in range(4)]


class Relay:
    """An SMTP relay that refuses with 451 while `refusing`, and keeps what it accepts."""

    def __init__(self) -> None:
        self.refusing = True
        self.refused = 0
        self.received: list[Envelope] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refusing:
            self.refused += 1
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 2.0.0 Accepted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def outbox(db: Database) -> list[OutboxMessage]:
    def look(session: OrmSession):
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all())

    return await db.read(orm(look))


async def until(check: Callable[[], Awaitable[bool]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "gave up waiting"
        await asyncio.sleep(0.05)


async def test_the_outbox_keeps_mail_while_the_relay_is_down_and_delivers_each_once_when_it_is_back(
    settings: Settings, db: Database, mailbox: Mailbox
) -> None:
    port = free_port()
    relayed = with_settings(
        settings, outbound_sender="smtp", relay_host="127.0.0.1", relay_port=port, relay_security="none",
        relay_timeout_seconds=5, outbox_retry_base_seconds=0.05, outbox_retry_max_seconds=0.3,
        outbox_max_attempts=200, outbox_poll_seconds=0.05,
    )
    gateway = Gateway(relayed, db, resolver=FixedResolver())
    await gateway.start()
    relay = Relay()
    server: asyncio.Server | None = None
    try:
        for customer in CUSTOMERS:  # each new ticket queues an acknowledgement
            raw = simple_mail(f"Help for {customer}").replace(b"alice@customer.test", customer.encode())
            await gateway.receive(raw, mail_from=customer, rcpt_tos=(SUPPORT,))
        await gateway.processor.drain()
        queued = await outbox(db)
        assert len(queued) == len(CUSTOMERS)
        gateway.run_outbox()

        async def retried(times: int) -> bool:
            rows = await outbox(db)
            return all(r.status == OutboxStatus.QUEUED and r.attempts >= times for r in rows)

        await until(lambda: retried(2), seconds=20)  # down: connection refused
        assert all("unreachable" in (r.last_error or "") for r in await outbox(db))

        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(relay, hostname="relay.test"), "127.0.0.1", port)

        async def refused_by_the_relay() -> bool:  # up, but answering 451
            rows = await outbox(db)
            return all(r.status == OutboxStatus.QUEUED and "451" in (r.last_error or "") for r in rows)

        await until(refused_by_the_relay, seconds=20)
        assert relay.received == []

        relay.refusing = False

        async def all_sent() -> bool:
            return all(r.status == OutboxStatus.SENT for r in await outbox(db))

        await until(all_sent, seconds=20)
    finally:
        await gateway.stop()
        if server is not None:
            server.close()
            await server.wait_closed()
    delivered = [message_from_bytes(envelope.original_content or b"") for envelope in relay.received]
    ids = [str(message["Message-ID"]).strip("<>") for message in delivered]
    assert sorted(ids) == sorted(row.rfc_message_id for row in queued), "each message exactly once"
    assert sorted(rcpt for envelope in relay.received for rcpt in envelope.rcpt_tos) == sorted(CUSTOMERS)
