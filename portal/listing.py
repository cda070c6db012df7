"""The ticket list's rows as the page shows them: link, words and times worked out once.

`listed(page, url)` turns a `TicketPage` of `gateway.ticket_lists` into rows whose every
field is ready to print, so the template makes no calls per row (a call from a Jinja
template costs several times a Python call, and the list has twenty rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.models import utcnow
from gateway.ticket_lists import TicketPage
from portal.formatting import ago, status_label, when


@dataclass(frozen=True, slots=True)
class ListedTicket:
    """One ticket of the list, every field ready to print."""

    href: str
    ref: int
    subject: str
    status: str
    status_label: str
    unread: bool
    requester: str
    updated_iso: str
    updated_exact: str
    updated_ago: str


@dataclass(frozen=True, slots=True)
class ListedPage:
    """A page of listed tickets and where it sits among the pages (for the pager)."""

    rows: list[ListedTicket]
    page: int
    pages: int


def listed(page: TicketPage, url: Callable[..., str]) -> ListedPage:
    """`page` as the template prints it; `url` is the templates' route-name link builder."""
    now = utcnow()
    rows = [
        ListedTicket(
            href=url("ticket", public_id=row.public_id),
            ref=row.ref,
            subject=row.subject,
            status=row.status,
            status_label=status_label(row.status),
            unread=row.unread,
            requester=row.requester,
            updated_iso=row.last_activity_at.isoformat(),
            updated_exact=when(row.last_activity_at),
            updated_ago=ago(row.last_activity_at, now),
        )
        for row in page.rows
    ]
    return ListedPage(rows, page.page, page.pages)
