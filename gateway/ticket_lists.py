"""The portal's ticket lists: a contact's own tickets and those their company shares.

Both lists put open tickets (open, waiting for the customer) first, then the most recent
activity. Activity and the unread marker come from the customer's thread only, so an
internal note never moves a ticket up or marks it unread; a ticket is unread when someone
else wrote in it after the contact last opened it. Lists come a page at a time. These are
reads for `Database.read`: each takes a synchronous Connection, and the statements are
built once (fixed lists as plain comparisons, so they compile once), so a page costs one
query; its row count and unread markers come with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, case, func, or_, select

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


def _listing() -> Select[Any]:
    """Tickets with activity, unread marker and requester, for the contact `:contact_id`."""
    viewer = bindparam("contact_id")
    is_open = or_(*(Ticket.status == str(status) for status in OPEN_STATUSES))
    thread = and_(Message.ticket_id == Ticket.id, customer_visible())
    latest = select(func.max(Message.created_at)).where(thread).scalar_subquery()
    last_other_at = (
        select(func.max(Message.created_at))
        .where(thread, Message.author_contact_id.is_distinct_from(viewer))
        .scalar_subquery()
    )
    last = func.coalesce(latest, Ticket.created_at).label("last_at")
    read_at = (
        select(TicketRead.read_at)
        .where(TicketRead.ticket_id == Ticket.id, TicketRead.contact_id == viewer)
        .scalar_subquery()
    )
    unread = and_(last_other_at.is_not(None), or_(read_at.is_(None), last_other_at > read_at))
    return (
        select(
            Ticket.public_id,
            Ticket.ref,
            Ticket.subject,
            Ticket.status,
            last,
            unread.label("unread"),
            Contact.name,
            Contact.email,
            func.count().over().label("total"),
        )
        .join(Contact, Contact.id == Ticket.requester_id)
        .order_by(case((is_open, 0), else_=1), last.desc(), Ticket.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


_TAKING_PART = select(TicketParticipant.ticket_id).where(TicketParticipant.contact_id == bindparam("contact_id"))
_OWN = {
    status: _listing().where(
        Ticket.id.in_(_TAKING_PART), *([] if statuses is None else [or_(*(Ticket.status == s for s in statuses))])
    )
    for status, statuses in STATUS_FILTERS.items()
}
_SHARED = _listing().where(
    Ticket.requester_id.in_(shared_requesters(bindparam("account_ids", expanding=True))),
    Ticket.id.not_in(_TAKING_PART),
)
def _page(connection: Connection, query: Select[Any], values: dict[str, Any], page: int, per_page: int) -> TicketPage:
    page = max(1, page)
    found = connection.execute(query, {**values, "limit": per_page, "offset": (page - 1) * per_page}).all()
    if not found and page > 1:  # past the end: show the last page
        first = _page(connection, query, values, 1, per_page)
        return first if first.pages == 1 else _page(connection, query, values, first.pages, per_page)
    total = found[0].total if found else 0
    rows = [
        TicketRow(public_id, ref, subject, status, last_at, bool(unread), name or email)
        for public_id, ref, subject, status, last_at, unread, name, email, _ in found
    ]
    return TicketPage(rows, page, max(1, -(-total // per_page)), total)


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
