"""The agent JSON API under /api/v1: tickets, messages, replies, notes, status, contacts, settings.

Every request carries an agent API key (`Authorization: Bearer wk_…`) and sees only the
tickets of that agent's mailboxes. Replies, notes and status changes go through
`gateway.tickets.replies`, the same service emailed replies and `wicket reply` use, so an API
reply is stored, mailed with a fresh link and threaded exactly like one sent by email.
Requests are validated with the models in `api_schema`, which also make the OpenAPI
document served at /api/v1/openapi.json. Errors are JSON: `{"error": …, "status": …}`.
Each message lists its files, which agents of the mailbox download here; a reply may carry
files as a multipart form (`api_files`). A ticket whose mail named no usable sender has no
requester (null) until an agent names one (`POST …/requester`, gateway/tickets/requester.py).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, defer

from gateway.directory.agents import agent_for_api_key, mailbox_ids_of
from gateway.directory.preferences import MailboxPreferences, NotTheirMailbox, preferences_of, set_preferences
from gateway.models import Agent, Contact, Mailbox, Message, NotifyPolicy, OutboxMessage, Ticket, TicketParticipant
from gateway.storage.database import orm
from gateway.tickets.access import file_for_agent
from gateway.tickets.commands import Commands
from gateway.tickets.replies import AgentReply, ReplyError, apply_reply, change_status
from gateway.tickets.requester import RequesterError, set_requester
from gateway.tickets.satisfaction import ratings_of
from gateway.tickets.replies import read_reply as reply_from_text  # api_files.read_reply reads the request
from portal import keys
from portal.csrf import csrf_exempt
from portal.views.api_files import FormRefused, attachments_by_message, read_reply, validation_errors
from portal.views.api_schema import (
    AttachmentOut,
    Rating,
    ContactOut,
    ContactPage,
    ContactQuery,
    Delivery,
    MailboxNotifications,
    NoteRequest,
    NotificationRequest,
    NotificationSettings,
    Person,
    RequesterRequest,
    SenderVerdicts,
    StatusRequest,
    TicketDetail,
    TicketMessage,
    TicketPage,
    TicketQuery,
    TicketSummary,
    openapi_document,
)
from portal.views.attachments import file_download

M = TypeVar("M", bound=BaseModel)
View = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiFailure(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def response(self) -> web.Response:
        headers = {"WWW-Authenticate": 'Bearer realm="wicket"'} if self.status == 401 else None
        return web.json_response({"error": str(self), "status": self.status}, status=self.status, headers=headers)


def api_view(handler: View) -> View:
    """Bearer-key authenticated (so no CSRF token), with ApiFailure turned into JSON."""

    @functools.wraps(handler)
    async def view(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiFailure as failure:
            return failure.response()

    return csrf_exempt(view)


@dataclass(frozen=True, slots=True)
class Access:
    agent_id: int
    mailbox_ids: list[int]


async def authenticate(request: web.Request) -> Access:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():

        def find(session: Session) -> Access | None:
            agent = agent_for_api_key(session, key.strip())
            return None if agent is None else Access(agent.id, mailbox_ids_of(session, agent))

        access = await request.app[keys.DB].write(find)
        if access is not None:
            return access
    raise ApiFailure(401, "send a valid agent API key as 'Authorization: Bearer <key>'")


def read_query(model: type[M], request: web.Request) -> M:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as error:
        raise ApiFailure(400, validation_errors(error)) from None


async def read_body(model: type[M], request: web.Request) -> M:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as error:
        raise ApiFailure(400, validation_errors(error)) from None


def ok(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(text=model.model_dump_json(), status=status)


def _summary(ticket: Ticket, mailbox: str, requester: Contact | None, owner: str | None) -> TicketSummary:
    return TicketSummary(
        id=ticket.public_id, ref=ticket.ref, mailbox=mailbox, subject=ticket.subject, status=ticket.status,
        flag=ticket.flag, requester=Person(email=requester.email, name=requester.name) if requester else None,
        unclear_from=ticket.unclear_from,
        owner=owner, priority=ticket.priority, tags=list(ticket.tags or []),
        created_at=ticket.created_at, last_activity_at=ticket.last_activity_at,
    )


def _message(m: Message, files: dict[int, list[AttachmentOut]]) -> TicketMessage:
    return TicketMessage(
        id=m.public_id, author_type=m.author_type, author=Person(email=m.from_email, name=m.from_name),
        internal=m.internal, classification=m.classification, thread_rule=m.thread_rule, subject=m.subject,
        text=m.reply_text or m.body_text, body_text=m.body_text, created_at=m.created_at,
        attachments=files.get(m.id, []),
        sender_verdicts=SenderVerdicts.model_validate(m.sender_verdicts) if m.sender_verdicts else None,
    )


_TICKETS = (
    select(Ticket, Mailbox.address, Contact, Agent.email)
    .join(Mailbox, Mailbox.id == Ticket.mailbox_id)
    .outerjoin(Contact, Contact.id == Ticket.requester_id)  # none while the sender is unclear
    .outerjoin(Agent, Agent.id == Ticket.owner_agent_id)
)


def _ticket(session: Session, request: web.Request, access: Access) -> tuple[Ticket, str, Contact | None, str | None]:
    wanted = _TICKETS.where(
        Ticket.public_id == request.match_info["ticket_id"], Ticket.mailbox_id.in_(access.mailbox_ids)
    )
    row = session.execute(wanted).first()
    if row is None:
        raise ApiFailure(404, "no such ticket in your mailboxes")
    return row[0], row[1], row[2], row[3]


def _next_offset(offset: int, limit: int, rows: Sequence[object]) -> int | None:
    """Where the next page starts; the query fetched one row more than a page to know."""
    return offset + limit if len(rows) > limit else None


def _clean(text: str) -> str:
    """Text without NUL characters (no database column takes them) and outer whitespace."""
    return text.replace("\x00", "").strip()


@api_view
async def list_tickets(request: web.Request) -> web.StreamResponse:
    access = await authenticate(request)
    query = read_query(TicketQuery, request)
    statement = _TICKETS.where(Ticket.mailbox_id.in_(access.mailbox_ids))
    if query.status is not None:
        statement = statement.where(Ticket.status == query.status)
    if words := _clean(query.q):
        matches = [Ticket.subject.icontains(words, autoescape=True), Contact.email.icontains(words, autoescape=True),
                   Contact.name.icontains(words, autoescape=True)]
        number = words.removeprefix("#")
        if number.isascii() and number.isdigit() and len(number) <= 9:
            matches.append(Ticket.ref == int(number))
        statement = statement.where(or_(*matches))
    statement = statement.order_by(Ticket.last_activity_at.desc(), Ticket.id.desc())
    page = statement.offset(query.offset).limit(query.limit + 1)
    rows = await request.app[keys.DB].read(orm(lambda session: session.execute(page).all()))
    tickets = [_summary(*row) for row in rows[: query.limit]]
    return ok(TicketPage(tickets=tickets, next_offset=_next_offset(query.offset, query.limit, rows)))


@api_view
async def read_ticket(request: web.Request) -> web.StreamResponse:
    access = await authenticate(request)

    def read(session: Session) -> TicketDetail:
        ticket, mailbox, requester, owner = _ticket(session, request, access)
        thread = select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
        messages = list(session.scalars(thread.options(defer(Message.body_html))))  # the API answers with the text
        sent = session.scalars(
            select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id).order_by(OutboxMessage.id)
        )
        deliveries = [
            Delivery(id=o.public_id, kind=o.kind, to=o.rcpt_tos, status=o.status, attempts=o.attempts,
                     last_error=o.last_error, sent_at=o.sent_at)
            for o in sent
        ]
        files = attachments_by_message(session, ticket)
        return TicketDetail(**_summary(ticket, mailbox, requester, owner).model_dump(),
                            messages=[_message(m, files) for m in messages], deliveries=deliveries,
                            ratings=_ratings(session, ticket.id))

    return ok(await request.app[keys.DB].read(orm(read), large=True))  # mail bodies: megabytes at times


def _ratings(session: Session, ticket_id: int) -> list[Rating]:
    return [
        Rating(rating="good" if r.good else "bad", comment=r.comment, by=session.get_one(Contact, r.contact_id).email,
               resolved_at=r.resolved_at, rated_at=r.created_at)
        for r in ratings_of(session, ticket_id)
    ]  # fmt: skip


async def _act(request: web.Request, access: Access, reply: AgentReply) -> web.StreamResponse:
    events = request.app[keys.PROCESSOR].events

    def act(session: Session) -> TicketMessage:
        ticket, _, _, _ = _ticket(session, request, access)
        agent = session.get_one(Agent, access.agent_id)
        try:
            message = apply_reply(session, events, ticket, agent, reply, thread_rule="api")
        except ReplyError as error:
            raise ApiFailure(400, str(error)) from None
        return _message(message, attachments_by_message(session, ticket))

    return ok(await request.app[keys.DB].write(act), status=201)


@api_view
async def post_reply(request: web.Request) -> web.StreamResponse:
    access = await authenticate(request)
    try:
        body, files = await read_reply(request, request.app[keys.SETTINGS])
    except FormRefused as error:
        raise ApiFailure(400, str(error)) from None
    reply = reply_from_text(_clean(body.text))
    if body.status is not None:
        reply = replace(reply, commands=replace(reply.commands, status=body.status))
    return await _act(request, access, replace(reply, files=files))


@api_view
async def download_file(request: web.Request) -> web.StreamResponse:
    """The bytes of a file on a ticket of the agent's mailboxes, always as a download."""
    access = await authenticate(request)
    ticket_id, attachment_id = request.match_info["ticket_id"], request.match_info["attachment_id"]
    file = await request.app[keys.DB].read(
        lambda rows: file_for_agent(rows, access.agent_id, attachment_id, ticket_id), large=True
    )
    if file is None:
        raise ApiFailure(404, "no such file on a ticket in your mailboxes")
    return file_download(file)


@api_view
async def post_note(request: web.Request) -> web.StreamResponse:
    access = await authenticate(request)
    body = await read_body(NoteRequest, request)
    return await _act(request, access, AgentReply(_clean(body.text), Commands(internal=True)))


async def _change(
    request: web.Request, access: Access, change: Callable[[Session, Ticket, Agent], object]
) -> web.StreamResponse:
    """`change(session, ticket, agent)` in one unit of work; answers with the ticket after it."""
    def run(session: Session) -> TicketSummary:
        ticket, mailbox, _, owner = _ticket(session, request, access)
        change(session, ticket, session.get_one(Agent, access.agent_id))
        requester = session.get_one(Contact, ticket.requester_id) if ticket.requester_id is not None else None
        return _summary(ticket, mailbox, requester, owner)

    return ok(await request.app[keys.DB].write(run))


@api_view
async def post_status(request: web.Request) -> web.StreamResponse:
    access = await authenticate(request)
    body = await read_body(StatusRequest, request)
    events = request.app[keys.PROCESSOR].events
    return await _change(request, access, lambda session, ticket, agent: change_status(
        session, events, ticket, agent, body.status, thread_rule="api"
    ))  # fmt: skip


@api_view
async def post_requester(request: web.Request) -> web.StreamResponse:
    """Name the requester of a ticket whose mail named no usable sender (gateway/tickets/requester.py)."""
    access = await authenticate(request)
    body = await read_body(RequesterRequest, request)
    events = request.app[keys.PROCESSOR].events

    def name(session: Session, ticket: Ticket, agent: Agent) -> None:
        try:
            set_requester(session, events, ticket, body.email, agent=agent, name=_clean(body.name))
        except RequesterError as error:
            raise ApiFailure(409, str(error)) from None

    return await _change(request, access, name)


def _notifications(found: list[MailboxPreferences]) -> NotificationSettings:
    return NotificationSettings(mailboxes=[
        MailboxNotifications(mailbox=p.mailbox, policy=NotifyPolicy(p.policy), daily_digest=p.daily_digest,
                             digest_hour=p.digest_hour)
        for p in found
    ])


@api_view
async def read_notifications(request: web.Request) -> web.StreamResponse:
    access = await authenticate(request)
    found = await request.app[keys.DB].read(lambda connection: preferences_of(connection, access.agent_id))
    return ok(_notifications(found))


@api_view
async def change_notifications(request: web.Request) -> web.StreamResponse:
    access = await authenticate(request)
    body = await read_body(NotificationRequest, request)

    def change(session: Session) -> list[MailboxPreferences]:
        agent = session.get_one(Agent, access.agent_id)
        set_preferences(session, agent.email, mailboxes=body.mailboxes, policy=body.policy,
                        daily_digest=body.daily_digest)
        return preferences_of(session.connection(), agent.id)

    try:
        found = await request.app[keys.DB].write(change)
    except NotTheirMailbox as error:
        raise ApiFailure(404, str(error)) from None
    return ok(_notifications(found))


@api_view
async def list_contacts(request: web.Request) -> web.StreamResponse:
    access = await authenticate(request)
    query = read_query(ContactQuery, request)
    on_tickets = (
        select(TicketParticipant.contact_id)
        .join(Ticket, Ticket.id == TicketParticipant.ticket_id)
        .where(Ticket.mailbox_id.in_(access.mailbox_ids))
    )
    statement = select(Contact).where(Contact.id.in_(on_tickets))
    if words := _clean(query.q):
        statement = statement.where(
            or_(Contact.email.icontains(words, autoescape=True), Contact.name.icontains(words, autoescape=True))
        )
    statement = statement.order_by(Contact.id).offset(query.offset).limit(query.limit + 1)
    rows = await request.app[keys.DB].read(orm(lambda session: list(session.scalars(statement))))
    contacts = [ContactOut(id=c.public_id, email=c.email, name=c.name, created_at=c.created_at) for c in rows]
    return ok(ContactPage(contacts=contacts[: query.limit], next_offset=_next_offset(query.offset, query.limit, rows)))


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi_document())


def add_api_routes(router: web.UrlDispatcher) -> None:
    """The agent API."""
    router.add_get("/api/v1/openapi.json", openapi, name="api_openapi")
    router.add_get("/api/v1/tickets", list_tickets, name="api_tickets")
    router.add_get("/api/v1/tickets/{ticket_id}", read_ticket, name="api_ticket")
    router.add_post("/api/v1/tickets/{ticket_id}/replies", post_reply, name="api_replies")
    router.add_get("/api/v1/tickets/{ticket_id}/attachments/{attachment_id}", download_file, name="api_attachment")
    router.add_post("/api/v1/tickets/{ticket_id}/notes", post_note, name="api_notes")
    router.add_post("/api/v1/tickets/{ticket_id}/status", post_status, name="api_status")
    router.add_post("/api/v1/tickets/{ticket_id}/requester", post_requester, name="api_requester")
    router.add_get("/api/v1/contacts", list_contacts, name="api_contacts")
    router.add_get("/api/v1/me/notifications", read_notifications, name="api_notifications")
    router.add_put("/api/v1/me/notifications", change_notifications, name="api_change_notifications")
