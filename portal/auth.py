"""Magic-link exchange: the one door every emailed link opens.

`GET /l/{token}` never consumes: it shows a "Continue as j•••@example.test" button (or, for
a link that cannot be used, a friendly page), so mail scanners that fetch links burn
nothing; `HEAD` answers 200 without even a lookup. When another contact is signed in on
this browser the page asks before switching, and `POST` without the `switch=yes` field
shows that question again and uses nothing up (see portal/switching.py). `POST /l/{token}` (CSRF-checked) consumes the link atomically,
starts a fresh session and redirects to the link's ticket or stored local path; the
success path is one unit of work (`Database.write`), one hop on SQLite, of plain Core
statements (use the link, insert the session and two audit events; no ORM flush). An
expired, used or burned link gets a page with one button, "Email me a new link", which
posts to `/l/{token}/resend` and mails a fresh sign-in link to the address on file of the
contact the old link belonged to, never to an address typed anywhere. Failures count
against the client IP's rate limit, and an address over it gets the "please wait" page
instead of the refusal, but a valid link is always exchanged; every outcome is audited;
tokens stay out of logs.
"""

from __future__ import annotations

import logging
from functools import partial

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.audit import record
from gateway.i18n import N_
from gateway.auth.ratelimit import check, failure_rules, hit, mail_rules
from gateway.auth.tokens import LinkCheck, LinkPurpose, Refusal, check_link, consume_link, find_link, link_refusal
from gateway.metrics import LINK_EXCHANGES
from gateway.models import Contact, MagicLink, Ticket, utcnow
from gateway.outbound.signin_mail import default_mailbox, queue_signin_email
from gateway.storage.database import orm
from portal import keys
from portal.redirects import return_path_for
from portal.sessions import audit_context, client_ip, current_contact, start_session
from portal.switching import ask_to_switch, confirmed, mask_email, must_ask
from portal.templating import render
from portal.views.start import open_pending_request

log = logging.getLogger(__name__)

LINK_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
RESENDABLE = frozenset({Refusal.EXPIRED, Refusal.USED, Refusal.BURNED})
REFUSAL_PAGES: dict[Refusal, tuple[str, str]] = {  # translated where they are shown
    Refusal.EXPIRED: (
        N_("This link has expired"),
        N_("Sign-in links work for a short time only, to keep your account safe."),
    ),
    Refusal.USED: (
        N_("This link has already been used"),
        N_("Each sign-in link works once, to keep your account safe."),
    ),
    Refusal.BURNED: (
        N_("This link has been switched off"),
        N_("Someone typed the code from this email wrongly too many times, so we switched the link off."),
    ),
}
NOT_WORKING = (
    N_("This link does not work"),
    N_(
        "It may be incomplete: some email programs break long links. Copy the whole link from the "
        "email, or ask for a new one below."
    ),
)


async def _refused(
    request: web.Request, token: str, refusal: Refusal | None, link: MagicLink | None = None
) -> web.Response:
    resendable = link is not None and refusal in RESENDABLE
    title, message = REFUSAL_PAGES[refusal] if resendable and refusal else NOT_WORKING
    return await render(
        request,
        "link_refused.html",
        {"title": title, "message": message, "token": token, "resendable": resendable},
        status=410 if resendable else 404,
        headers=LINK_HEADERS,
    )


async def link_head(request: web.Request) -> web.Response:
    """HEAD /l/{token}: 200 and nothing else; scanners learn nothing and burn nothing."""
    return web.Response(status=200, content_type="text/html", headers=LINK_HEADERS)


async def link_page(request: web.Request) -> web.Response:
    """GET /l/{token}: the "Continue" page, or the friendly page for a link that cannot be used."""
    token = request.match_info["token"]
    outcome, address = await request.app[keys.DB].read(orm(partial(_look, request=request, token=token)))
    link = outcome.link
    if outcome.ok and link is not None and address is not None:
        action = str(request.app.router["link"].url_for(token=token))
        if await must_ask(request, link.contact_id):
            return await ask_to_switch(request, to_email=address, action=action, headers=LINK_HEADERS)
        context = {"token": token, "to_ticket": link.ticket_id is not None, "masked_email": mask_email(address),
                   "confirms_request": link.purpose == LinkPurpose.REQUEST}  # fmt: skip
        return await render(request, "link_continue.html", context, headers=LINK_HEADERS)
    return await _refused(request, token, outcome.refusal, link)


def _look(session: Session, request: web.Request, token: str) -> tuple[LinkCheck, str | None]:
    """The token's link (not consumed) and its contact's address."""
    outcome = check_link(session, request.app[keys.SETTINGS], token)
    link = outcome.link
    address = session.scalar(select(Contact.email).where(Contact.id == link.contact_id)) if link else None
    return outcome, address


async def _switch_question(request: web.Request, token: str) -> web.Response | None:
    """The switch question when this usable link is another contact's than the signed-in one's, else None.

    Only asked of a browser where someone is signed in, so the ordinary exchange costs no
    extra query.
    """
    if await current_contact(request) is None or confirmed(await request.post()):
        return None
    outcome, address = await request.app[keys.DB].read(orm(partial(_look, request=request, token=token)))
    link = outcome.link
    if not outcome.ok or link is None or not await must_ask(request, link.contact_id):
        return None
    action = str(request.app.router["link"].url_for(token=token))
    return await ask_to_switch(request, to_email=address or "", action=action, headers=LINK_HEADERS)


def _exchange(session: Session, request: web.Request, token: str) -> tuple[LinkCheck, str | None]:
    """The link exchange's unit of work: use the link up, start the session, audit; and where to go."""
    outcome = consume_link(session, request.app[keys.SETTINGS], token)
    link = outcome.link
    if not outcome.ok or link is None:
        return outcome, None
    start_session(session, request, link.contact_id, method="link")
    detail = {"link_id": link.id, "purpose": link.purpose}
    record(
        session,
        "link.exchanged",
        contact_id=link.contact_id,
        ticket_id=link.ticket_id,
        detail=detail,
        **audit_context(request),
    )
    return outcome, return_path_for(session, link)


async def link_exchange(request: web.Request) -> web.StreamResponse:
    """POST /l/{token}: use the link up, sign its contact in, and go to its return path."""
    settings, db = request.app[keys.SETTINGS], request.app[keys.DB]
    token, ip = request.match_info["token"], client_ip(request)
    ip_rule = failure_rules(settings)[1]
    # A valid link is exchanged whatever the per-IP limit says: the address may be a proxy
    # or a shared network that someone else has used up, and a token cannot be guessed.
    question = await _switch_question(request, token)
    if question is not None:
        return question
    outcome, target = await db.write(partial(_exchange, request=request, token=token))
    link = outcome.link
    if target is None:
        await db.read(partial(check, settings=settings, rule=ip_rule, subject=ip))  # over it: the wait page

        def refused(session: Session) -> None:
            record(
                session,
                "link.refused",
                contact_id=link.contact_id if link else None,
                ticket_id=link.ticket_id if link else None,
                detail={"reason": str(outcome.refusal), "link_id": link.id if link else None},
                **audit_context(request),
            )
            hit(session, settings, ip_rule, ip, enforce=False)

        await db.write(refused)
    LINK_EXCHANGES.labels("ok" if outcome.ok else str(outcome.refusal)).inc()  # /metrics
    if target is not None and link is not None and link.purpose == LinkPurpose.REQUEST:
        target = await open_pending_request(request, link)  # the link confirmed a new customer's request
    if target is not None:
        raise web.HTTPSeeOther(target, headers=LINK_HEADERS)
    if link is not None and outcome.refusal is Refusal.USED:
        signed_in = await current_contact(request)
        if signed_in is not None and signed_in.id == link.contact_id:
            # A second click from the browser this link already signed in: carry on.
            target = await db.read(orm(partial(return_path_for, link=link)))
            raise web.HTTPSeeOther(target, headers=LINK_HEADERS)
    return await _refused(request, token, outcome.refusal, link)


async def link_resend(request: web.Request) -> web.StreamResponse:
    """POST /l/{token}/resend: mail a fresh link to the old link's contact, at the address on file."""
    settings, db = request.app[keys.SETTINGS], request.app[keys.DB]
    token, ip = request.match_info["token"], client_ip(request)
    per_address, per_ip = mail_rules(settings)

    def resend(session: Session) -> tuple[MagicLink | None, str | None]:
        """The old link, and the masked address a fresh one went to (None when none was sent)."""
        link = find_link(session, settings, token)
        if link is None:
            hit(session, settings, failure_rules(settings)[1], ip, enforce=False)
            return None, None
        if link_refusal(link, utcnow()) is None:
            return link, None
        contact = session.get_one(Contact, link.contact_id)
        hit(session, settings, per_ip, ip)
        hit(session, settings, per_address, contact.email)
        ticket = session.get(Ticket, link.ticket_id) if link.ticket_id is not None else None
        mailbox = default_mailbox(session, request.host)
        if mailbox is None:
            log.warning("no mailbox is configured, so no sign-in email can be sent")
        else:
            queue_signin_email(session, contact, mailbox=mailbox, ticket=ticket, return_path=link.return_path)
        detail = {"previous_link_id": link.id}
        record(session, "link.resent", contact=contact, ticket=ticket, detail=detail, **audit_context(request))
        return link, mask_email(contact.email)

    link, masked = await db.write(resend)
    if link is None:
        return await _refused(request, token, Refusal.UNKNOWN)
    if masked is None:
        raise web.HTTPSeeOther(request.app.router["link"].url_for(token=token), headers=LINK_HEADERS)
    return await render(request, "link_resent.html", {"masked_email": masked}, headers=LINK_HEADERS)
