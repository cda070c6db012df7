"""The cheap paths of page rendering give exactly what the general ones give."""

from __future__ import annotations

import pytest
from aiohttp import web
from markupsafe import escape

from gateway.i18n import translator
from gateway.models import utcnow
from gateway.tickets.lists import TicketPage, TicketRow
from portal.listing import listed
from portal.templating import RoutePaths

TRICKY = [
    "",
    "plain",
    "<script>alert('x')</script>",
    'a "quoted" & <b>bold</b>',
    "&amp; already",
    "é ü 日本 \u2028",
    "'\"<>&" * 3,
]


@pytest.mark.parametrize("text", TRICKY)
def test_ticket_rows_escape_exactly_as_markupsafe(text: str) -> None:
    row = TicketRow("pub", 7, text, "open", utcnow(), False, text)
    html = str(listed(TicketPage([row], 1, 1, 1), lambda name, **parts: text, translator(None), show_requester=True).rows)
    escaped = str(escape(text))
    assert f'href="{escaped}"' in html
    assert f'<span class="ticket-subject">{escaped}</span>' in html
    assert f" · opened by {escaped} · " in html
    if escaped != text:
        assert text not in html


def test_route_paths_are_the_paths_url_for_builds(app: web.Application) -> None:
    paths = RoutePaths(app.router)
    for name in ("tickets", "help", "profile", "logout", "new_request", "brand_css", "home", "login"):
        assert getattr(paths, name) == str(app.router[name].url_for())
        assert name in vars(paths)  # kept: the next page reads a plain attribute


def test_route_paths_refuse_unknown_routes_and_routes_with_parts(app: web.Application) -> None:
    paths = RoutePaths(app.router)
    with pytest.raises(LookupError, match="no route named"):
        _ = paths.no_such_route
    with pytest.raises(LookupError, match="variable parts"):
        _ = paths.ticket
