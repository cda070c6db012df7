"""The signed-in contact's own account: sign out, sign out everywhere, and an optional password.

Sign-out revokes this browser's session row; "sign out everywhere" revokes every session
of the contact. A password is never required: a contact may set one or remove it at
/account/password, and /login then accepts it. A password is a second way in, so a
session alone is not enough to change it: the browser must have signed in within
RECENT_SIGNIN (by link, code, password or SSO), or the form must carry the current
password; otherwise the page asks for one of the two and offers to email a fresh sign-in
link. A change ends the contact's other sessions and mails a notice to the address on
file (portal/account_mail.py). Every change is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.auth.audit import record
from gateway.auth.ratelimit import failure_rules, give_back, hit
from gateway.models import Contact, ContactPassword, utcnow
from portal import keys
from portal.account_mail import queue_password_notice
from portal.passwords import MAX_LENGTH, hash_password, verify_password
from portal.sessions import (
    LiveSession,
    audit_context,
    client_ip,
    current_contact,
    current_session,
    end_other_sessions,
    end_session,
    require_contact,
)
from portal.templating import render


async def logout_page(request: web.Request) -> web.StreamResponse:
    """GET /logout: a confirmation button (sign-out is a POST, so links cannot sign you out)."""
    if await current_contact(request) is None:
        raise web.HTTPFound(request.app.router["login"].url_for())
    return await render(request, "logout.html")


async def logout(request: web.Request) -> web.StreamResponse:
    """POST /logout: end this browser's session."""
    row = await current_session(request)
    await request.app[keys.DB].write(lambda session: end_session(session, request, row))
    raise web.HTTPSeeOther(request.app.router["login"].url_for().with_query(signed_out="1"))


async def logout_everywhere(request: web.Request) -> web.StreamResponse:
    """POST /logout-everywhere: end every session of the signed-in contact, on every device."""
    contact = await require_contact(request)
    row = await current_session(request)

    def end_all(session: Session) -> None:
        ended = end_other_sessions(session, contact.id)
        end_session(session, request, row, audit=False)
        detail = {"scope": "everywhere", "sessions": ended}
        record(session, "session.ended", contact=contact, detail=detail, **audit_context(request))

    await request.app[keys.DB].write(end_all)
    raise web.HTTPSeeOther(request.app.router["login"].url_for().with_query(signed_out="1"))


RECENT_SIGNIN = timedelta(minutes=10)
NOT_RECENT = (
    "For your safety, a password can only be set, changed or removed within 10 minutes of "
    "signing in. Enter your current password, or sign in again with a fresh link from your email."
)
NOT_RECENT_NO_PASSWORD = (
    "For your safety, a password can only be set within 10 minutes of signing in. "
    "Sign in again with a fresh link from your email, then set it."
)
WRONG_CURRENT = "That is not your current password. Try again, or sign in again with a fresh link from your email."


async def _stored_password(request: web.Request, contact_id: int) -> str | None:
    stored = select(ContactPassword.password_hash).where(ContactPassword.contact_id == contact_id)
    return await request.app[keys.DB].read(lambda connection: connection.scalar(stored))


async def _has_password(request: web.Request, contact_id: int) -> bool:
    return await _stored_password(request, contact_id) is not None


def _recent(row: LiveSession | None) -> bool:
    return row is not None and row.signed_in_within(RECENT_SIGNIN)


async def _page(request: web.Request, contact: Contact, *, status: int = 200, **extra: object) -> web.Response:
    has_password = await _has_password(request, contact.id)
    context = {
        "has_password": has_password,
        "recent": _recent(await current_session(request)),
        "fresh_link_next": str(request.app.router["account_password"].url_for()),
        **extra,
    }
    return await render(request, "account_password.html", context, status=status)


async def password_page(request: web.Request) -> web.Response:
    """GET /account/password: set, change or remove the optional password."""
    contact = await require_contact(request)
    return await _page(request, contact)


async def _current_password_ok(request: web.Request, contact: Contact, typed: str, now: datetime) -> bool:
    """Check the current password typed into the form, counted like a password sign-in."""
    settings, db = request.app[keys.SETTINGS], request.app[keys.DB]
    per_address, per_ip = failure_rules(settings)
    subjects = [(per_ip, client_ip(request)), (per_address, contact.email)]

    def count(session: Session) -> None:  # the try counts before the comparison (see gateway/auth/ratelimit.py)
        for rule, subject in subjects:
            hit(session, settings, rule, subject, now=now)

    def give_all_back(session: Session) -> None:
        for rule, subject in subjects:
            give_back(session, settings, rule, subject, now=now)

    await db.write(count)
    if await verify_password(await _stored_password(request, contact.id), typed):
        await db.write(give_all_back)
        return True
    detail = {"where": "account"}
    context = audit_context(request)
    await db.write(lambda session: record(session, "password.refused", contact=contact, detail=detail, **context))
    return False


def _store_password(session: Session, contact_id: int, password_hash: str) -> None:
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {"contact_id": contact_id, "password_hash": password_hash, "updated_at": utcnow()}
    statement = module.insert(ContactPassword).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["contact_id"], set_={"password_hash": password_hash, "updated_at": values["updated_at"]}
        )
    )


def _problem(password: str, confirm: str, minimum: int) -> str | None:
    if len(password) < minimum:
        return f"Choose a password of at least {minimum} characters."
    if len(password) > MAX_LENGTH:
        return f"Choose a password of at most {MAX_LENGTH} characters."
    if password != confirm:
        return "The two passwords do not match."
    return None


async def password_change(request: web.Request) -> web.Response:
    """POST /account/password: `action=set` with password + confirm, or `action=remove`.

    Needs a recent sign-in or the `current_password`; ends the other sessions and mails
    the owner a notice.
    """
    contact = await require_contact(request)
    settings = request.app[keys.SETTINGS]
    form = await request.post()
    action = form.get("action")
    password, confirm = str(form.get("password") or ""), str(form.get("confirm") or "")
    current = form.get("current_password")
    if action not in ("set", "remove"):
        raise web.HTTPBadRequest()
    if action == "set":
        problem = _problem(password, confirm, settings.password_min_length)
        if problem:
            return await _page(request, contact, status=400, error=problem)
    keep = await current_session(request)
    now = utcnow()
    if not _recent(keep):
        had_password = await _has_password(request, contact.id)
        if not isinstance(current, str) or not current:
            return await _page(request, contact, status=403, error=NOT_RECENT if had_password else NOT_RECENT_NO_PASSWORD)
        if not await _current_password_ok(request, contact, current, now):
            return await _page(request, contact, status=403, error=WRONG_CURRENT)
    password_hash = await hash_password(password) if action == "set" else None
    had_password = await _has_password(request, contact.id)

    def change(session: Session) -> None:
        if password_hash is not None:
            _store_password(session, contact.id, password_hash)
        else:
            session.execute(delete(ContactPassword).where(ContactPassword.contact_id == contact.id))
        ended = end_other_sessions(session, contact.id, keep=keep)
        what = "remove" if action == "remove" else "changed" if had_password else "set"
        queue_password_notice(session, settings, contact, host=request.host, what=what, when=now, ip=client_ip(request))
        record(
            session,
            "password.changed",
            contact=contact,
            detail={"action": action, "other_sessions_ended": ended},
            **audit_context(request),
        )

    await request.app[keys.DB].write(change)
    notice = "Your password is set. Your other devices have been signed out." if action == "set" else (
        "Your password is removed. You sign in with emailed links from now on."
    )
    return await _page(request, contact, notice=notice)
