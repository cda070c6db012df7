"""Signing in without a link in hand: /login (email me a link), /code, and password sign-in.

Every answer here is the same for addresses we know and addresses we do not: `/login`
always says "check your email" after the same work (a known address gets a sign-in draft
queued, whose link the outbox worker issues when it sends the email; for an unknown
address the draft is built and thrown away, nothing is stored or sent); a wrong code and a wrong password
get one message whatever the reason. Sending mail counts every request against the
address and IP limits; checking a code or password counts failures only: each try is
counted before the secret is compared (so parallel guesses cannot all slip under the
limit) and given back when it was right. The optional
`next` field (validated by `safe_return_path`) is where the person lands afterwards.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from functools import partial

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.audit import record
from gateway.auth.ratelimit import Rule, check, failure_rules, give_back, hit, mail_rules
from gateway.auth.tokens import consume_code
from gateway.models import Contact, ContactPassword, utcnow
from gateway.outbound.signin_mail import default_mailbox, queue_signin_email, rehearse_signin_email
from portal import keys
from portal.passwords import verify_password
from portal.redirects import TICKET_LIST, return_path_for, safe_return_path
from portal.sessions import audit_context, client_ip, current_contact, start_session
from portal.switching import ask_to_switch, confirmed
from portal.templating import render

log = logging.getLogger(__name__)

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
BAD_EMAIL = "Enter your email address, like name@example.com."
BAD_CODE = (
    "That code did not work. Check that you typed the code from the most recent email; "
    "codes expire with their link. You can also ask for a new email below."
)
BAD_PASSWORD = "That email address and password do not match. You can also sign in with an emailed link."


def normalize_email(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    return email if len(email) <= 320 and _EMAIL.fullmatch(email) else None


def _text(form: Mapping[str, object], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _with_lifetime(request: web.Request, context: dict[str, object]) -> dict[str, object]:
    """The login page says how long the link it offers to email will work."""
    return {**context, "minutes": request.app[keys.SETTINGS].signin_link_ttl_minutes}


async def login_page(request: web.Request) -> web.StreamResponse:
    """GET /login: the email form (and the password form, for contacts who set one)."""
    next_path = safe_return_path(request.query.get("next"))
    if await current_contact(request) is not None:
        raise web.HTTPFound(next_path or TICKET_LIST)
    context = {"next": next_path, "signed_out": "signed_out" in request.query}
    return await render(request, "login.html", _with_lifetime(request, context))


async def login_request(request: web.Request) -> web.Response:
    """POST /login: email a sign-in link to a known address; answer every address alike."""
    settings, db = request.app[keys.SETTINGS], request.app[keys.DB]
    form = await request.post()
    email, next_path = normalize_email(form.get("email")), safe_return_path(form.get("next"))
    if email is None:
        context = {"error": BAD_EMAIL, "email": _text(form, "email")[:320], "next": next_path}
        return await render(request, "login.html", _with_lifetime(request, context), status=400)
    per_address, per_ip = mail_rules(settings)

    def request_link(session: Session) -> None:
        hit(session, settings, per_ip, client_ip(request))
        hit(session, settings, per_address, email)
        contact = session.scalar(select(Contact).where(Contact.email == email))
        mailbox = default_mailbox(session, request.host)
        if mailbox is None:
            log.warning("no mailbox is configured, so no sign-in email can be sent")
        if contact is not None and mailbox is not None:
            queue_signin_email(session, contact, mailbox=mailbox, return_path=next_path)
        else:
            rehearse_signin_email(email, next_path)
        detail = {"known": contact is not None}
        record(session, "signin.requested", contact=contact, detail=detail, **audit_context(request))

    await db.write(request_link)
    context = {"email": email, "next": next_path, "minutes": settings.signin_link_ttl_minutes}
    return await render(request, "login_sent.html", context)


async def code_page(request: web.Request) -> web.Response:
    """GET /code: the form for the 8-character code from a sign-in or reply email."""
    return await render(request, "code.html", {"next": safe_return_path(request.query.get("next"))})


async def _check_failure_limits(request: web.Request, email: str | None) -> None:
    settings = request.app[keys.SETTINGS]
    per_address, per_ip = failure_rules(settings)
    db = request.app[keys.DB]
    await db.read(partial(check, settings=settings, rule=per_ip, subject=client_ip(request)))
    if email is not None:
        await db.read(partial(check, settings=settings, rule=per_address, subject=email))


def _contact_by_email(session: Session, email: str | None) -> Contact | None:
    if email is None:
        return None
    return session.scalar(select(Contact).where(Contact.email == email))


def _attempt_subjects(request: web.Request, email: str | None) -> list[tuple[Rule, str]]:
    per_address, per_ip = failure_rules(request.app[keys.SETTINGS])
    subjects = [(per_ip, client_ip(request))]
    return subjects + [(per_address, email)] if email is not None else subjects


def _take_attempt(session: Session, request: web.Request, email: str | None, now: datetime) -> None:
    """Count this try of a code or password against the client's IP and the address tried,
    before it is compared (RateLimited past the limit), so parallel guesses cannot all get in."""
    for rule, subject in _attempt_subjects(request, email):
        hit(session, request.app[keys.SETTINGS], rule, subject, now=now)


def _give_back_attempt(session: Session, request: web.Request, email: str | None, now: datetime) -> None:
    """The code or password was right: it does not count as a failure."""
    for rule, subject in _attempt_subjects(request, email):
        give_back(session, request.app[keys.SETTINGS], rule, subject, now=now)


async def code_signin(request: web.Request) -> web.StreamResponse:
    """POST /code: sign in with email + code; wrong codes count towards burning the link.

    Each try is counted before the code is compared and given back when it was right, so
    a burst of parallel guesses gets no more tries than the limit. With another contact
    signed in on this browser, the switch is asked first (nothing tried, nothing counted).
    """
    settings, db = request.app[keys.SETTINGS], request.app[keys.DB]
    form = await request.post()
    email, next_path = normalize_email(form.get("email")), safe_return_path(form.get("next"))
    signed_in = await current_contact(request)
    if signed_in is not None and email is not None and email != signed_in.email and not confirmed(form):
        fields = {"email": email, "code": _text(form, "code")[:40], **({"next": next_path} if next_path else {})}
        return await ask_to_switch(request, to_email=email, action=str(request.app.router["code"].url_for()),
                                   fields=fields)
    await _check_failure_limits(request, email)  # a read: refuses a client already over the limit cheaply
    now = utcnow()

    def try_code(session: Session) -> str | None:
        """Where the signed-in contact goes, or None for a wrong code (audited either way)."""
        _take_attempt(session, request, email, now)
        contact = _contact_by_email(session, email)
        outcome = consume_code(session, settings, contact, _text(form, "code"), now=now)
        if not outcome.ok or outcome.link is None or contact is None:
            detail = {"ok": False, "reason": str(outcome.refusal), "burned": outcome.burned}
            record(session, "code.attempt", contact=contact, detail=detail, **audit_context(request))
            return None
        link = outcome.link
        _give_back_attempt(session, request, email, now)
        start_session(session, request, contact.id, method="code")
        detail = {"ok": True, "link_id": link.id}
        context = audit_context(request)
        record(session, "code.attempt", contact=contact, ticket_id=link.ticket_id, detail=detail, **context)
        target = return_path_for(session, link)
        return next_path if target == TICKET_LIST and next_path else target

    target = await db.write(try_code)
    if target is not None:
        raise web.HTTPSeeOther(target)
    context = {"error": BAD_CODE, "email": email or _text(form, "email")[:320], "next": next_path}
    return await render(request, "code.html", context, status=400)


async def password_signin(request: web.Request) -> web.StreamResponse:
    """POST /login/password: sign in with email + password (for contacts who set one)."""
    db = request.app[keys.DB]
    form = await request.post()
    email, next_path = normalize_email(form.get("email")), safe_return_path(form.get("next"))
    await _check_failure_limits(request, email)
    target, now = None, utcnow()

    def take_attempt(session: Session) -> tuple[Contact | None, str | None]:
        """Count the try (committed before the comparison); the contact and their password hash."""
        _take_attempt(session, request, email, now)
        contact = _contact_by_email(session, email)
        if contact is None:
            return None, None
        stored = select(ContactPassword.password_hash).where(ContactPassword.contact_id == contact.id)
        return contact, session.scalar(stored)

    def signed_in(session: Session, contact: Contact) -> None:
        _give_back_attempt(session, request, email, now)
        start_session(session, request, contact.id, method="password")
        record(session, "password.signin", contact=contact, **audit_context(request))

    contact, stored = await db.write(take_attempt)
    if await verify_password(stored, _text(form, "password")) and contact is not None:
        await db.write(partial(signed_in, contact=contact))
        target = next_path or TICKET_LIST
    else:
        await db.write(lambda session: record(session, "password.refused", contact=contact, **audit_context(request)))
    if target is not None:
        raise web.HTTPSeeOther(target)
    context = {"password_error": BAD_PASSWORD, "email": email or _text(form, "email")[:320], "next": next_path}
    return await render(request, "login.html", _with_lifetime(request, context), status=400)
