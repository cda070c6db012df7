"""Placeholder ticket pages: who is signed in, and one ticket's subject.

These exist so sign-in has somewhere to land; the real ticket list and ticket page
(issue "The branded customer portal") replace them. `/` sends visitors to /login and
signed-in contacts to /tickets.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from gateway.models import Ticket, TicketParticipant
from portal import keys
from portal.sessions import current_contact, require_contact
from portal.templating import render


async def home(request: web.Request) -> web.StreamResponse:
    signed_in = await current_contact(request) is not None
    raise web.HTTPFound(request.app.router["tickets" if signed_in else "login"].url_for())


async def ticket_list(request: web.Request) -> web.Response:
    contact = await require_contact(request)
    return await render(request, "tickets.html", {"signed_in_as": contact})


async def ticket_page(request: web.Request) -> web.Response:
    contact = await require_contact(request)
    query = (
        select(Ticket)
        .join(TicketParticipant, TicketParticipant.ticket_id == Ticket.id)
        .where(Ticket.public_id == request.match_info["public_id"], TicketParticipant.contact_id == contact.id)
    )
    async with request.app[keys.DB].sessions() as session:
        ticket = await session.scalar(query)
    if ticket is None:
        raise web.HTTPNotFound()
    return await render(request, "ticket.html", {"ticket": ticket})
