"""Server-side portal sessions, and the two helpers every signed-in view uses.

In a view, ask who is signed in with `contact = await current_contact(request)` (None for
a visitor), or insist on it with `contact = await require_contact(request)`, which
redirects visitors to `/login?next=<this page>` and returns the Contact otherwise:

    async def my_page(request: web.Request) -> web.Response:
        contact = await require_contact(request)
        ...

The cookie (`__Host-wicket` over https, `wicket` on plain-http development; HttpOnly,
SameSite=Lax, Path=/) holds 256 random bits; the `portal_session` row holds only their
SHA-256. A session ends after `session_idle_minutes` without a request, after
`session_absolute_days` in any case, or when revoked by sign-out, "sign out everywhere"
or a password change. `start_session` (synchronous, run in the caller's transaction)
rotates: the browser's previous session is revoked and a fresh id issued; raise the
redirect after that transaction commits (cookie changes are written by `apply_cookies` as
the response is prepared, so a raised redirect carries them). Views that audit pass
`**audit_context(request)` (client IP, user agent) to `gateway.audit.record`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from http.cookies import SimpleCookie
from typing import Any, TypeVar

from aiohttp import hdrs, web
from sqlalchemy import Column, Connection, Row, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, make_transient_to_detached
from yarl import URL

from gateway.audit import audit_event, record
from gateway.models import Contact, PortalSession, utcnow
from gateway.settings import Settings
from portal import keys

TOUCH_AFTER = timedelta(minutes=1)
M = TypeVar("M", PortalSession, Contact)
_SESSION_COLUMNS = tuple(PortalSession.__table__.columns)
_CONTACT_COLUMNS = tuple(Contact.__table__.columns)
_SIGNED_IN = (
    select(*_SESSION_COLUMNS, *_CONTACT_COLUMNS)
    .join_from(PortalSession, Contact, Contact.id == PortalSession.contact_id)
    .where(
        PortalSession.id_hash == bindparam("id_hash"),
        PortalSession.revoked_at.is_(None),
        PortalSession.expires_at > bindparam("now"),
        PortalSession.last_seen_at > bindparam("seen_after"),
    )
)


@dataclass(slots=True)
class SessionState:
    """What this request knows about its session (loaded lazily, once)."""

    loaded: bool = False
    row: PortalSession | None = None
    contact: Contact | None = None
    new_cookie: str | None = None
    clear_cookie: bool = False


def cookie_name(settings: Settings) -> str:
    return "__Host-wicket" if settings.https else "wicket"


def hash_session_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _is_trusted(address: str, proxies: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def client_ip(request: web.Request) -> str:
    """The client's address: the peer, or behind `trusted_proxies` the last untrusted X-Forwarded-For hop."""
    peer = request.remote or "unknown"
    proxies = request.app[keys.SETTINGS].trusted_proxies
    if not proxies or not _is_trusted(peer, proxies):
        return peer
    hops = [hop.strip() for value in request.headers.getall("X-Forwarded-For", []) for hop in value.split(",")]
    untrusted = [hop for hop in hops if hop and not _is_trusted(hop, proxies)]
    return untrusted[-1][:64] if untrusted else peer


def user_agent(request: web.Request) -> str:
    return request.headers.get("User-Agent", "")[:300]


def audit_context(request: web.Request) -> dict[str, str]:
    """`request_ip` and `user_agent` keyword arguments for `gateway.audit.record`."""
    return {"request_ip": client_ip(request), "user_agent": user_agent(request)}


def _state(request: web.Request) -> SessionState:
    state = request.get(keys.SESSION)
    if state is None:
        state = request[keys.SESSION] = SessionState()
    return state


def _signed_in(connection: Connection, id_hash: str, now: datetime, idle: timedelta) -> Row[Any] | None:
    return connection.execute(_SIGNED_IN, {"id_hash": id_hash, "now": now, "seen_after": now - idle}).first()


def _detached(model: type[M], row: Row[Any], columns: tuple[Column[Any], ...]) -> M:
    """An instance of `model` from `columns` of `row`, detached: it reads like a loaded object."""
    instance = model(**{column.key: row._mapping[column] for column in columns})
    make_transient_to_detached(instance)
    return instance


async def current_session(request: web.Request) -> PortalSession | None:
    """The live session row of this request, or None.

    The lookup is a read (inline on SQLite); `last_seen_at` is written only when it is
    older than TOUCH_AFTER, so the idle timeout holds to within that minute and an ordinary
    page view writes nothing.
    """
    state = _state(request)
    if state.loaded:
        return state.row
    state.loaded = True
    settings, db = request.app[keys.SETTINGS], request.app[keys.DB]
    session_id = request.cookies.get(cookie_name(settings))
    if not session_id:
        return None
    now = utcnow()
    idle = timedelta(minutes=settings.session_idle_minutes)
    found = await db.read(partial(_signed_in, id_hash=hash_session_id(session_id), now=now, idle=idle))
    if found is None:
        state.clear_cookie = True
        return None
    state.row = _detached(PortalSession, found, _SESSION_COLUMNS)
    state.contact = _detached(Contact, found, _CONTACT_COLUMNS)
    if now - state.row.last_seen_at > TOUCH_AFTER:
        async with db.sessions.begin() as db_session:  # not db.write(): this may run inside one
            await db_session.execute(
                update(PortalSession).where(PortalSession.id == state.row.id).values(last_seen_at=now)
            )
        state.row.last_seen_at = now
    return state.row


async def current_contact(request: web.Request) -> Contact | None:
    """The signed-in contact of this request, or None for a visitor."""
    await current_session(request)
    return _state(request).contact


async def require_contact(request: web.Request) -> Contact:
    """The signed-in contact; a visitor is redirected to /login and comes back here after."""
    contact = await current_contact(request)
    if contact is None:
        raise web.HTTPFound(URL("/login").with_query(next=request.path_qs))
    return contact


def start_session(db_session: Session, request: web.Request, contact: Contact, *, method: str) -> PortalSession:
    """Sign `contact` in on this browser (in the caller's transaction), rotating the session id.

    Synchronous, for `Database.run_write`; in an async transaction
    `await session.run_sync(start_session, request, contact, method=…)`.
    """
    settings = request.app[keys.SETTINGS]
    now = utcnow()
    state = _state(request)
    previous = request.cookies.get(cookie_name(settings))
    if previous:
        db_session.execute(
            update(PortalSession)
            .where(PortalSession.id_hash == hash_session_id(previous), PortalSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    session_id = secrets.token_urlsafe(32)
    row = PortalSession(
        id_hash=hash_session_id(session_id),
        contact_id=contact.id,
        method=method,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(days=settings.session_absolute_days),
        ip=client_ip(request)[:64],
        user_agent=user_agent(request),
    )
    db_session.add(row)
    db_session.flush()
    detail = {"method": method, "session": row.id}
    db_session.add(audit_event("session.started", contact=contact, detail=detail, **audit_context(request)))
    state.loaded, state.row, state.contact = True, row, contact
    state.new_cookie, state.clear_cookie = session_id, False
    return row


async def end_session(request: web.Request, db_session: AsyncSession, *, audit: bool = True) -> bool:
    """Sign this browser out (revoke its row, clear its cookie); False when nobody was signed in."""
    row = await current_session(request)
    state = _state(request)
    state.clear_cookie, state.new_cookie = True, None
    if row is None:
        return False
    await db_session.execute(update(PortalSession).where(PortalSession.id == row.id).values(revoked_at=utcnow()))
    if audit:
        await record(
            db_session,
            "session.ended",
            contact_id=row.contact_id,
            detail={"scope": "this", "session": row.id},
            **audit_context(request),
        )
    state.row = state.contact = None
    return True


async def end_other_sessions(db_session: AsyncSession, contact_id: int, keep: PortalSession | None = None) -> int:
    """Revoke every live session of a contact except `keep`; how many ended."""
    statement = (
        update(PortalSession)
        .where(PortalSession.contact_id == contact_id, PortalSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(PortalSession.id)
    )
    if keep is not None:
        statement = statement.where(PortalSession.id != keep.id)
    return len((await db_session.execute(statement)).all())


def write_cookie(
    response: web.StreamResponse, name: str, value: str, *, secure: bool, max_age: int | None = None
) -> None:
    """Add a Set-Cookie header (HttpOnly, SameSite=Lax, Path=/) while the response is prepared.

    aiohttp turns `response.cookies` into headers before `on_response_prepare` runs, so
    the hook writes the header itself.
    """
    jar: SimpleCookie = SimpleCookie()
    jar[name] = value
    morsel = jar[name]
    morsel["path"] = "/"
    morsel["httponly"] = True
    morsel["samesite"] = "Lax"
    if secure:
        morsel["secure"] = True
    if max_age is not None:
        morsel["max-age"] = str(max_age)
        if max_age == 0:
            morsel["expires"] = "Thu, 01 Jan 1970 00:00:00 GMT"
    response.headers.add(hdrs.SET_COOKIE, morsel.OutputString())


def apply_cookies(request: web.Request, response: web.StreamResponse) -> None:
    """Write this request's session cookie changes onto its response."""
    state = request.get(keys.SESSION)
    if state is None:
        return
    settings = request.app[keys.SETTINGS]
    name = cookie_name(settings)
    if state.new_cookie:
        lifetime = settings.session_absolute_days * 86_400
        write_cookie(response, name, state.new_cookie, secure=settings.https, max_age=lifetime)
    elif state.clear_cookie and name in request.cookies:
        write_cookie(response, name, "", secure=settings.https, max_age=0)
