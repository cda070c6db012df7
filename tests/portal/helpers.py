"""Portal test helpers in domain words: `add_contact`, `add_ticket`, `issue` (a magic link),
`sent_signin_emails` (the sign-in emails as delivered, parsed), `form_token` / `post_form` (submit a
form as a browser does, with its CSRF token), `sign_in_with_link`, `audit_events`."""

from __future__ import annotations

import mailbox as maildirs
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message as EmailMessage
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.tokens import IssuedLink, LinkPurpose, issue_link
from gateway.directory.contacts import contact_for
from gateway.models import AuditEvent, Contact, Mailbox, OutboxMessage, PortalSession, Ticket
from gateway.outbound.outbox import OutboxWorker
from gateway.outbound.senders import MaildirSender
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from gateway.tickets.service import add_participant, open_ticket

ALICE = "alice@example.test"
BOB = "bob@example.test"
TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK_IN_MAIL = re.compile(r"https?://[^\s\"<>]+/l/([A-Za-z0-9_-]{43})")
CODE_IN_MAIL = re.compile(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b")

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


async def add_contact(db: Database, address: str = ALICE, name: str = "Alice Doe") -> Contact:
    return await db.write(lambda session: contact_for(session, address, name))


async def add_ticket(db: Database, mailbox: Mailbox, contact: Contact, subject: str = "Printer jams") -> Ticket:
    def change(session: Session):
        box = session.get_one(Mailbox, mailbox.id)
        ticket = open_ticket(session, box, contact, subject)
        add_participant(session, ticket, contact)
        return ticket

    return await db.write(change)


async def issue(
    db: Database,
    settings: Settings,
    contact: Contact,
    *,
    ticket: Ticket | None = None,
    purpose: LinkPurpose = LinkPurpose.REPLY,
    now: datetime | None = None,
    ttl: timedelta | None = None,
    return_path: str | None = None,
) -> IssuedLink:
    def change(session: Session):
        return issue_link(
            session, settings, contact, ticket=ticket, purpose=purpose, now=now, ttl=ttl, return_path=return_path
        )

    return await db.write(change)


def link_path(token: str) -> str:
    return f"/l/{token}"


async def form_token(client: Client, path: str) -> str:
    """The CSRF token in the form on `path` (the GET also sets the CSRF cookie)."""
    response = await client.get(path, allow_redirects=False)
    found = TOKEN_FIELD.search(await response.text())
    assert found, f"no form with a CSRF token on {path} ({response.status})"
    return found.group(1)


async def post_form(client: Client, path: str, data: dict[str, str], *, page: str | None = None) -> Any:
    """Submit a form the way a browser does: load `page` (default `path`), post with its token."""
    token = await form_token(client, page or path)
    return await client.post(path, data={**data, "csrf_token": token}, allow_redirects=False)


async def sign_in_with_link(client: Client, issued: IssuedLink) -> Any:
    """Open the link and press Continue, as a person does."""
    return await post_form(client, link_path(issued.token), {})


async def post_to_link(client: Client, token: str) -> Any:
    """POST a token directly (its own page may have no form), with a valid CSRF token."""
    return await post_form(client, link_path(token), {}, page="/login")


@dataclass(frozen=True)
class SentEmail:
    row: OutboxMessage
    message: EmailMessage
    text: str
    html: str
    token: str
    code: str


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = html = ""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
        elif part.get_content_type() == "text/html":
            html = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    return text, html


async def sent_signin_emails(db: Database, settings: Settings) -> list[SentEmail]:
    """Every sign-in email sent so far, oldest first: queued mail is delivered first, into the
    dev maildir as `make run` does, and read back from there (only the email as sent holds
    its link and code)."""
    await OutboxWorker(db, settings, MaildirSender(settings.maildir_dir)).drain()

    def look(session: Session):
        query = select(OutboxMessage).where(OutboxMessage.kind == "signin").order_by(OutboxMessage.id)
        rows = session.scalars(query).all()
        return rows

    rows = await db.read(orm(look))
    delivered: dict[str, EmailMessage] = {}
    if settings.maildir_dir.exists():
        for message in maildirs.Maildir(settings.maildir_dir, create=False):
            delivered[str(message["Message-ID"]).strip().strip("<>")] = message
    found = []
    for row in rows:
        message = delivered[row.rfc_message_id]
        text, html = _parts(message)
        token, code = LINK_IN_MAIL.search(text), CODE_IN_MAIL.search(text)
        assert token and code, "a sign-in email carries a link and a code"
        found.append(SentEmail(row, message, text, html, token.group(1), code.group(1)))
    return found


async def audit_events(db: Database, event: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if event is not None:
        query = query.where(AuditEvent.event == event)
    return await db.read(orm(lambda session: list(session.scalars(query).all())))


async def live_sessions(db: Database, contact: Contact | None = None) -> list[PortalSession]:
    query = select(PortalSession).where(PortalSession.revoked_at.is_(None))
    if contact is not None:
        query = query.where(PortalSession.contact_id == contact.id)
    return await db.read(orm(lambda session: list(session.scalars(query).all())))


def with_settings(settings: Settings, **changes: Any) -> Settings:
    """A copy of the test settings with some fields changed (validated like real settings)."""
    return Settings(**{**settings.model_dump(), **changes})
