"""The ticket list's rows as HTML: each row built once in Python, its values escaped going in.

`listed(page, url, show_requester=...)` turns a `TicketPage` of `gateway.tickets.lists` into
a `ListedPage` whose `rows` is the list's `<li>` elements as one `Markup` string, ready for
`tickets.html` to print inside its `<ul class="ticket-list">`. Every value from the
database (subject, requester, link, status) is escaped by `markupsafe.escape`, the
escaping Jinja's autoescape uses; the times are made here from datetimes and hold no
markup. Twenty rows through Jinja cost as much as the rest of the page (an attribute
lookup, an escape and a generator step per value, about ten values a row); one f-string
per row costs a fraction of that, which is why this one piece of markup lives in Python
rather than in a template. (Each escaped value enters the f-string through `!s`, as plain
`str`: formatting a `Markup` value goes through its own `__format__`, which costs more.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

from gateway.models import utcnow
from gateway.i18n import Translator
from gateway.tickets.lists import TicketPage, TicketRow
from portal.formatting import ago, status_label, when



@dataclass(frozen=True, slots=True)
class ListedPage:
    """A page of the list as HTML rows (empty when there are none) and its place among the pages."""

    rows: Markup
    page: int
    pages: int


@functools.lru_cache(maxsize=64)
def _status_badge(status: str, speaking: Translator) -> str:
    """The status badge of a row (a handful of statuses, so each is built once per language)."""
    return f'<span class="status status-{escape(status)!s}">{escape(status_label(status, speaking))!s}</span>'


@functools.lru_cache(maxsize=16)
def _unread_mark(speaking: Translator) -> str:
    new = escape(speaking.gettext("New reply"))
    return f'<span class="unread-dot" title="{new!s}"></span><span class="visually-hidden">{new!s}: </span> '


@functools.lru_cache(maxsize=4096)
def _time_attributes(moment: datetime, speaking: Translator) -> str:
    """The `datetime` and `title` attributes of a row's <time>: the same text for the same moment.

    A list shows the same moments request after request, and formatting them twice cost
    more than the rest of the row; the text depends on the moment alone.
    """
    return f'datetime="{moment.isoformat()}" title="{escape(when(moment, speaking))!s}"'


def _row(row: TicketRow, href: str, now: datetime, show_requester: bool, speaking: Translator) -> str:
    moment = row.last_activity_at
    unread = row.unread
    opened_by = speaking.gettext("opened by %(name)s") % {"name": escape(row.requester)}
    requester = f" · {opened_by}" if show_requester else ""
    updated = speaking.gettext("updated")
    return (
        f'<li class="ticket-row{" is-unread" if unread else ""}"><a class="ticket-link" href="{escape(href)!s}">'
        f'<span class="ticket-main"><span class="ticket-subject">{_unread_mark(speaking) if unread else ""}'
        f'{escape(row.subject)!s}</span><span class="ticket-meta">#{row.ref}{requester} · {escape(updated)!s} '
        f"<time {_time_attributes(moment, speaking)}>{escape(ago(moment, now, speaking))!s}</time></span></span>"
        f"{_status_badge(row.status, speaking)}</a></li>\n"
    )


def listed(
    page: TicketPage, url: Callable[..., str], speaking: Translator, *, show_requester: bool = False
) -> ListedPage:
    """`page` as the template prints it in the reader's language; `url` builds route-name links.

    `show_requester` adds "opened by …" to each row (tickets shared by colleagues).
    """
    now = utcnow()
    html = "".join(
        _row(row, url("ticket", public_id=row.public_id), now, show_requester, speaking) for row in page.rows
    )
    return ListedPage(Markup(html), page.page, page.pages)
