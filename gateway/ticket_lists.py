"""The portal's ticket lists: a contact's own tickets and those their company shares.

Both lists put open tickets (open, waiting for the customer) first, then the most recent
activity. Activity and the unread marker come from the customer's thread only, so an
internal note never moves a ticket up or marks it unread; a ticket is unread when someone
else wrote in it after the contact last opened it. Lists come a page at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, case, func, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts import shared_requesters
from gateway.models import Contact, Message, Ticket, TicketParticipant, TicketRead, TicketStatus
from gateway.ticket_access import customer_visible

PER_PAGE = 20
OPEN_STATUSES = (TicketStatus.OPEN, TicketStatus.PENDING)
STATUS_FILTERS: dict[str, tuple[str, ...] | None] = {
    "all": None,
    "open": tuple(str(s) for s in OPEN_STATUSES),
    "closed": (str(TicketStatus.RESOLVED), str(TicketStatus.CLOSED)),
}


@dataclass(frozen=True, slots=True)
class TicketRow:
    ticket: Ticket
    last_activity_at: datetime
    unread: bool
    requester: str


@dataclass(frozen=True, slots=True)
class TicketPage:
    rows: list[TicketRow]
    page: int
    pages: int
    total: int


def _listing(contact: Contact) -> Select[tuple[Ticket, datetime, datetime | None, datetime | None, str, str]]:
    others = case((Message.author_contact_id == contact.id, null()), else_=Message.created_at)
    activity = (
        select(
            Message.ticket_id.label("ticket_id"),
            func.max(Message.created_at).label("last_at"),
            func.max(others).label("last_other_at"),
        )
        .where(customer_visible())
        .group_by(Message.ticket_id)
        .subquery()
    )
    last = func.coalesce(activity.c.last_at, Ticket.created_at)
    return (
        select(Ticket, last, activity.c.last_other_at, TicketRead.read_at, Contact.name, Contact.email)
        .join(Contact, Contact.id == Ticket.requester_id)
        .outerjoin(activity, activity.c.ticket_id == Ticket.id)
        .outerjoin(TicketRead, and_(TicketRead.ticket_id == Ticket.id, TicketRead.contact_id == contact.id))
        .order_by(case((Ticket.status.in_([str(s) for s in OPEN_STATUSES]), 0), else_=1), last.desc(), Ticket.id.desc())
    )


def _taking_part(contact: Contact) -> Select[int]:
    return select(TicketParticipant.ticket_id).where(TicketParticipant.contact_id == contact.id)


async def _page(session: AsyncSession, query: Select, page: int, per_page: int) -> TicketPage:  # type: ignore[type-arg]
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = []
    for ticket, last_at, last_other_at, read_at, name, email in await session.execute(
        query.limit(per_page).offset((page - 1) * per_page)
    ):
        unread = last_other_at is not None and (read_at is None or last_other_at > read_at)
        rows.append(TicketRow(ticket, last_at, unread, name or email))
    return TicketPage(rows, page, pages, total)


async def own_tickets(
    session: AsyncSession, contact: Contact, *, status: str = "all", page: int = 1, per_page: int = PER_PAGE
) -> TicketPage:
    """Tickets `contact` takes part in, filtered by "open", "closed" or "all"."""
    query = _listing(contact).where(Ticket.id.in_(_taking_part(contact)))
    statuses = STATUS_FILTERS.get(status)
    if statuses is not None:
        query = query.where(Ticket.status.in_(statuses))
    return await _page(session, query, page, per_page)


async def shared_tickets(
    session: AsyncSession, contact: Contact, account_ids: list[int], *, page: int = 1, per_page: int = PER_PAGE
) -> TicketPage:
    """Tickets opened by colleagues in these sharing accounts that `contact` does not take part in."""
    if not account_ids:
        return TicketPage([], 1, 1, 0)
    query = _listing(contact).where(
        Ticket.requester_id.in_(shared_requesters(account_ids)), Ticket.id.not_in(_taking_part(contact))
    )
    return await _page(session, query, page, per_page)


async def open_subjects(session: AsyncSession, contact: Contact, limit: int = 5) -> list[str]:
    """Subjects of the contact's most recent open tickets (to suggest articles for)."""
    rows = await session.scalars(
        select(Ticket.subject)
        .where(Ticket.id.in_(_taking_part(contact)), Ticket.status.in_([str(s) for s in OPEN_STATUSES]))
        .order_by(Ticket.last_activity_at.desc())
        .limit(limit)
    )
    return list(rows.all())
