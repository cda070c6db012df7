"""Writing from the portal: a new request, and an inline reply on a ticket.

Both become real email through `portal.submissions` and are processed at once by the
portal's own processor (`portal.inbound`), so they take exactly the path of mail sent
from a mail client: a new request opens a ticket in the brand's mailbox (and gets the
usual acknowledgement), a reply threads by the signed reply address, reopens a closed
ticket and notifies the agents; a colleague who sees the ticket through account sharing
becomes a participant by replying. Both are audited (`request.submitted`, `ticket.replied`)
and, since each one mails the agents, limited per contact (`portal_post_rule`).
A refused form is shown again with what was typed and a sentence saying what to change.
"""

from __future__ import annotations

from functools import partial

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.audit import record
from gateway.auth.ratelimit import hit, portal_post_rule
from gateway.help.articles import recent_articles
from gateway.models import InboundEmail, InboundStatus, Mailbox, Ticket
from gateway.storage.database import orm
from gateway.tickets.access import TicketAccess, ticket_for_contact
from gateway.tickets.service import add_participant
from portal import keys
from portal.branding import brand_for
from portal.inbound import process_now
from portal.sessions import audit_context, client_ip, require_contact
from portal.submissions import submit_reply, submit_request
from portal.templating import render
from portal.uploads import FIELD, UploadRejected, accept_attribute, read_uploads
from portal.views.tickets import show_ticket

MAX_SUBJECT = 200
MAX_TEXT = 50_000


async def new_request_page(
    request: web.Request, *, error: str | None = None, subject: str = "", text: str = "", status: int = 200
) -> web.Response:
    """GET /requests/new: subject, message and files, with articles that may help."""
    await require_contact(request)
    suggestions = await request.app[keys.DB].read(orm(partial(recent_articles, limit=5)))
    context = {
        "error": error,
        "subject": subject,
        "text": text,
        "suggestions": suggestions,
        "accept": accept_attribute(request.app[keys.SETTINGS]),
        "settings": request.app[keys.SETTINGS],
    }
    return await render(request, "request_new.html", context, status=status)


def problem_with(subject: str, text: str) -> str | None:
    """What to change in a new request's subject or message, or None when it can be sent."""
    if not subject:
        return "Give your request a subject, so we can find it quickly."
    if len(subject) > MAX_SUBJECT:
        return f"Keep the subject under {MAX_SUBJECT} characters."
    if not text:
        return "Tell us what you need in the message field."
    if len(text) > MAX_TEXT:
        return "That message is very long; attach it as a file instead."
    return None


async def new_request(request: web.Request) -> web.StreamResponse:
    """POST /requests/new: the request becomes mail to the brand's mailbox, then a ticket."""
    contact = await require_contact(request)
    settings = request.app[keys.SETTINGS]
    form = await request.post()
    subject, text = " ".join(str(form.get("subject") or "").split()), str(form.get("message") or "").strip()
    try:
        problem = problem_with(subject, text)
        uploads = [] if problem else read_uploads(form.getall(FIELD, []), settings, len(text.encode()))
    except UploadRejected as rejected:
        problem = str(rejected)
    if problem:
        return await new_request_page(request, error=problem, subject=subject, text=text, status=400)
    brand = await brand_for(request)
    if brand.mailbox_id is None:
        raise web.HTTPServiceUnavailable()
    mailbox_id = brand.mailbox_id

    def submit(session: Session) -> InboundEmail:
        hit(session, settings, portal_post_rule(settings), contact.public_id)
        mailbox = session.get_one(Mailbox, mailbox_id)
        inbound = submit_request(
            session, settings, contact=contact, mailbox=mailbox, subject=subject, text=text, uploads=uploads,
            peer=client_ip(request),
        )  # fmt: skip
        detail = {"inbound_email": inbound.id, "attachments": len(uploads)}
        record(session, "request.submitted", contact=contact, detail=detail, **audit_context(request))
        return inbound

    inbound = await request.app[keys.DB].write(submit)
    processed = await process_now(request, inbound.id)
    if processed.status == InboundStatus.DELIVERED and processed.ticket_id is not None:
        public_id = select(Ticket.public_id).where(Ticket.id == processed.ticket_id)
        ticket_public_id = await request.app[keys.DB].read(lambda connection: connection.scalar(public_id))
        url = request.app.router["ticket"].url_for(public_id=ticket_public_id).with_query(notice="created")
        raise web.HTTPSeeOther(url)
    return await render(request, "request_received.html", {"subject": subject}, status=202)


async def reply(request: web.Request) -> web.StreamResponse:
    """POST /tickets/{id}/reply: the reply becomes mail to the ticket's signed reply address."""
    contact = await require_contact(request)
    settings = request.app[keys.SETTINGS]
    form = await request.post()
    text = str(form.get("message") or "").strip()
    try:
        uploads = read_uploads(form.getall(FIELD, []), settings, len(text.encode()))
        if not text and not uploads:
            raise UploadRejected("Write a reply (or attach a file) before sending.")
        if len(text) > MAX_TEXT:
            raise UploadRejected("That reply is very long; attach it as a file instead.")
    except UploadRejected as rejected:
        return await show_ticket(request, contact, reply_error=str(rejected), reply_text=text, status=400)

    def submit(session: Session) -> tuple[TicketAccess, InboundEmail]:
        hit(session, settings, portal_post_rule(settings), contact.public_id)
        access = ticket_for_contact(session, contact, request.match_info["public_id"])
        if access is None:
            raise web.HTTPNotFound()
        if access.shared:  # a colleague through account sharing takes part once they write
            add_participant(session, access.ticket, contact)
        inbound = submit_reply(
            session, settings, contact=contact, ticket=access.ticket, text=text, uploads=uploads,
            peer=client_ip(request),
        )  # fmt: skip
        detail = {"inbound_email": inbound.id, "attachments": len(uploads), "shared": access.shared}
        record(
            session, "ticket.replied", contact=contact, ticket=access.ticket, detail=detail, **audit_context(request)
        )
        return access, inbound

    access, inbound = await request.app[keys.DB].write(submit)
    processed = await process_now(request, inbound.id)
    notice = "sent" if processed.status == InboundStatus.DELIVERED else "queued"
    url = request.app.router["ticket"].url_for(public_id=access.ticket.public_id).with_query(notice=notice)
    raise web.HTTPSeeOther(url.with_fragment("latest"))
