"""`GET /api/v1/contacts`: the people on the agent's tickets, searchable and paged.

A contact is listed when they take part in a ticket of one of the agent's mailboxes, and
only then: an agent never learns of customers who wrote only to other mailboxes.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import or_, select

from gateway.models import Contact, Ticket, TicketParticipant
from gateway.storage.database import orm
from portal import keys
from portal.views.api_http import api_view, authenticate, clean, next_offset, ok, read_query
from portal.views.api_schema import ContactOut, ContactPage, ContactQuery


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
    if words := clean(query.q):
        statement = statement.where(
            or_(Contact.email.icontains(words, autoescape=True), Contact.name.icontains(words, autoescape=True))
        )
    statement = statement.order_by(Contact.id).offset(query.offset).limit(query.limit + 1)
    rows = await request.app[keys.DB].read(orm(lambda session: list(session.scalars(statement))))
    contacts = [ContactOut(id=c.public_id, email=c.email, name=c.name, created_at=c.created_at) for c in rows]
    return ok(ContactPage(contacts=contacts[: query.limit], next_offset=next_offset(query.offset, query.limit, rows)))
