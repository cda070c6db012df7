"""The ticket list, the ticket page and closing a ticket.

`/tickets` lists the tickets the contact takes part in (filter open / closed / all, open
first, a page at a time, unread marked) and, in their own section, tickets opened by
colleagues in accounts that share tickets, with articles that may help alongside. The
ticket page shows the customer's thread (never internal notes) with sanitized bodies,
attachments and an inline reply form (the presenting runs in a thread, so a huge message
never holds the event loop); every view is audited (`ticket.viewed`, with
`shared` when seen through an account) and marks the ticket read. A ticket the contact
may not see is a 404, exactly like one that does not exist. `/` sends visitors to /login
and signed-in contacts to /tickets.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from gateway.auth.audit import record
from gateway.models import Attachment, Contact, Mailbox, Message, Ticket, TicketStatus
from gateway.tickets.access import TicketAccess, customer_thread, mark_read, ticket_for_contact
from gateway.tickets.lists import STATUS_FILTERS, own_tickets, shared_tickets
from gateway.tickets.notes import add_note
from gateway.tickets.status import set_status
from portal import keys
from portal.languages import page_translator
from portal.listing import listed
from portal.sessions import audit_context, current_contact, load_session, require_contact, sharing_accounts
from portal.suggestions import suggestions_for
from portal.templating import render
from portal.thread import prepare_stored_html, present_thread
from portal.uploads import accept_attribute

NOTICES = {
    "sent": "Your reply is on the ticket. We will answer by email and here.",
    "queued": "We received your reply. It will appear here in a moment.",
    "created": "Thank you. Your request is now a ticket; we will answer by email and here.",
    "closed": "The ticket is closed. If you need anything else, reply below and it opens again.",
}


def page_number(value: str | None) -> int:
    return int(value) if value and value.isdigit() and 0 < len(value) < 6 else 1


async def home(request: web.Request) -> web.StreamResponse:
    signed_in = await current_contact(request) is not None
    raise web.HTTPFound(request.app.router["tickets" if signed_in else "login"].url_for())


def _listing(
    connection: Connection, request: web.Request, page: int, shared_page: int, status: str
) -> dict[str, Any] | None:
    """What the ticket list shows, read in one go with the session lookup; None for a visitor."""
    contact = load_session(connection, request)
    if contact is None:
        return None
    accounts = sharing_accounts(request)
    return {
        "mine": own_tickets(connection, contact.id, status=status, page=page),
        "accounts": accounts,
        "shared": shared_tickets(connection, contact.id, [a.id for a in accounts], page=shared_page),
        "status": status,
    }


async def ticket_list(request: web.Request) -> web.Response:
    status = request.query.get("status", "all")
    status = status if status in STATUS_FILTERS else "all"
    page, shared_page = page_number(request.query.get("page")), page_number(request.query.get("shared_page"))
    listing = partial(_listing, request=request, page=page, shared_page=shared_page, status=status)
    context = await request.app[keys.DB].read(listing)
    await require_contact(request)  # a visitor goes to /login (the lookup above already ran)
    context["suggestions"] = await suggestions_for(request, context["mine"].open_subjects)
    url = aiohttp_jinja2.get_env(request.app).globals["url"]
    speaking = await page_translator(request)
    context["mine"] = listed(context["mine"], url, speaking)
    context["shared"] = listed(context["shared"], url, speaking, show_requester=True)
    return await render(request, "tickets.html", context)


def _audit_detail(access: TicketAccess) -> dict[str, Any]:
    if access.account is None:
        return {"shared": False}
    return {"shared": True, "account": access.account.public_id}


async def show_ticket(
    request: web.Request, contact: Contact, *, reply_error: str | None = None, reply_text: str = "", status: int = 200
) -> web.Response:
    """The ticket page for `contact` (also re-rendered by a refused reply with its error)."""
    public_id = request.match_info["public_id"]

    def view(session: Session) -> tuple[TicketAccess, list[Message], Mailbox]:
        access = ticket_for_contact(session, contact, public_id)
        if access is None:
            raise web.HTTPNotFound()
        messages = customer_thread(session, access.ticket)
        mailbox = session.get_one(Mailbox, access.ticket.mailbox_id)
        mark_read(session, contact, access.ticket)
        detail = _audit_detail(access)
        record(
            session, "ticket.viewed", contact=contact, ticket=access.ticket, detail=detail, **audit_context(request)
        )
        return access, messages, mailbox

    access, messages, mailbox = await request.app[keys.DB].write(view)

    settings = request.app[keys.SETTINGS]
    await prepare_stored_html(request.app[keys.DB], messages, settings.max_display_html_bytes)

    def attachment_url(attachment: Attachment) -> str:
        url = request.app.router["attachment"].url_for(public_id=public_id, attachment_id=attachment.public_id)
        return str(url)

    def original_url(message: Message) -> str:
        url = request.app.router["message_original"].url_for(public_id=public_id, message_id=message.public_id)
        return str(url)

    thread = await asyncio.to_thread(
        partial(present_thread, team_name=mailbox.display_name, attachment_url=attachment_url,
                original_url=original_url, max_text=settings.max_display_html_bytes,
                images_for=request.query.get("images")),
        messages,
        contact,
    )  # fmt: skip
    context = {
        "ticket": access.ticket,
        "access": access,
        "thread": thread,
        "is_closed": access.ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED),
        "notice": NOTICES.get(request.query.get("notice", "")),
        "reply_error": reply_error,
        "reply_text": reply_text,
        "accept": accept_attribute(settings),
        "settings": settings,
    }
    return await render(request, "ticket.html", context, status=status)


async def ticket_page(request: web.Request) -> web.Response:
    return await show_ticket(request, await require_contact(request))


async def close_ticket(request: web.Request) -> web.StreamResponse:
    """POST /tickets/{id}/close: the requester or a participant closes the ticket."""
    contact = await require_contact(request)
    events = request.app[keys.PROCESSOR].events

    def close(session: Session) -> Ticket:
        access = ticket_for_contact(session, contact, request.match_info["public_id"])
        if access is None:
            raise web.HTTPNotFound()
        if not access.participant:
            raise web.HTTPForbidden()
        ticket = access.ticket
        if ticket.status != TicketStatus.CLOSED:
            previous = ticket.status
            set_status(session, events, ticket, TicketStatus.CLOSED, reason="customer", note=False)
            add_note(session, ticket, f"{contact.name or contact.email} closed this ticket in the portal.")
            detail = {"from": previous}
            record(
                session, "ticket.closed", contact=contact, ticket=ticket, detail=detail, **audit_context(request)
            )
        return ticket

    ticket = await request.app[keys.DB].write(close)
    url = request.app.router["ticket"].url_for(public_id=ticket.public_id).with_query(notice="closed")
    raise web.HTTPSeeOther(url)
