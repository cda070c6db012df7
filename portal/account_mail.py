"""The notice a contact gets when the password of their account is set, changed or removed.

A password is a second way into the account, so the owner hears of every change at the
address on file, even when the change was made by someone holding a stolen session. The
notice says what happened, when, and from which network address, and that the other
devices were signed out; it holds no link and no code (it must never become a way in
itself) and tells the owner to reply if it was not them. `queue_password_notice` queues
it through the outbox in the caller's transaction, so a change that rolls back sends
nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy.orm import Session

from gateway.directory.branding import mailbox_for_host
from gateway.models import Contact, Mailbox
from gateway.outbound.compose import mail_address
from gateway.outbound.outbox import enqueue
from gateway.settings import Settings

log = logging.getLogger(__name__)

KIND = "password-notice"
WHAT = {"set": "set", "changed": "changed", "remove": "removed"}


def compose_password_notice(
    settings: Settings, mailbox: Mailbox, contact: Contact, *, what: str, when: datetime, ip: str
) -> EmailMessage:
    brand = mailbox.display_name
    done = WHAT[what]
    greeting = f"Hello {contact.name}," if contact.name else "Hello,"
    text = (
        f"{greeting}\n\n"
        f"The password of your {brand} account ({contact.email}) was {done} on "
        f"{when.strftime('%d %B %Y at %H:%M')} UTC, from the network address {ip}.\n"
        "Your other devices were signed out.\n\n"
        "If this was you, there is nothing more to do.\n\n"
        "If it was not you, reply to this email straight away and we will help you secure "
        "your account. Do not share sign-in emails or codes with anyone.\n\n"
        f"-- {brand}\n"
    )
    message = EmailMessage()
    message["From"] = mail_address(brand, mailbox.address)
    message["To"] = mail_address(contact.name, contact.email)
    message["Subject"] = f"Your {brand} password was {done}"
    message["Date"] = format_datetime(when)
    message["Message-ID"] = make_msgid(domain=mailbox.domain)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Wicket-Loop"] = settings.loop_token
    message.set_content(text)
    return message


def queue_password_notice(
    session: Session,
    settings: Settings,
    contact: Contact,
    *,
    host: str | None,
    what: str,
    when: datetime,
    ip: str,
) -> bool:
    """Queue the notice to the contact's address on file; False when no mailbox can send it."""
    mailbox = mailbox_for_host(session, host)
    if mailbox is None:
        log.warning("no mailbox is configured, so no password notice can be sent")
        return False
    notice = compose_password_notice(settings, mailbox, contact, what=what, when=when, ip=ip)
    enqueue(session, mailbox=mailbox, to=[contact.email], email=notice, kind=KIND)
    return True
