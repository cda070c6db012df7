"""`Harness`: one started gateway on a temporary database, driven the way production drives it.

Mail goes in through `Gateway.receive` (the store the SMTP listener commits through) and
the process's one Processor; outbound mail is delivered by the real outbox worker to an
in-memory sender, so `sent_mail()` returns the messages exactly as they would have left.
A portal client signs in as a person does: a link issued by `wicket link issue`'s code,
its Continue page loaded and its form posted with the page's CSRF token.

The schema comes from the shipped migrations. On SQLite they run once per test session into
a template file that each test copies, so a test pays a file copy, not a migration.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url

from gateway.cli import migrate
from gateway.cli.links import issue_operator_link
from gateway.cli.replay import Replayed, header_envelope, outcomes
from gateway.cli.runtime import Gateway
from gateway.directory.mailboxes import add_mailbox
from gateway.outbound.senders import MemorySender
from gateway.settings import Settings
from gateway.storage.database import open_database
from gateway.tickets.queries import show_ticket

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True, slots=True)
class Received:
    """What became of one received message.

    `outcome` is delivered, duplicate, ignored (a mail loop), bounced (no mailbox) or
    failed; `ticket` is the whole ticket and `message` this message, both as
    `wicket tickets show --json` prints them (None when no ticket was touched).
    """

    inbound_id: int
    outcome: str
    ticket_ref: int | None
    classification: str | None
    rule: str | None
    error: str | None
    ticket: dict[str, Any] | None
    message: dict[str, Any] | None


class Harness:
    """A gateway for one test: `await start()`, use, `await stop()`."""

    def __init__(self, settings: Settings, mailbox: str, mailbox_name: str = "Support") -> None:
        self.settings = settings
        self.mailbox = mailbox
        self.mailbox_name = mailbox_name
        self.gateway = Gateway(settings)
        self._delivered = 0

    @property
    def db(self):  # noqa: ANN201 - the gateway's Database
        return self.gateway.db

    async def start(self, *, migrated: bool = False) -> None:
        """Migrate (unless the database is a copy of a migrated template), add the mailbox, start."""
        if not migrated:
            await migrate.upgrade(self.db)
        await self.db.write(lambda session: add_mailbox(session, self.mailbox, self.mailbox_name))
        await self.gateway.start()

    async def stop(self) -> None:
        await self.gateway.stop()
        await self.db.dispose()

    async def receive(
        self,
        source: str | Path | bytes | EmailMessage,
        *,
        to: str | tuple[str, ...] | None = None,
        mail_from: str | None = None,
        fixtures: Path | None = None,
    ) -> Received:
        """Store `source` as the SMTP listener would, process it, and say what became of it."""
        raw = _raw(source, fixtures)
        envelope_sender = header_envelope(raw)[0] if mail_from is None else mail_from
        recipients = (to,) if isinstance(to, str) else (to or (self.mailbox,))
        inbound_id = await self.gateway.receive(raw, mail_from=envelope_sender, rcpt_tos=recipients, source="test")
        await self.gateway.processor.drain()
        (replayed,) = await outcomes(self.gateway, [("", inbound_id)])
        return await self._received(inbound_id, replayed)

    async def _received(self, inbound_id: int, replayed: Replayed) -> Received:
        ticket = message = None
        if replayed.ticket is not None:
            ticket = await show_ticket(self.db, replayed.ticket, self.mailbox)
            ours = [m for m in ticket["messages"] if m["message_id"] == replayed.message_id]
            message = ours[-1] if ours else None
        return Received(
            inbound_id, replayed.outcome, replayed.ticket, replayed.classification, replayed.rule,
            replayed.error, ticket, message,
        )

    async def sent_mail(self) -> list[EmailMessage]:
        """Every message sent so far, in order, after delivering what the outbox holds."""
        await self.gateway.outbox.drain()
        sender = self.gateway.sender
        assert isinstance(sender, MemorySender), "the harness sends to memory (outbound_sender='memory')"
        return [_parsed(mail.raw) for mail in sender.sent]

    async def portal_client(self, email: str, *, ticket: int | None = None) -> TestClient:
        """An HTTP client of the portal, signed in as the contact with `email`."""
        from portal.app import create_app  # only the portal client needs the portal

        app = create_app(self.settings, self.db, processor=self.gateway.processor)
        client: TestClient = TestClient(TestServer(app))
        await client.start_server()
        url = await issue_operator_link(self.db, self.settings, email, ticket)
        path = url[len(self.settings.public_url.rstrip("/")):]
        page = await client.get(path)
        token = _CSRF_FIELD.search(await page.text())
        if token is None:
            await client.close()
            raise RuntimeError(f"the sign-in page for {email} had no form ({page.status})")
        signed_in = await client.post(path, data={"csrf_token": token.group(1)}, allow_redirects=False)
        if signed_in.status not in (302, 303):
            await client.close()
            raise RuntimeError(f"signing in {email} failed ({signed_in.status})")
        return client


def test_settings(directory: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    """Settings for a harness in `directory`: its own SQLite file unless `database_url` is given."""
    values: dict[str, Any] = {
        "database_url": database_url or f"sqlite+aiosqlite:///{directory / 'wicket.db'}",
        "var_dir": directory / "var",
        "secret_keys": ["wicket-pytest-plugin-key"],
        "public_url": "http://portal.wicket.test",
        "smtp_hostname": "mx.wicket.test",
        "outbound_sender": "memory",
        "process_retry_base_seconds": 0,
    }
    return Settings(**{**values, **overrides})


async def migrated_template(directory: Path) -> Path:
    """A migrated, empty SQLite database file in `directory`, for tests to copy."""
    template = directory / "template.db"
    if not template.exists():
        db = open_database(test_settings(directory, f"sqlite+aiosqlite:///{template}"))
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()
    return template


def copy_template(template: Path, settings: Settings) -> None:
    """Put a copy of the migrated template where `settings` keeps its SQLite file."""
    target = Path(make_url(settings.database_url).database or "")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)


def _raw(source: str | Path | bytes | EmailMessage, fixtures: Path | None) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, EmailMessage):
        return source.as_bytes(policy=policy.SMTP)
    path = Path(source)
    if not path.is_file() and fixtures is not None and (fixtures / path).is_file():
        path = fixtures / path
    if not path.is_file():
        raise FileNotFoundError(f"no mail file {source!s}" + (f" (nor in {fixtures})" if fixtures else ""))
    return path.read_bytes()


def _parsed(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed
