"""Helpers for the portal's ticket, help-center and account stories, in domain words.

`signed_in(client, db, settings, contact)` signs a browser in through a real magic link;
`agent_replies` and `internal_note` add the team's side of a conversation through the
same service functions agents use; `messages_of`, `tickets_of` and `outbox_kinds` read
back what happened; `post_multipart` submits a form with files as a browser does;
`elements` lists the tags and attributes a browser would build from some HTML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gateway.directory.agents import add_agent
from gateway.models import Agent, Contact, Message, OutboxMessage, Ticket
from gateway.outbound.notify import ticket_events
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from gateway.tickets.notes import add_note
from gateway.tickets.replies import AgentReply, apply_reply
from tests.portal.helpers import Client, form_token, issue, sign_in_with_link

TOM = "tom@example.test"
TICKET_LINK = re.compile(r'href="/tickets/([a-z2-7]{16})"')


async def signed_in(client: Client, db: Database, settings: Settings, contact: Contact) -> Client:
    response = await sign_in_with_link(client, await issue(db, settings, contact))
    assert response.status == 303, response.status
    return client


async def tom(db: Database) -> Agent:
    """Tom, an agent of every mailbox (so he is notified of customer mail)."""
    return await db.write(lambda session: add_agent(session, TOM, "Tom Agent"))


async def agent_replies(db: Database, settings: Settings, ticket: Ticket, agent: Agent, text: str) -> Message:
    def change(session: Session):
        current = session.get_one(Ticket, ticket.id)
        return apply_reply(session, ticket_events(settings), current, agent, AgentReply(text), thread_rule="api"
        )

    return await db.write(change)


async def internal_note(db: Database, ticket: Ticket, text: str) -> Message:
    return await db.write(lambda session: add_note(session, session.get_one(Ticket, ticket.id), text))


async def messages_of(db: Database, ticket_id: int) -> list[Message]:
    def look(session: Session):
        rows = session.scalars(
            select(Message)
            .where(Message.ticket_id == ticket_id)
            .options(selectinload(Message.attachments))
            .order_by(Message.id)
        )
        return list(rows.all())

    return await db.read(orm(look))


async def reload(db: Database, ticket: Ticket) -> Ticket:
    return await db.read(orm(lambda session: session.get_one(Ticket, ticket.id)))


async def tickets_of(db: Database, contact: Contact) -> list[Ticket]:
    def look(session: Session):
        rows = session.scalars(select(Ticket).where(Ticket.requester_id == contact.id).order_by(Ticket.id))
        return list(rows.all())

    return await db.read(orm(look))


async def outbox_kinds(db: Database) -> list[tuple[str, list[str]]]:
    def look(session: Session):
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [(row.kind, list(row.rcpt_tos)) for row in rows.all()]

    return await db.read(orm(look))


async def post_multipart(
    client: Client,
    path: str,
    fields: dict[str, str],
    files: Sequence[tuple[str, bytes]] = (),
    *,
    page: str | None = None,
) -> Any:
    """Submit a multipart form with files, with the CSRF token from `page` (default `path`)."""
    form = aiohttp.FormData(quote_fields=False)  # as browsers send names: not percent-encoded
    form.add_field("csrf_token", await form_token(client, page or path))
    for name, value in fields.items():
        form.add_field(name, value)
    for filename, data in files:
        form.add_field("attachments", data, filename=filename, content_type="application/octet-stream")
    return await client.post(path, data=form, allow_redirects=False)


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {name: value or "" for name, value in attrs}))


def elements(html: str) -> list[tuple[str, dict[str, str]]]:
    """Every start tag in `html` with its attributes (entity references decoded)."""
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.found
