"""The sign-in email: which mailbox sends it, what it says, and queueing it in the outbox.

`default_mailbox` is the one place that decides which brand (mailbox) a portal request
belongs to: the mailbox whose custom domain is the Host, else the first one.
`compose_signin_email` renders the text and HTML parts from `gateway/templates/mail/signin.*`
with the link URL and the code; `send_signin_link` issues a sign-in link and queues its
email in the caller's transaction, so a rolled-back request sends nothing. The URL and code live only in the message body.
"""

from __future__ import annotations

from email.message import EmailMessage
from datetime import datetime
from email.utils import formataddr, format_datetime, make_msgid
from functools import lru_cache

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.branding import mailbox_for_host, portal_url
from gateway.models import Contact, Mailbox, Ticket, utcnow
from gateway.outbox import enqueue
from gateway.settings import Settings
from gateway.tokens import (
    IssuedLink,
    LinkPurpose,
    code_digest,
    format_code,
    issue_link,
    new_code,
    new_token,
    token_digest,
)


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("gateway", "templates"),
        autoescape=select_autoescape(["html"]),
        keep_trailing_newline=True,
    )


async def default_mailbox(session: AsyncSession, host: str | None = None) -> Mailbox | None:
    """The mailbox (brand) for a portal request on `host` (see `gateway.branding.mailbox_for_host`)."""
    return await mailbox_for_host(session, host)


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
) -> EmailMessage:
    """The finished sign-in message (From, To, Subject, Message-ID, text and HTML parts)."""
    context = {
        "brand": mailbox.display_name,
        "name": to_name,
        "url": url,
        "code": format_code(code),
        "code_url": f"{portal_url(settings, mailbox)}/code",
        "minutes": minutes,
    }
    email = EmailMessage()
    email["From"] = formataddr((mailbox.display_name, mailbox.address))
    email["To"] = formataddr((to_name, to_email)) if to_name else to_email
    email["Subject"] = f"Your sign-in link for {mailbox.display_name}"
    email["Date"] = format_datetime(now or utcnow())
    email["Message-ID"] = make_msgid(domain=mailbox.domain)
    email["Auto-Submitted"] = "auto-generated"
    email["X-Auto-Response-Suppress"] = "All"
    email["X-Wicket-Loop"] = settings.loop_token
    email.set_content(_templates().get_template("mail/signin.txt").render(context))
    email.add_alternative(_templates().get_template("mail/signin.html").render(context), subtype="html")
    return email


async def send_signin_link(
    session: AsyncSession,
    settings: Settings,
    contact: Contact,
    *,
    mailbox: Mailbox,
    ticket: Ticket | None = None,
    return_path: str | None = None,
    now: datetime | None = None,
) -> IssuedLink:
    """Issue a sign-in link for `contact` and queue its email to the address on file."""
    issued = await issue_link(
        session, settings, contact, ticket=ticket, purpose=LinkPurpose.SIGNIN, now=now, return_path=return_path
    )
    email = compose_signin_email(
        settings,
        mailbox,
        to_email=contact.email,
        to_name=contact.name,
        url=issued.url(portal_url(settings, mailbox)),
        code=issued.code,
        minutes=settings.signin_link_ttl_minutes,
        now=now,
    )
    await enqueue(session, mailbox=mailbox, to=[contact.email], email=email, kind="signin", ticket=ticket)
    return issued


def rehearse_signin_email(settings: Settings, mailbox: Mailbox | None, email: str) -> None:
    """Do the work of a sign-in email for an unknown address, and throw it away.

    `/login` answers unknown addresses with the same words and the same amount of work:
    the same random draws, HMACs and rendering, but nothing stored and nothing sent.
    """
    key = settings.keys[0]
    token, code = new_token(), new_code()
    _digests = (token_digest(key, token), code_digest(key, code))
    if mailbox is not None:
        compose_signin_email(
            settings,
            mailbox,
            to_email=email,
            to_name="",
            url=f"{portal_url(settings, mailbox)}/l/{token}",
            code=code,
            minutes=settings.signin_link_ttl_minutes,
        )
