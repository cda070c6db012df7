"""The agent JSON API under /api/v1: its tickets (list, read, reply, note, status, files) and its URL table.

Every request carries an agent API key and sees only the tickets of that agent's
mailboxes (`api_http`, which also makes errors JSON: `{"error": …, "status": …}`).
Replies, notes and status changes go through `gateway.tickets.replies`, the same service
emailed replies and `wicket reply` use, so an API reply is stored, mailed with a fresh
link and threaded exactly like one sent by email. Requests are validated with the models
in `api_schema`, which also make the OpenAPI document (`api_document`) served at
/api/v1/openapi.json. Each message lists its files, which agents of the mailbox download
here; a reply may carry files as a multipart form (`api_files`). Contacts, the agent's
notification settings and routes are areas of their own (`api_contacts`,
`api_notifications`, `api_routes`). A ticket whose mail named no usable sender has no
requester (null) until an agent names one (`POST …/requester`, gateway/tickets/requester.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from aiohttp import web
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, defer

from gateway.models import Agent, Contact, Mailbox, Message, OutboxMessage, Ticket
from gateway.storage.database import orm
from gateway.tickets.access import file_for_agent
from gateway.tickets.commands import Commands
from gateway.tickets.replies import AgentReply, ReplyError, apply_reply, change_status
from gateway.tickets.requester import RequesterError, set_requester
from gateway.tickets.satisfaction import ratings_of
from gateway.tickets.replies import read_reply as reply_from_text  # api_files.read_reply reads the request
from portal import keys
from portal.views.api_contacts import list_contacts
from portal.views.api_document import openapi_document
from portal.views.api_files import FormRefused, attachments_by_message, read_reply
from portal.views.api_http import (
    Access,
    ApiFailure,
    api_view,
    authenticate,
    clean,
    next_offset,
    ok,
    read_body,
    read_query,
)
from portal.views.api_notifications import change_notifications, read_notifications
from portal.views.api_schema import (
    AttachmentOut,
    Delivery,
    NoteRequest,
    Person,
    Rating,
    RequesterRequest,
    SenderVerdicts,
    StatusRequest,
    TicketDetail,
    TicketMessage,
    TicketPage,
    TicketQuery,
    TicketSummary,
)
from portal.views.attachments import file_download


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


@api_view
async def list_tickets(request: web.Request) -> web.StreamResponse:
    access = await authenticate(request)
    query = read_query(TicketQuery, request)
    statement = _TICKETS.where(Ticket.mailbox_id.in_(access.mailbox_ids))
    if query.status is not None:
        statement = statement.where(Ticket.status == query.status)
    if words := clean(query.q):
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
    return ok(TicketPage(tickets=tickets, next_offset=next_offset(query.offset, query.limit, rows)))


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
    reply = reply_from_text(clean(body.text))
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
    return await _act(request, access, AgentReply(clean(body.text), Commands(internal=True)))


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
            set_requester(session, events, ticket, body.email, agent=agent, name=clean(body.name))
        except RequesterError as error:
            raise ApiFailure(409, str(error)) from None

    return await _change(request, access, name)


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
