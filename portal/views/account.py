"""The signed-in contact's own account: sign out, sign out everywhere, and an optional password.

Sign-out revokes this browser's session row; "sign out everywhere" revokes every session
of the contact. A password is never required: a contact may set one (which also ends
their other sessions) or remove it at /account/password, and /login then accepts it.
Every change is audited.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.audit import record
from gateway.models import ContactPassword, utcnow
from portal import keys
from portal.passwords import MAX_LENGTH, hash_password
from portal.sessions import (
    audit_context,
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
    async with request.app[keys.DB].write() as session:
        await end_session(request, session)
    raise web.HTTPSeeOther(request.app.router["login"].url_for().with_query(signed_out="1"))


async def logout_everywhere(request: web.Request) -> web.StreamResponse:
    """POST /logout-everywhere: end every session of the signed-in contact, on every device."""
    contact = await require_contact(request)
    async with request.app[keys.DB].write() as session:
        ended = await end_other_sessions(session, contact.id)
        await end_session(request, session, audit=False)
        detail = {"scope": "everywhere", "sessions": ended}
        record(session, "session.ended", contact=contact, detail=detail, **audit_context(request))
    raise web.HTTPSeeOther(request.app.router["login"].url_for().with_query(signed_out="1"))


async def _has_password(request: web.Request, contact_id: int) -> bool:
    async with request.app[keys.DB].sessions() as session:
        found = await session.scalar(select(ContactPassword.id).where(ContactPassword.contact_id == contact_id))
    return found is not None


async def password_page(request: web.Request) -> web.Response:
    """GET /account/password: set, change or remove the optional password."""
    contact = await require_contact(request)
    return await render(request, "account_password.html", {"has_password": await _has_password(request, contact.id)})


async def _store_password(session: AsyncSession, contact_id: int, password_hash: str) -> None:
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {"contact_id": contact_id, "password_hash": password_hash, "updated_at": utcnow()}
    statement = module.insert(ContactPassword).values(**values)
    await session.execute(
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
    """POST /account/password: `action=set` with password + confirm, or `action=remove`."""
    contact = await require_contact(request)
    settings = request.app[keys.SETTINGS]
    form = await request.post()
    action = form.get("action")
    password, confirm = str(form.get("password") or ""), str(form.get("confirm") or "")
    if action == "set":
        problem = _problem(password, confirm, settings.password_min_length)
        if problem:
            context = {"has_password": await _has_password(request, contact.id), "error": problem}
            return await render(request, "account_password.html", context, status=400)
        password_hash = await hash_password(password)
    elif action != "remove":
        raise web.HTTPBadRequest()
    keep = await current_session(request)
    async with request.app[keys.DB].write() as session:
        if action == "set":
            await _store_password(session, contact.id, password_hash)
        else:
            await session.execute(delete(ContactPassword).where(ContactPassword.contact_id == contact.id))
        ended = await end_other_sessions(session, contact.id, keep=keep)
        record(
            session,
            "password.changed",
            contact=contact,
            detail={"action": action, "other_sessions_ended": ended},
            **audit_context(request),
        )
    notice = "Your password is set. Your other devices have been signed out." if action == "set" else (
        "Your password is removed. You sign in with emailed links from now on."
    )
    return await render(request, "account_password.html", {"has_password": action == "set", "notice": notice})
