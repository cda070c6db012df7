"""The sign-in email: which mailbox sends it, what it says, queueing it and rendering it.

`default_mailbox` is the one place that decides which brand (mailbox) a portal request
belongs to: the mailbox whose custom domain is the Host, else the first one.
`queue_signin_email` queues a sign-in draft in the caller's transaction (a rolled-back
request sends nothing) and issues no link: the outbox worker calls `prepare_signin_draft`,
which issues the sign-in link when the email is sent (a retry issues a fresh one and
revokes the earlier: see gateway/outbound/drafts.py) and renders the text and HTML parts from
`gateway/outbound/templates/mail/signin.*` with the link URL and the code; the row keeps only the
copy with both replaced. `rehearse_signin_email` does the same request-time work for an
address nobody has, so `/login` answers alike.
"""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import lru_cache, partial
from typing import Any

from jinja2 import Environment
from sqlalchemy.orm import Session

from gateway.auth.link_secrets import format_code
from gateway.auth.tokens import LinkPurpose, issue_link
from gateway.directory.branding import mailbox_for_host, portal_url
from gateway.i18n import Translator, translator
from gateway.models import Contact, Mailbox, OutboxMessage, Ticket, utcnow
from gateway.outbound.compose import mail_address, mail_templates, mail_translator
from gateway.outbound.drafts import Draft, Prepared, draft_values, queue_draft, retire_earlier_link
from gateway.outbound.mime import new_email, text_and_html
from gateway.settings import Settings

SIGNIN = "signin"  # the outbox row's kind and the draft's template


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return mail_templates("templates", trim=False)


def default_mailbox(session: Session, host: str | None = None) -> Mailbox | None:
    """The mailbox (brand) for a portal request on `host` (see `gateway.directory.branding.mailbox_for_host`)."""
    return mailbox_for_host(session, host)


def compose_signin_email(
    settings: Settings,
    mailbox: Mailbox,
    *,
    to_email: str,
    to_name: str,
    url: str,
    code: str,
    minutes: int,
    now: datetime | None = None,
    message_id: str | None = None,
    speaking: Translator | None = None,
) -> EmailMessage:
    """The finished sign-in message (From, To, Subject, Message-ID, text and HTML parts)."""
    speaking = speaking or translator(None)
    context = {
        **speaking.template_values(),
        "brand": mailbox.display_name,
        "name": to_name,
        "url": url,
        "code": format_code(code),
        "code_url": f"{portal_url(settings, mailbox)}/code",
        "minutes": minutes,
    }
    return link_email(
        settings,
        sender=mail_address(mailbox.display_name, mailbox.address),
        to=mail_address(to_name, to_email),
        subject=speaking.gettext("Your sign-in link for %(brand)s") % {"brand": mailbox.display_name},
        message_id=f"<{message_id}>" if message_id else make_msgid(domain=mailbox.domain),
        template=SIGNIN,
        context=context,
        now=now,
    )


def link_email(
    settings: Settings,
    *,
    sender: Address,
    to: Address,
    subject: str,
    message_id: str,
    template: str,
    context: dict[str, Any],
    now: datetime | None = None,
) -> EmailMessage:
    """An automatic email carrying a link, its text and HTML parts from `mail/<template>.*`.

    The sign-in email and the request confirmation share it.
    """
    email = new_email()
    email["From"] = sender
    email["To"] = to
    email["Subject"] = subject
    email["Date"] = format_datetime(now or utcnow())
    email["Message-ID"] = message_id
    email["Auto-Submitted"] = "auto-generated"
    email["X-Auto-Response-Suppress"] = "All"
    email["X-Wicket-Loop"] = settings.loop_token
    text = _templates().get_template(f"mail/{template}.txt").render(context)
    text_and_html(email, text, _templates().get_template(f"mail/{template}.html").render(context))
    return email


def _signin_draft(contact_id: int | None, email: str, name: str, return_path: str | None) -> Draft:
    return Draft(
        template=SIGNIN,
        context={},
        to_name=name,
        to_email=email,
        reply_to="",
        automatic=True,
        for_customer=True,
        link_contact_id=contact_id,
        return_path=return_path,
    )


def queue_signin_email(
    session: Session,
    contact: Contact,
    *,
    mailbox: Mailbox,
    ticket: Ticket | None = None,
    return_path: str | None = None,
) -> None:
    """Queue a sign-in email to `contact`'s address on file; its link is issued when it is sent."""
    draft = _signin_draft(contact.id, contact.email, contact.name, return_path)
    queue_draft(session, mailbox=mailbox, ticket=ticket, kind=SIGNIN, draft=draft, envelope_from=mailbox.address)


def prepare_signin_draft(session: Session, settings: Settings, row: OutboxMessage) -> Prepared:
    """The sign-in email for a queued draft, issuing its link (valid from now) in `session`."""
    assert row.draft is not None, "only drafts are rendered"
    draft = Draft(**row.draft)
    assert draft.link_contact_id is not None, "a sign-in email signs someone in"
    mailbox = session.get_one(Mailbox, row.mailbox_id)
    contact = session.get_one(Contact, draft.link_contact_id)
    ticket = session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
    retire_earlier_link(session, row)
    issued = issue_link(
        session, settings, contact, ticket=ticket, purpose=LinkPurpose.SIGNIN, return_path=draft.return_path
    )
    build = partial(
        compose_signin_email,
        settings,
        mailbox,
        to_email=draft.to_email,
        to_name=draft.to_name,
        url=issued.url(portal_url(settings, mailbox)),
        code=issued.code,
        minutes=settings.signin_link_ttl_minutes,
        message_id=row.rfc_message_id,
        speaking=mail_translator(contact, mailbox),
    )
    return Prepared(build, issued)


def rehearse_signin_email(email: str, return_path: str | None) -> None:
    """Do the request-time work of a sign-in email for an unknown address, and throw it away.

    `/login` answers unknown addresses with the same words and about the same work: the
    draft a known address gets is built the same way, but nothing is stored or sent.
    """
    draft_values(_signin_draft(None, email, "", return_path))
