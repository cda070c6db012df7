"""The world the security sweep attacks, the browsers it attacks with, and its oracles.

`build_world` sets up, through the production paths, an owner (Alice, whose ticket with
an attachment arrived by email), a stranger (Mallory, with a ticket of her own), an agent
of Alice's mailbox (Tom) and an agent of another mailbox only (Sam), each agent with an
API key. `Browser` is a client on the real portal app that records every response it
gets, so later assertions can look at everything seen (cookies, headers, bodies).
`Browser.agree_to_switch` presses Continue on the "switch account?" question, as a person
who means to switch does. `routes_of` lists the app's URL table; `fill` puts ids into a route pattern; `lands_on`
says which host a `Location` header sends a browser to, read the way browsers read it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urljoin, urlsplit

from aiohttp import web
from multidict import CIMultiDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.downloads import download_token
from gateway.auth.tokens import IssuedLink
from gateway.cli.runtime import Gateway
from gateway.directory.agents import add_agent, create_api_key
from gateway.directory.mailboxes import add_mailbox
from gateway.inbound.route_admin import RouteSpec, add_route
from gateway.models import Attachment, Contact, InboundEmail, Mailbox, Message, RouteMatch, Ticket, utcnow
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.portal.helpers import TOKEN_FIELD, Client, add_contact, add_ticket, issue, link_path
from tests.support import SUPPORT

PORTAL_HOST = "portal.example.test"
SSO_SECRET = "a-shared-secret-that-is-long-enough-for-hs256"
OWNER, STRANGER = "alice@example.test", "mallory@attacker.test"
OWNER_AGENT, OTHER_AGENT = "tom@example.test", "sam@example.test"
OTHER_MAILBOX = "sales@example.test"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
_SWITCH_FORM = re.compile(
    r'<form method="post" action="([^"]+)">((?:(?!</form>).)*name="switch" value="yes".*?)</form>', re.S
)
_HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')


@dataclass(frozen=True)
class Seen:
    """One response a browser got."""

    method: str
    path: str
    status: int
    headers: CIMultiDict[str]
    body: str


@dataclass
class Browser:
    """A browser (its own cookie jar) on the real portal app, recording what it sees."""

    client: Client
    seen: list[Seen]

    async def request(self, method: str, path: str, **options: Any) -> Seen:
        options.setdefault("allow_redirects", False)
        async with self.client.request(method, path, **options) as response:
            body = (await response.read()).decode("utf-8", "replace")
            found = Seen(method, path, response.status, CIMultiDict(response.headers), body)
        self.seen.append(found)
        return found

    async def get(self, path: str, **options: Any) -> Seen:
        return await self.request("GET", path, **options)

    async def csrf_token(self, page: str = "/login") -> str:
        found = TOKEN_FIELD.search((await self.get(page)).body)
        assert found, f"no CSRF token on {page}"
        return found.group(1)

    async def post_form(self, path: str, data: dict[str, str], *, page: str = "/code") -> Seen:
        token = await self.csrf_token(page)
        return await self.request("POST", path, data={**data, "csrf_token": token})

    async def sign_in(self, issued: IssuedLink) -> Seen:
        return await self.exchange(issued.token)

    async def exchange(self, token: str) -> Seen:
        """Open a link and press Continue, as a person does (and agree to switch accounts, when asked)."""
        answer = await self.agree_to_switch(await self.post_form(link_path(token), {}, page=link_path(token)))
        assert answer.status == 303, answer
        return answer

    async def agree_to_switch(self, answer: Seen) -> Seen:
        """When `answer` asks whether to switch accounts, press its Continue button; else `answer`."""
        form = _SWITCH_FORM.search(answer.body) if answer.status == 200 else None
        if form is None:
            return answer
        fields = {name: html.unescape(value) for name, value in _HIDDEN.findall(form.group(2))}
        return await self.request("POST", html.unescape(form.group(1)), data=fields)

    def plant_cookie(self, name: str, value: str) -> None:
        """A cookie for this host only, as if the portal had set it earlier."""
        self.client.session.cookie_jar.update_cookies({name: value}, response_url=self.client.make_url("/"))

    def cookie(self, name: str) -> str | None:
        for morsel in self.client.session.cookie_jar:
            if morsel.key == name:
                return morsel.value
        return None


NewBrowser = Callable[..., Awaitable[Browser]]


@dataclass
class World:
    settings: Settings
    db: Database
    alice: Contact
    mallory: Contact
    ticket: Ticket
    attachment_id: str
    message_id: str
    mallory_ticket: Ticket
    tom_key: str
    sam_key: str
    tom_id: int
    sam_id: int
    route_id: str  # a route making tickets in Tom's mailbox
    secrets: set[str] = field(default_factory=set)

    def owner_ids(self, agent: str = "tom") -> dict[str, str]:
        """Values for the id parameters of routes: Alice's objects, and a download link of
        her file signed for `agent` (Tom works her mailbox, Sam does not)."""
        agent_id = self.tom_id if agent == "tom" else self.sam_id
        expires = utcnow() + timedelta(hours=1)
        download = download_token(self.settings.keys[0], self.attachment_id, agent_id, expires)
        self.secrets.add(download)
        return {"public_id": self.ticket.public_id, "ticket_id": self.ticket.public_id,
                "attachment_id": self.attachment_id, "message_id": self.message_id, "download": download,
                "route_id": self.route_id}

    async def link(self, contact: Contact, **options: Any) -> IssuedLink:
        issued = await issue(self.db, self.settings, contact, **options)
        self.secrets |= {issued.token, issued.code, issued.code.replace("-", "")}
        return issued

    async def ticket_state(self) -> tuple[str, int]:
        def look(session: Session):
            ticket = session.get_one(Ticket, self.ticket.id)
            messages = session.scalars(select(Message.id).where(Message.ticket_id == ticket.id)).all()
            return ticket, messages

        ticket, messages = await self.db.read(orm(look))
        return ticket.status, len(messages)


def mail_with_attachment() -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Alice Doe <{OWNER}>"
    mail["To"] = SUPPORT
    mail["Subject"] = "The printer jams"
    mail["Message-ID"] = "<printer-1@example.test>"
    mail.set_content("It jams on page two. Log attached.")
    mail.add_attachment(b"jam at page 2\n" * 50, maintype="application", subtype="octet-stream", filename="jam.log")
    return mail.as_bytes()


async def build_world(gateway: Gateway, db: Database, settings: Settings, support: Mailbox) -> World:
    inbound_id = await gateway.receive(mail_with_attachment(), mail_from=OWNER, rcpt_tos=(SUPPORT,))
    await gateway.processor.drain()

    def change(session: Session):
        inbound = session.get_one(InboundEmail, inbound_id)
        assert inbound.ticket_id is not None, (inbound.status, inbound.last_error)
        ticket = session.get_one(Ticket, inbound.ticket_id)
        alice = session.get_one(Contact, ticket.requester_id)
        attachment = session.scalar(
            select(Attachment.public_id).join(Message).where(Message.ticket_id == ticket.id)
        )
        message = session.scalar(select(Message.public_id).where(Message.ticket_id == ticket.id))
        add_mailbox(session, OTHER_MAILBOX, "Sales")
        tom = add_agent(session, OWNER_AGENT, "Tom Agent", mailboxes=[SUPPORT])
        sam = add_agent(session, OTHER_AGENT, "Sam Agent", mailboxes=[OTHER_MAILBOX])
        tom_key = create_api_key(session, OWNER_AGENT)
        sam_key = create_api_key(session, OTHER_AGENT)
        return ticket, alice, attachment, message, tom_key, sam_key, tom.id, sam.id

    ticket, alice, attachment, message, tom_key, sam_key, tom_id, sam_id = await db.write(change)
    assert attachment is not None and message is not None
    mallory = await add_contact(db, STRANGER, "Mallory")
    mallory_ticket = await add_ticket(db, support, mallory, "Mallory's own question")
    spec = RouteSpec(RouteMatch.EXACT, "help@example.test", mailbox=SUPPORT)
    route_id = await db.write(lambda session: add_route(session, spec).public_id)
    world = World(settings, db, alice, mallory, ticket, attachment, message, mallory_ticket, tom_key, sam_key,
                  tom_id, sam_id, route_id)
    world.secrets |= {tom_key, sam_key}
    return world


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    name: str | None
    handler: Any

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.pattern)

    @property
    def is_api(self) -> bool:
        return self.pattern.startswith("/api/")


def routes_of(app: web.Application) -> Iterator[Route]:
    for route in app.router.routes():
        resource = route.resource
        if resource is None or isinstance(resource, web.StaticResource):
            continue
        yield Route(route.method, resource.canonical, resource.name, route.handler)


def fill(pattern: str, values: dict[str, str]) -> str:
    return _PARAM.sub(lambda match: values[match.group(1)], pattern)


def lands_on(location: str) -> str:
    """The host a browser on the portal goes to for this Location (WHATWG-style reading:
    tabs and newlines dropped, outer spaces and controls stripped, backslashes as slashes)."""
    cleaned = re.sub(r"[\t\n\r]", "", location).strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f"
                                                      "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d"
                                                      "\x1e\x1f ")
    cleaned = cleaned.replace("\\", "/")
    if urlsplit(cleaned).scheme:
        return urlsplit(cleaned).netloc or "(another scheme)"
    return urlsplit(urljoin(f"http://{PORTAL_HOST}/some/page", cleaned)).netloc
