"""CSRF protection: one signed double-submit token, bound to the session, on every form.

Each browser gets a random seed in an HttpOnly cookie (`__Host-wicket-csrf` over https,
`wicket-csrf` otherwise). The token placed in forms is HMAC(key, seed + the signed-in
session's id hash), so it is useless without the cookie, changes when someone signs in or
out, and needs no storage; visitors who are not signed in get the same mechanism with an
empty session binding. `csrf_middleware` checks every POST/PUT/PATCH/DELETE: the token
comes in the `csrf_token` form field (templates: `{{ csrf_field }}`) or the
`X-CSRF-Token` header. Handlers that authenticate otherwise (the agent API's bearer keys)
opt out with `@csrf_exempt`. A failed check raises `FormExpired` (403 with a page that
says to reload and try again).
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from gateway.settings import SecretKey, Settings
from portal import keys
from portal.cookies import write_cookie
from portal.sessions import current_session

log = logging.getLogger(__name__)

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
Handler = TypeVar("Handler", bound=Callable[..., Awaitable[web.StreamResponse]])


class FormExpired(web.HTTPForbidden):
    """The CSRF token was missing or did not match."""


@dataclass(slots=True)
class CsrfState:
    seed: str
    is_new: bool


def cookie_name(settings: Settings) -> str:
    return "__Host-wicket-csrf" if settings.https else "wicket-csrf"


def sign(key: SecretKey, seed: str, binding: str) -> str:
    digest = hmac.digest(key.secret, f"csrf|{seed}|{binding}".encode(), "sha256")  # one C call, unlike hmac.new
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_exempt(handler: Handler) -> Handler:
    """Mark a handler that does not use the session cookie (for example bearer-key APIs)."""
    handler.csrf_exempt = True  # type: ignore[attr-defined]
    return handler


def _seed(request: web.Request) -> CsrfState:
    state = request.get(keys.CSRF)
    if state is None:
        existing = request.cookies.get(cookie_name(request.app[keys.SETTINGS]), "")
        if 20 <= len(existing) <= 100:
            state = CsrfState(existing, False)
        else:
            state = CsrfState(secrets.token_urlsafe(32), True)
        request[keys.CSRF] = state
    return state


async def _binding(request: web.Request) -> str:
    row = await current_session(request)
    return row.id_hash if row is not None else ""


async def csrf_token(request: web.Request) -> str:
    """The token to put in this request's forms (sets the seed cookie when missing)."""
    settings = request.app[keys.SETTINGS]
    return sign(settings.keys[0], _seed(request).seed, await _binding(request))


async def token_is_valid(request: web.Request) -> bool:
    settings = request.app[keys.SETTINGS]
    seed = request.cookies.get(cookie_name(settings))
    sent: Any = request.headers.get(HEADER)
    if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = (await request.post()).get(FIELD)
    if not seed or not isinstance(sent, str) or not sent:
        return False
    binding = await _binding(request)
    return any(hmac.compare_digest(sign(key, seed, binding), sent) for key in settings.keys)


def _exempt(request: web.Request) -> bool:
    if request.match_info.http_exception is not None:
        return True  # no such route or method: the 404/405 answer changes nothing
    return bool(getattr(request.match_info.handler, "csrf_exempt", False))


@web.middleware
async def csrf_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.method not in SAFE_METHODS and not _exempt(request):
        if not await token_is_valid(request):
            route = request.match_info.route.resource.canonical if request.match_info.route.resource else "?"
            log.info("CSRF check failed for %s %s", request.method, route)
            raise FormExpired()
    return await handler(request)


def apply_cookie(request: web.Request, response: web.StreamResponse) -> None:
    state = request.get(keys.CSRF)
    if state is None or not state.is_new:
        return
    settings = request.app[keys.SETTINGS]
    write_cookie(response, cookie_name(settings), state.seed, secure=settings.https)
