"""A way in for new customers: start a request without an account, confirmed by email.

`/requests/start` takes an address, an optional name, a subject and a message from
someone who is not signed in. The request is kept as a `PendingRequest` and a link is
mailed to the address (gateway/outbound/request_mail.py); the answer is the same "check your
email" page for every address, known or not, and the door is rate limited per address
and per IP like `/login`, since it sends mail. Nothing opens until the link is used: its
Continue page (GET never acts) asks to confirm, and the POST that uses the link up signs
the customer in, after which `open_pending_request` turns the request into portal mail
(the same `submit_request` a signed-in customer's new request takes) and leads to the
ticket. The claim on the pending request is one conditional UPDATE, so it opens once.
"""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.auth.audit import record
from gateway.auth.ratelimit import hit, mail_rules
from gateway.directory.contacts import contact_for
from gateway.models import Contact, InboundEmail, InboundStatus, MagicLink, Mailbox, PendingRequest, Ticket, utcnow
from gateway.outbound.request_mail import queue_request_confirmation
from gateway.outbound.signin_mail import default_mailbox
from portal import keys
from portal.inbound import process_now
from portal.sessions import audit_context, client_ip, current_contact
from portal.submissions import submit_request
from portal.templating import render
from portal.views.requests import MAX_SUBJECT, problem_with
from portal.views.signin import BAD_EMAIL, normalize_email

log = logging.getLogger(__name__)
MAX_NAME = 200


async def start_page(
    request: web.Request, *, error: str | None = None, form: dict[str, str] | None = None, status: int = 200
) -> web.Response:
    """GET /requests/start: the form for someone without an account (signed in: the usual one)."""
    if await current_contact(request) is not None:
        raise web.HTTPFound(request.app.router["new_request"].url_for())
    values = {"email": "", "name": "", "subject": "", "text": "", **(form or {})}
    return await render(request, "request_start.html", {"error": error, "max_subject": MAX_SUBJECT, **values},
                        status=status)  # fmt: skip


async def start_request(request: web.Request) -> web.Response:
    """POST /requests/start: keep the request and mail a confirmation link; the same answer for all."""
    settings, db = request.app[keys.SETTINGS], request.app[keys.DB]
    posted = await request.post()
    form = {name: str(posted.get(field) or "") for name, field in
            (("email", "email"), ("name", "name"), ("subject", "subject"), ("text", "message"))}  # fmt: skip
    form["subject"], form["name"] = " ".join(form["subject"].split()), " ".join(form["name"].split())[:MAX_NAME]
    email = normalize_email(form["email"])
    problem = BAD_EMAIL if email is None else problem_with(form["subject"], form["text"].strip())
    if problem or email is None:
        form["email"] = form["email"][:320]
        return await start_page(request, error=problem, form=form, status=400)
    per_address, per_ip = mail_rules(settings)

    def keep(session: Session) -> None:
        hit(session, settings, per_ip, client_ip(request))
        hit(session, settings, per_address, email)
        mailbox = default_mailbox(session, request.host)
        if mailbox is None:
            log.warning("no mailbox is configured, so no request can be confirmed")
            raise web.HTTPServiceUnavailable()
        contact = contact_for(session, email, form["name"])
        pending = PendingRequest(mailbox_id=mailbox.id, contact_id=contact.id, subject=form["subject"],
                                 body=form["text"].strip(), created_at=utcnow())  # fmt: skip
        session.add(pending)
        session.flush()
        queue_request_confirmation(session, contact, pending, mailbox=mailbox)
        record(session, "request.pending", contact=contact, detail={"pending_request": pending.id},
               **audit_context(request))  # fmt: skip

    await db.write(keep)
    context = {"email": email, "minutes": settings.signin_link_ttl_minutes}
    return await render(request, "request_start_sent.html", context)


async def open_pending_request(request: web.Request, link: MagicLink) -> str:
    """The request a just-used `request` link confirms, opened as a ticket; where to go next."""
    settings, db = request.app[keys.SETTINGS], request.app[keys.DB]
    tickets = str(request.app.router["tickets"].url_for())

    def claim(session: Session) -> InboundEmail | None:
        claimed = session.execute(
            update(PendingRequest)
            .where(PendingRequest.link_id == link.id, PendingRequest.opened_at.is_(None))
            .values(opened_at=utcnow())
            .returning(PendingRequest.id)
        )
        pending_id = claimed.scalar_one_or_none()
        if pending_id is None:
            return None  # opened already (or never sent): the customer is signed in all the same
        pending = session.get_one(PendingRequest, pending_id)
        contact = session.get_one(Contact, pending.contact_id)
        mailbox = session.get_one(Mailbox, pending.mailbox_id)
        inbound = submit_request(
            session, settings, contact=contact, mailbox=mailbox, subject=pending.subject, text=pending.body,
            uploads=[], peer=client_ip(request),
        )  # fmt: skip
        detail = {"inbound_email": inbound.id, "pending_request": pending.id}
        record(session, "request.submitted", contact=contact, detail=detail, **audit_context(request))
        return inbound

    inbound = await db.write(claim)
    if inbound is None:
        return tickets
    processed = await process_now(request, inbound.id)
    if processed.status != InboundStatus.DELIVERED or processed.ticket_id is None:
        return tickets
    opened = select(Ticket.public_id).where(Ticket.id == processed.ticket_id)
    public_id = await db.read(lambda connection: connection.scalar(opened))
    return str(request.app.router["ticket"].url_for(public_id=str(public_id)).with_query(notice="created"))
