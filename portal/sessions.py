"""Server-side portal sessions, and the two helpers every signed-in view uses.

In a view, ask who is signed in with `contact = await current_contact(request)` (None for
a visitor), or insist on it with `contact = await require_contact(request)`, which
redirects visitors to `/login?next=<this page>` and returns the Contact otherwise:

    async def my_page(request: web.Request) -> web.Response:
        contact = await require_contact(request)
        ...

A view that reads more can look the session up in its own read, `load_session(connection,
request)` inside `db.read(...)`, and still call `require_contact` afterwards (which then
costs no query). The session is looked up once per request, with its contact, in one
statement. The contact comes back as a detached Contact built without the ORM's
per-attribute constructor (views hand it to ORM code); the session as a `LiveSession`,
the five columns its users read (a model instance cost more than the list's rows).

The cookie (`__Host-wicket` over https, `wicket` on plain-http development; HttpOnly,
SameSite=Lax, Path=/) holds 256 random bits; the `portal_session` row holds only their
SHA-256. A session ends after `session_idle_minutes` without a request, after
`session_absolute_days` in any case, or when revoked by sign-out, "sign out everywhere"
or a password change. `start_session` (synchronous, run in the caller's transaction)
rotates: the browser's previous session is revoked and a fresh id issued; raise the
redirect after that transaction commits (cookie changes are written by `apply_cookies` as
the response is prepared, so a raised redirect carries them). Views that audit pass
`**audit_context(request)` (client IP, user agent) to `gateway.auth.audit.record`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from aiohttp import web
from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session
from yarl import URL

from gateway.auth.audit import record
from gateway.directory.accounts import SharingAccount, sharing_accounts_in, with_sharing_accounts
from gateway.models import Contact, PortalSession, loaded, utcnow
from gateway.settings import Settings
from gateway.storage import statements
from portal import keys
from portal.client_address import client_ip
from portal.cookies import write_cookie

TOUCH_AFTER = timedelta(minutes=1)
_SESSION_COLUMNS = (
    PortalSession.id, PortalSession.id_hash, PortalSession.contact_id, PortalSession.last_seen_at,
    PortalSession.created_at,
)
_CONTACT_COLUMNS = tuple(Contact.__table__.columns)
_CONTACT_KEYS = tuple(column.key for column in _CONTACT_COLUMNS)
_SIGNED_IN = statements.prepare("portal.signed_in", with_sharing_accounts(
    select(*_SESSION_COLUMNS, *_CONTACT_COLUMNS)
    .join_from(PortalSession, Contact, Contact.id == PortalSession.contact_id)
    .where(
        PortalSession.id_hash == bindparam("id_hash"),
        PortalSession.revoked_at.is_(None),
        PortalSession.expires_at > bindparam("now"),
        PortalSession.last_seen_at > bindparam("seen_after"),
    )
))  # the sharing accounts come along: the ticket list needs them, and a statement costs more than a join
_SESSIONS = PortalSession.__table__  # sign-in writes plain Core on the table: no ORM flush
_INSERT = statements.prepare("portal.start_session", insert(_SESSIONS).returning(_SESSIONS.c.id))
_REVOKE = statements.prepare(
    "portal.revoke_previous_session",
    update(_SESSIONS)
    .where(_SESSIONS.c.id_hash == bindparam("previous"), _SESSIONS.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"))
)


@dataclass(slots=True)
class LiveSession:
    """The signed-in session of a request: its row's id, id hash, contact, last request and sign-in time.

    Every sign-in starts a new row (`start_session` rotates), so `signed_in_at` is when
    this browser last proved who it is with a link, code, password or SSO handoff.
    """

    id: int
    id_hash: str
    contact_id: int
    last_seen_at: datetime
    signed_in_at: datetime

    def signed_in_within(self, period: timedelta, now: datetime | None = None) -> bool:
        return (now or utcnow()) - self.signed_in_at <= period


@dataclass(slots=True)
class SessionState:
    """What this request knows about its session (loaded lazily, once)."""

    loaded: bool = False
    row: LiveSession | None = None
    contact: Contact | None = None
    accounts: list[SharingAccount] = field(default_factory=list)
    touch_due: bool = False
    new_cookie: str | None = None
    clear_cookie: bool = False


def cookie_name(settings: Settings) -> str:
    return "__Host-wicket" if settings.https else "wicket"


def hash_session_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def user_agent(request: web.Request) -> str:
    return request.headers.get("User-Agent", "")[:300]


def audit_context(request: web.Request) -> dict[str, str]:
    """`request_ip` and `user_agent` keyword arguments for `gateway.auth.audit.record`."""
    return {"request_ip": client_ip(request), "user_agent": user_agent(request)}


def _state(request: web.Request) -> SessionState:
    state = request.get(keys.SESSION)
    if state is None:
        state = request[keys.SESSION] = SessionState()
    return state


def _session_id(request: web.Request, state: SessionState) -> str | None:
    """The browser's session id: the one just issued, else the cookie's."""
    return state.new_cookie or request.cookies.get(cookie_name(request.app[keys.SETTINGS]))


def load_session(connection: Connection, request: web.Request) -> Contact | None:
    """Look this request's session up on `connection` (once per request); its contact or None.

    For `Database.read`; `current_session` and `require_contact` then use what it found.
    """
    state = _state(request)
    if state.loaded:
        return state.contact
    state.loaded = True
    session_id = _session_id(request, state)
    if not session_id:
        return None
    settings = request.app[keys.SETTINGS]
    now = utcnow()
    values = {
        "id_hash": hash_session_id(session_id),
        "now": now,
        "seen_after": now - timedelta(minutes=settings.session_idle_minutes),
    }
    found = statements.rows(_SIGNED_IN, connection, values)
    if not found:
        state.clear_cookie = True
        return None
    split, end = len(_SESSION_COLUMNS), len(_SESSION_COLUMNS) + len(_CONTACT_COLUMNS)
    state.row = LiveSession(*found[0][:split])
    state.contact = loaded(Contact, dict(zip(_CONTACT_KEYS, found[0][split:end])))
    state.accounts = sharing_accounts_in(found)
    state.touch_due = now - state.row.last_seen_at > TOUCH_AFTER
    return state.contact


async def current_session(request: web.Request) -> LiveSession | None:
    """The live session row of this request, or None.

    The lookup is a read (inline on SQLite); `last_seen_at` is written only when it is
    older than TOUCH_AFTER, so the idle timeout holds to within that minute and an ordinary
    page view writes nothing.
    """
    state = _state(request)
    if not state.loaded:
        if _session_id(request, state):
            await request.app[keys.DB].read(partial(load_session, request=request))
        state.loaded = True
    if state.touch_due and state.row is not None:
        state.touch_due = False
        now = utcnow()
        touch = update(PortalSession).where(PortalSession.id == state.row.id).values(last_seen_at=now)
        await request.app[keys.DB].write(lambda db_session: db_session.execute(touch))
        state.row.last_seen_at = now
    return state.row


def sharing_accounts(request: web.Request) -> list[SharingAccount]:
    """The accounts sharing tickets with the signed-in contact, read with the session (after `load_session`)."""
    return _state(request).accounts


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


def start_session(db_session: Session, request: web.Request, contact_id: int, *, method: str) -> None:
    """Sign the contact in on this browser (in the caller's transaction), rotating the session id.

    Synchronous, for `Database.write`. Core statements (no ORM flush); the rest of the
    request sees the new session, looked up if asked for.
    """
    settings = request.app[keys.SETTINGS]
    now = utcnow()
    previous = request.cookies.get(cookie_name(settings))
    if previous:
        statements.rows(_REVOKE, db_session.connection(), {"previous": hash_session_id(previous), "now": now})
    session_id = secrets.token_urlsafe(32)
    values = {
        "id_hash": hash_session_id(session_id),
        "contact_id": contact_id,
        "method": method,
        "created_at": now,
        "last_seen_at": now,
        "expires_at": now + timedelta(days=settings.session_absolute_days),
        "ip": client_ip(request)[:64],
        "user_agent": user_agent(request),
    }
    row_id = statements.scalar(_INSERT, db_session.connection(), values)
    detail = {"method": method, "session": row_id}
    record(db_session, "session.started", contact_id=contact_id, detail=detail, **audit_context(request))
    request[keys.SESSION] = SessionState(new_cookie=session_id)  # looked up afresh if asked for


def end_session(db_session: Session, request: web.Request, row: LiveSession | None, *, audit: bool = True) -> bool:
    """Sign this browser out: revoke `row` (its `current_session`) and clear its cookie.

    False when nobody was signed in.
    """
    state = _state(request)
    state.clear_cookie, state.new_cookie = True, None
    if row is None:
        return False
    db_session.execute(update(PortalSession).where(PortalSession.id == row.id).values(revoked_at=utcnow()))
    if audit:
        record(
            db_session,
            "session.ended",
            contact_id=row.contact_id,
            detail={"scope": "this", "session": row.id},
            **audit_context(request),
        )
    request[keys.SESSION] = SessionState(loaded=True, clear_cookie=True)
    return True


def end_other_sessions(db_session: Session, contact_id: int, keep: LiveSession | None = None) -> int:
    """Revoke every live session of a contact except `keep`; how many ended."""
    statement = (
        update(PortalSession)
        .where(PortalSession.contact_id == contact_id, PortalSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(PortalSession.id)
    )
    if keep is not None:
        statement = statement.where(PortalSession.id != keep.id)
    return len(db_session.execute(statement).all())


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
