"""Shared fixtures: a fresh database per test (SQLite, or PostgreSQL when
WICKET_TEST_DATABASE_URL is set), a started Gateway with the support mailbox, the domain
helper `receive_email`, and a real SMTP listener on a free port."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import hypothesis
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.cli.replay import header_envelope
from gateway.cli.runtime import Gateway
from gateway.directory.mailboxes import add_mailbox
from gateway.inbound.dns import FixedResolver
from gateway.mail.outlook_mail import as_message
from gateway.models import InboundEmail, Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database, open_database, orm
from tests.support import SUPPORT, ReceiveEmail, create_schema, fixture_bytes

pytest_plugins = ("pytester",)  # tests/testing runs the shipped plugin in projects of its own

PG_URL_VARIABLE = "WICKET_TEST_DATABASE_URL"

# Property tests explore new examples on a developer's machine; in CI they replay a fixed
# sequence, so a submission's result does not depend on the dice. Failures found locally
# become regression tests or parser fixes.
hypothesis.settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    hypothesis.settings.load_profile("ci")


def _test_database_url() -> str | None:
    return os.environ.get(PG_URL_VARIABLE) or None


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, object]]]:
    """A database URL for this test alone, plus the engine options that isolate it."""
    base_url = _test_database_url()
    if base_url is None:
        yield f"sqlite+aiosqlite:///{tmp_path / 'wicket.db'}", {}
        return
    schema = f"wicket_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(base_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base_url, {"connect_args": {"server_settings": {"search_path": schema}}}
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: tuple[str, dict[str, object]]) -> Settings:
    return Settings(
        database_url=database_url[0],
        var_dir=tmp_path / "var",
        secret_keys=["test-secret-key-newest", "test-secret-key-older"],
        public_url="http://portal.example.test",
        process_retry_base_seconds=0,
        smtp_hostname="mx.example.test",
        loop_token="example.test",
        max_message_size=256 * 1024,
        outbound_sender="memory",  # tests read sent mail from gateway.sender
    )


@pytest.fixture
async def db(settings: Settings, database_url: tuple[str, dict[str, object]]) -> AsyncIterator[Database]:
    database = open_database(settings, **database_url[1])
    await create_schema(database)
    yield database
    await database.dispose()


@pytest.fixture
async def mailbox(db: Database) -> Mailbox:
    return await db.write(lambda session: add_mailbox(session, SUPPORT, "Example Support"))


@pytest.fixture
def resolver() -> FixedResolver:
    """The gateway's DNS: fixed answers a test adds (`resolver.add(name, "TXT", ...)`), never the network."""
    return FixedResolver()


@pytest.fixture
async def gateway(settings: Settings, db: Database, mailbox: Mailbox, resolver: FixedResolver) -> AsyncIterator[Gateway]:
    running = Gateway(settings, db, resolver=resolver)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
def receive_email(gateway: Gateway) -> ReceiveEmail:
    """`await receive_email("reply-gmail.eml", to=...)`: store and process, as production does
    (an Outlook .msg file as the message it holds, as `wicket replay` stores it)."""

    async def receive(
        name_or_bytes: str | bytes,
        *,
        to: str | tuple[str, ...] = SUPPORT,
        mail_from: str | None = None,
        peer: str = "local",
        helo: str | None = None,
    ) -> InboundEmail:
        raw = as_message(fixture_bytes(name_or_bytes) if isinstance(name_or_bytes, str) else name_or_bytes)
        envelope_sender = header_envelope(raw)[0] if mail_from is None else mail_from
        recipients = (to,) if isinstance(to, str) else to
        inbound_id = await gateway.receive(raw, mail_from=envelope_sender, rcpt_tos=recipients, peer=peer, helo=helo)
        await gateway.processor.drain()
        return await gateway.db.read(orm(lambda session: session.get_one(InboundEmail, inbound_id)))

    return receive


@pytest.fixture
async def smtp_server(gateway: Gateway) -> tuple[str, int]:
    """The real listener on 127.0.0.1 and a free port, stopped with the gateway."""
    server = await gateway.serve_smtp(host="127.0.0.1", port=0)
    host, port = server.sockets[0].getsockname()[:2]
    return host, port


@pytest.fixture
async def shared_url(tmp_path: Path) -> AsyncIterator[str]:
    """A database that other processes can open by URL alone: a file on SQLite, on
    PostgreSQL a database of its own, dropped afterwards."""
    base = _test_database_url()
    if base is None:
        yield f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
        return
    name = f"wicket_shared_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()
