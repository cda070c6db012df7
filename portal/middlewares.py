"""What every response gets: security headers, cookies, and friendly error pages.

`error_pages` turns whatever a handler raises into a page in the portal's own look: HTTP
errors keep their status (and Allow/Retry-After headers), `RateLimited` becomes a 429
"try again in N minutes" page, an unreachable database a 503 page, anything else a 500
page; none shows a stack trace, and paths under /api/ get JSON instead. Logs name the
route pattern, never the raw path, which may hold a magic-link token. `form_bodies` reads
a form body (urlencoded or multipart) once, before the CSRF check and the view, and
answers a body that cannot be read (a missing or wrong boundary, a cut-off part, an
unknown charset) with the 400 page: the views then read the parsed copy. `on_prepare` adds
the security headers (a CSP without inline scripts or styles, no framing, nosniff, a
referrer policy, a `Server` header without software versions) and writes the session and CSRF cookies the request decided on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from sqlalchemy import exc as sa_exc

from gateway.i18n import N_
from gateway.auth.ratelimit import RateLimited
from portal import csrf, keys, sessions
from portal.templating import SECRET_PATHS, render_error

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
DATABASE_DOWN: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    OSError,
)
MESSAGES: dict[int, tuple[str, str]] = {
    400: (N_("That did not work"), N_("Something in that request was not right. Go back and try again.")),
    403: (N_("Not allowed"), N_("You do not have access to this page.")),
    404: (N_("Page not found"), N_("We could not find that page. It may have moved, or the address may be incomplete.")),
    405: (N_("Not allowed"), N_("That page cannot be used this way.")),
    413: (N_("Too large"), N_("That upload is larger than we accept.")),
    500: (N_("Something went wrong"), N_("Something went wrong on our side. Please try again in a moment.")),
    503: (N_("Back in a moment"), N_("The portal is briefly unavailable. Please try again in a minute.")),
}
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
# What aiohttp's form parser raises for a body it cannot read: never the server's fault.
UNREADABLE_BODY: tuple[type[BaseException], ...] = (ValueError, LookupError, HttpProcessingError, AssertionError)

SERVER = "Wicket"
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Location")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_label(request: web.Request) -> str:
    """The route pattern (`/l/{token}`), safe to log where the real path is not."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(no route)"


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/")


async def _error(request: web.Request, status: int, headers: dict[str, str] | None = None) -> web.StreamResponse:
    title, message = MESSAGES.get(status, MESSAGES[500] if status >= 500 else MESSAGES[400])
    if _wants_json(request):
        return web.json_response({"error": title, "status": status}, status=status, headers=headers)
    return await render_error(request, status, title, message, headers=headers)


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except csrf.FormExpired:
        return await render_error(
            request,
            403,
            N_("This form has expired"),
            N_(
                "For your safety, forms stop working after a while or after you sign in or out. "
                "Go back, reload the page and try again."
            ),
        )
    except web.HTTPException as error:
        if error.status < 400:
            raise
        kept = {name: error.headers[name] for name in KEPT_HEADERS if name in error.headers}
        return await _error(request, error.status, kept)
    except RateLimited as limited:
        headers = {"Retry-After": str(int(limited.retry_after.total_seconds()) + 1)}
        if _wants_json(request):
            return web.json_response({"error": "rate limited", "status": 429}, status=429, headers=headers)
        plural = "" if limited.minutes == 1 else "s"
        return await render_error(
            request,
            429,
            N_("Please wait a little"),
            f"There have been too many attempts. Please try again in {limited.minutes} minute{plural}.",
            headers=headers,
            context={"retry_minutes": limited.minutes},
        )
    except DATABASE_DOWN as error:
        log.warning("database unavailable during %s %s: %s", request.method, route_label(request), type(error).__name__)
        return await _error(request, 503, {"Retry-After": "30"})
    except Exception:
        log.exception("unhandled error during %s %s", request.method, route_label(request))
        return await _error(request, 500)


@web.middleware
async def form_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.content_type in FORM_TYPES:
        try:
            await request.post()  # aiohttp keeps the parsed form: later reads cost nothing
        except UNREADABLE_BODY as error:
            log.info("unreadable form body for %s %s: %s", request.method, route_label(request), type(error).__name__)
            raise web.HTTPBadRequest() from None
    return await handler(request)


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers["Server"] = SERVER  # aiohttp's default names itself and Python with their versions
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith(SECRET_PATHS):
        # These URLs carry a link or SSO token, so no answer from them (error
        # pages included) may let the browser send the URL on as a Referer to /static etc.
        headers["Referrer-Policy"] = "no-referrer"
    else:
        headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.app[keys.SETTINGS].https:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")
    sessions.apply_cookies(request, response)
    csrf.apply_cookie(request, response)
