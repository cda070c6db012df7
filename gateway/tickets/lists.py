"""The portal's ticket lists: a contact's own tickets and those their company shares.

Both lists put open tickets (open, waiting for the customer) first, then the most recent
activity. Activity and the unread marker come from the customer's thread only, so an
internal note never moves a ticket up or marks it unread; a ticket is unread when someone
else wrote in it after the contact last opened it. Lists come a page at a time. These are
reads for `Database.read`: each takes a synchronous Connection, and the statements are
built once (fixed lists as plain comparisons, so they compile once). A page costs one
query, unread markers included; it asks for one row more than it shows, so only a list
that runs past its first page needs a second query, a count, for the pager. (A window
`count(*) OVER ()` in the page's query cost SQLite more than the rest of the query.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, and_, bindparam, case, func, or_, select

from gateway.directory.accounts import shared_requesters
from gateway.models import Contact, Message, Ticket, TicketParticipant, TicketRead, TicketStatus
from gateway.storage import statements
from gateway.tickets.access import customer_visible

PER_PAGE = 20
OPEN_STATUSES = (TicketStatus.OPEN, TicketStatus.PENDING)
STATUS_FILTERS: dict[str, tuple[str, ...] | None] = {
    "all": None,
    "open": tuple(str(s) for s in OPEN_STATUSES),
    "closed": (str(TicketStatus.RESOLVED), str(TicketStatus.CLOSED)),
}


class TicketRow(NamedTuple):
    """One ticket of a list (a named tuple: a page builds twenty of them per request)."""

    public_id: str
    ref: int
    subject: str
    status: str
    last_activity_at: datetime
    unread: bool
    requester: str


@dataclass(frozen=True, slots=True)
class TicketPage:
    rows: list[TicketRow]
    page: int
    pages: int
    total: int

    @property
    def open_subjects(self) -> list[str]:
        """Subjects of the open tickets on this page, most recent first (open ones lead)."""
        return [row.subject for row in self.rows if row.status in STATUS_FILTERS["open"]][:5]


class Listing(NamedTuple):
    """The statements of one list, by name: a page of its rows, and how many rows it has in all."""

    rows: str
    count: str


def _listing(name: str, *conditions: ColumnElement[bool]) -> Listing:
    """Tickets meeting `conditions`, with activity, unread marker and requester, for `:contact_id`."""
    viewer = bindparam("contact_id")
    is_open = or_(*(Ticket.status == str(status) for status in OPEN_STATUSES))
    thread = and_(Message.ticket_id == Ticket.id, customer_visible())
    latest = select(func.max(Message.created_at)).where(thread).scalar_subquery()
    last = func.coalesce(latest, Ticket.created_at).label("last_at")
    # Unread: someone else wrote after the contact last opened it (one probe, not two maxima).
    unread = (
        select(Message.id)
        .where(
            thread,
            Message.author_contact_id.is_distinct_from(viewer),
            or_(TicketRead.read_at.is_(None), Message.created_at > TicketRead.read_at),
        )
        .exists()
    )
    rows = (
        select(
            Ticket.public_id,
            Ticket.ref,
            Ticket.subject,
            Ticket.status,
            last,
            unread.label("unread"),
            Contact.name,
            Contact.email,
        )
        .outerjoin(Contact, Contact.id == Ticket.requester_id)  # none while the sender is unclear
        .outerjoin(TicketRead, and_(TicketRead.ticket_id == Ticket.id, TicketRead.contact_id == viewer))
        .where(*conditions)
        .order_by(case((is_open, 0), else_=1), last.desc(), Ticket.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    count = select(func.count()).select_from(Ticket).where(*conditions)
    return Listing(statements.prepare(f"{name}.rows", rows), statements.prepare(f"{name}.count", count))


def _status_in(statuses: tuple[str, ...] | None) -> list[ColumnElement[bool]]:
    return [] if statuses is None else [or_(*(Ticket.status == status for status in statuses))]


_TAKING_PART = select(TicketParticipant.ticket_id).where(TicketParticipant.contact_id == bindparam("contact_id"))
_OWN = {
    status: _listing(f"tickets.own.{status}", Ticket.id.in_(_TAKING_PART), *_status_in(statuses))
    for status, statuses in STATUS_FILTERS.items()
}
_SHARED = _listing(
    "tickets.shared",
    Ticket.requester_id.in_(shared_requesters(bindparam("account_ids", expanding=True))),
    Ticket.id.not_in(_TAKING_PART),
)


def _page(connection: Connection, listing: Listing, values: dict[str, Any], page: int, per_page: int) -> TicketPage:
    page = max(1, page)
    window = {**values, "limit": per_page + 1, "offset": (page - 1) * per_page}
    found = statements.rows(listing.rows, connection, window)
    rows = [
        TicketRow(public_id, ref, subject, status, last_at, bool(unread), name or email or "")
        for public_id, ref, subject, status, last_at, unread, name, email in found[:per_page]
    ]
    if page == 1 and len(found) <= per_page:
        total = len(rows)  # the whole list is on this page
    else:
        total = statements.scalar(listing.count, connection, values)
    pages = max(1, -(-total // per_page))
    if not rows and page > 1:  # past the end: show the last page
        return _page(connection, listing, values, pages, per_page)
    return TicketPage(rows, page, pages, total)


def own_tickets(
    connection: Connection, contact_id: int, *, status: str = "all", page: int = 1, per_page: int = PER_PAGE
) -> TicketPage:
    """Tickets the contact takes part in, filtered by "open", "closed" or "all"."""
    return _page(connection, _OWN[status], {"contact_id": contact_id}, page, per_page)


def shared_tickets(
    connection: Connection, contact_id: int, account_ids: list[int], *, page: int = 1, per_page: int = PER_PAGE
) -> TicketPage:
    """Tickets opened by colleagues in these sharing accounts that the contact does not take part in."""
    if not account_ids:
        return TicketPage([], 1, 1, 0)
    return _page(connection, _SHARED, {"contact_id": contact_id, "account_ids": account_ids}, page, per_page)
