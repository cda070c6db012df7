"""kill -9 of `wicket serve` while SMTP clients send 2,000 messages: every message that got
250 is in the database after the restart (in the very row the 250 named), each of the
2,000 becomes exactly one ticket message, and the clients that got no 250 and sent again
made no duplicates.

Twenty clients each send 100 messages over real sockets, as an MTA would: on a refused
connection, a dropped session or a 4xx they reconnect and send the same message again.
When 600 messages have been acknowledged the node is killed with SIGKILL, mid-stream and
mid-processing, and a new node is started on the same ports and database. Acknowledgement
mail is switched off in this test so the run stays short; the outbox has its own tests.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.models import InboundEmail, InboundStatus, Message
from gateway.settings import Settings
from gateway.storage.database import Database, open_database, orm
from tests.reliability.nodes import Node, free_port, node_environment, prepare_database
from tests.support import SUPPORT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CLIENTS, PER_CLIENT = 20, 100
TOTAL = CLIENTS * PER_CLIENT
KILL_AFTER = 600
QUEUED_AS = re.compile(r"Queued as (\d+)")


@dataclass
class Ledger:
    """What the clients know: which row each 250 named, and which messages they sent again."""

    acked: dict[str, int] = field(default_factory=dict)
    resent: set[str] = field(default_factory=set)
    enough: asyncio.Event = field(default_factory=asyncio.Event)


def message(client: int, n: int) -> tuple[str, bytes]:
    mail = EmailMessage()
    message_id = f"kill9-{client}-{n}@customer.test"
    mail["From"] = f"customer{client}@customer.test"
    mail["To"] = SUPPORT
    mail["Subject"] = f"Request {n} from customer {client}"
    mail["Message-ID"] = f"<{message_id}>"
    mail.set_content(f"Message {n} of client {client}.\n")
    return message_id, mail.as_bytes()


async def client(number: int, port: int, ledger: Ledger, deadline: float) -> None:
    """Send this client's messages, again and again until each one gets its 250."""
    smtp: aiosmtplib.SMTP | None = None
    sender = f"customer{number}@customer.test"
    for n in range(PER_CLIENT):
        message_id, raw = message(number, n)
        while True:
            assert time.monotonic() < deadline, f"client {number} could not deliver {message_id} in time"
            try:
                if smtp is None:
                    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=20)
                    await smtp.connect()
                _, reply = await smtp.sendmail(sender, [SUPPORT], raw)
            except (aiosmtplib.SMTPException, OSError):
                ledger.resent.add(message_id)
                if smtp is not None:
                    smtp.close()
                smtp = None
                await asyncio.sleep(0.05)  # an MTA's pause before it tries again
                continue
            found = QUEUED_AS.search(reply)
            assert found, reply
            ledger.acked[message_id] = int(found.group(1))
            if len(ledger.acked) >= KILL_AFTER:
                ledger.enough.set()
            break
    if smtp is not None:
        await smtp.quit()


async def counts(db: Database) -> dict[str, int]:
    def look(session: Session):
        rows = session.execute(select(InboundEmail.status, func.count()).group_by(InboundEmail.status))
        return {status: n for status, n in rows}

    return await db.read(orm(look))


async def settle(db: Database, seconds: float) -> dict[str, int]:
    """Wait until no row is pending or processing; the processing of 2,000 messages takes a while."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen = await counts(db)
        if not seen.get(InboundStatus.PENDING) and not seen.get(InboundStatus.PROCESSING):
            return seen
        await asyncio.sleep(0.25)
    return await counts(db)


async def test_kill_9_under_load_loses_no_acknowledged_message_and_duplicates_none(
    shared_url: str, tmp_path: Path
) -> None:
    await prepare_database(shared_url, acknowledge=False)
    smtp_port, http_port = free_port(), free_port()
    env = node_environment(
        shared_url, tmp_path / "var", smtp_host="127.0.0.1", smtp_port=str(smtp_port), http_host="127.0.0.1",
        http_port=str(http_port), process_poll_seconds="0.1", process_lease_seconds="2",
        process_retry_base_seconds="0.1",
    )
    log = tmp_path / "nodes.log"
    first = Node.start(env, log)
    second: Node | None = None
    db = open_database(Settings(database_url=shared_url))
    try:
        await first.wait_listening(smtp_port)
        ledger = Ledger()
        deadline = time.monotonic() + 120
        clients = asyncio.gather(*(client(n, smtp_port, ledger, deadline) for n in range(CLIENTS)))
        await asyncio.wait_for(ledger.enough.wait(), timeout=60)
        first.kill()
        acked_before_kill = len(ledger.acked)
        at_kill = await counts(db)
        second = Node.start(env, log)
        await second.wait_listening(smtp_port)
        await clients
        settled = await settle(db, seconds=150)

        assert len(ledger.acked) == TOTAL
        assert ledger.resent, "the kill interrupted no session, so this test proved nothing"
        assert at_kill.get(InboundStatus.DELIVERED, 0) < acked_before_kill, "nothing was left to process at the kill"
        assert set(settled) <= {InboundStatus.DELIVERED, InboundStatus.IGNORED}, settled

        def look(session: Session):
            named = dict((session.execute(
                select(InboundEmail.id, InboundEmail.message_id).where(InboundEmail.id.in_(list(ledger.acked.values())))
            )).all())
            ticket_messages = session.execute(
                select(Message.rfc_message_id, func.count()).group_by(Message.rfc_message_id)
            ).all()
            return named, ticket_messages

        named, ticket_messages = await db.read(orm(look))
        assert {named.get(row_id) for row_id in ledger.acked.values()} == set(ledger.acked), (
            "a 250 named a row that is not there, or holds another message"
        )
        assert dict(ticket_messages) == {message_id: 1 for message_id in ledger.acked}
        assert settled.get(InboundStatus.IGNORED, 0) == sum(settled.values()) - TOTAL  # resends stored, then ignored
    finally:
        await db.dispose()
        first.stop()
        if second is not None:
            second.stop()
