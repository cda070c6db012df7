"""Test helpers shared by the suite's modules (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import smtplib
import subprocess
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from functools import cache
from pathlib import Path

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.util import await_only

from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from gateway.models import Base, Contact, InboundEmail, TicketParticipant
from gateway.models.help import search_schema
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from portal.app import create_app

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "emails"
SUPPORT = "support@example.test"

ReceiveEmail = Callable[..., Awaitable[InboundEmail]]


async def create_schema(db: Database) -> None:
    """The models' tables, created in one write (tests start from the models, not the migrations).

    On PostgreSQL every test makes its tables in a schema of its own, so the statements
    `create_all` would send one at a time (and the checks before each) go as one script,
    compiled once: about a third off each test's set-up. tests/storage/test_schema_script.py
    holds that both make the same tables.
    """
    if db.is_sqlite:
        await db.write(lambda session: Base.metadata.create_all(session.connection()))
        return

    def run_script(session: Session) -> None:
        driver = session.connection().connection.driver_connection  # asyncpg's own connection
        await_only(driver.execute(postgres_schema_script()))

    await db.write(run_script)


@cache
def postgres_schema_script() -> str:
    """The models' DDL for PostgreSQL: each table and its indexes in dependency order, then
    the help center's search index, which `create_all` adds through a DDL event."""
    dialect = postgresql.asyncpg.dialect()
    statements = []
    for table in Base.metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        statements += [str(CreateIndex(index).compile(dialect=dialect)).strip()
                       for index in sorted(table.indexes, key=lambda index: index.name or "")]
    statements += search_schema("postgresql")
    return ";\n".join(statements) + ";"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def portal_app(settings: Settings, db: Database) -> web.Application:
    """The portal app wired as `wicket serve` wires it: on a `Gateway` over `db`, with its Processor.

    For tests that have no started `gateway` fixture on the same settings (those hand
    `gateway.processor` to `create_app` themselves). The Gateway is not started: the portal
    uses only its processor, whose router loads the mailboxes when it first routes.
    """
    return create_app(settings, db, processor=Gateway(settings, db, resolver=FixedResolver()).processor)


Server = tuple[str, int]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for `localhost` (its own CA), made with openssl for one day."""
    cert, key = directory / "localhost.crt", directory / "localhost.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def simple_mail(subject: str = "Hello", body: str = "Please help.", size: int = 0) -> bytes:
    message = EmailMessage()
    message["From"] = "Alice Doe <alice@customer.test>"
    message["To"] = SUPPORT
    message["Subject"] = subject
    message.set_content(body + ("x" * 76 + "\n") * (size // 77 + 1) if size else body)
    return message.as_bytes()


def _send(server: Server, raw: bytes, to: list[str], sender: str = "alice@customer.test") -> tuple[int, bytes]:
    """One SMTP transaction; returns the reply to DATA (or the refusal)."""
    with smtplib.SMTP(*server, timeout=30) as client:
        client.ehlo("client.test")
        code, reply = client.mail(sender)
        assert code == 250, reply
        for recipient in to:
            code, reply = client.rcpt(recipient)
            if code != 250:
                return code, reply
        return client.data(raw)


async def send(server: Server, raw: bytes, to: list[str] | None = None) -> tuple[int, bytes]:
    return await asyncio.to_thread(_send, server, raw, to or [SUPPORT])


def recombines(text: str, reply: str, quoted: str) -> bool:
    """Whether a reply split lost nothing: `text` is the reply with the quote put back at
    one place (the end, for a reply written above the history)."""
    if len(reply) + len(quoted) != len(text):
        return False
    shared = 0
    while shared < len(reply) and reply[shared] == text[shared]:
        shared += 1
    return any(text == reply[:cut] + quoted + reply[cut:] for cut in range(shared, -1, -1))


async def participant_emails(db: Database, ticket_id: int | None) -> set[str]:
    """The addresses of the contacts taking part in the ticket."""
    query = (
        select(Contact.email)
        .join(TicketParticipant, TicketParticipant.contact_id == Contact.id)
        .where(TicketParticipant.ticket_id == ticket_id)
    )
    return await db.read(orm(lambda session: set(session.scalars(query).all())))
