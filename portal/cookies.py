"""Set-Cookie headers for the portal's own cookies: the session's (portal/sessions.py) and
the CSRF seed's (portal/csrf.py), both written while the response is prepared, with the
attributes every portal cookie has (docs/architecture.md, "Rules the code relies on")."""

from __future__ import annotations

import re
from http.cookies import Morsel

from aiohttp import hdrs, web

_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]*")  # what secrets.token_urlsafe gives


def write_cookie(
    response: web.StreamResponse, name: str, value: str, *, secure: bool, max_age: int | None = None
) -> None:
    """Add a Set-Cookie header (HttpOnly, SameSite=Lax, Path=/) while the response is prepared.

    aiohttp turns `response.cookies` into headers before `on_response_prepare` runs, so a
    `set_cookie` from the hook would never be sent; the hook builds the header with the
    standard library's `http.cookies.Morsel` (what aiohttp's cookie jar serialises with)
    and adds it. Values are URL-safe tokens (empty to clear a cookie), which need no
    quoting, so the value is also its coded form: a cleared cookie reads `name=`.
    """
    if not _COOKIE_VALUE.fullmatch(value):
        raise ValueError("a cookie value must be a URL-safe token")
    morsel: Morsel[str] = Morsel()
    morsel.set(name, value, value)
    morsel["httponly"] = True
    morsel["path"] = "/"
    morsel["samesite"] = "Lax"
    if secure:
        morsel["secure"] = True
    if max_age is not None:
        morsel["max-age"] = max_age
        if max_age == 0:
            morsel["expires"] = "Thu, 01 Jan 1970 00:00:00 GMT"
    response.headers.add(hdrs.SET_COOKIE, morsel.OutputString())
