"""Portal replies and new requests, taken in through the same door as email.

What a contact writes in the portal becomes a real RFC 5322 message: From the contact, To
the mailbox, a fresh Message-ID, the attachments as MIME parts. A reply also carries
In-Reply-To/References of the conversation and goes to the ticket's signed reply address
as envelope recipient, so threading rule 1 puts it on that ticket whatever else happens.
The message is stored as an InboundEmail row (`source="portal"`) in the caller's
transaction, already claimed (status processing, one attempt, a lease), so the portal can
process it at once with `Processor.process`; if that fails or the portal dies first, the
lease runs out and the background processor retries it like any other mail. Agents are
therefore notified, tickets reopened and acknowledgements sent exactly as for email.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy.orm import Session

from gateway.inbound.store import header_message_id
from gateway.models import Contact, InboundEmail, InboundStatus, Mailbox, Ticket, utcnow
from gateway.outbound.compose import HEADER_NAME_LIMIT, display_name, one_line
from gateway.outbound.customer_mail import customer_reply_address
from gateway.outbound.threads import conversation_thread
from gateway.settings import Settings
from gateway.tickets.markers import subject_tag

SOURCE = "portal"


@dataclass(frozen=True, slots=True)
class Upload:
    """A file a contact attached in the portal (already checked for size and type)."""

    filename: str
    content_type: str
    data: bytes


def _address(name: str, email: str) -> Address:
    try:
        return Address(display_name(name, HEADER_NAME_LIMIT), addr_spec=email)
    except (ValueError, IndexError):
        return Address(addr_spec=email)


def portal_email(
    *,
    contact: Contact,
    mailbox: Mailbox,
    subject: str,
    text: str,
    uploads: Sequence[Upload] = (),
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
) -> EmailMessage:
    """The email a contact would have sent to say `text` (with `uploads` attached)."""
    email = EmailMessage()
    email["From"] = _address(contact.name, contact.email)
    email["To"] = _address(mailbox.display_name, mailbox.address)
    email["Subject"] = one_line(subject)[:500]
    email["Date"] = format_datetime(utcnow())
    email["Message-ID"] = make_msgid(idstring="portal", domain=mailbox.domain)
    if in_reply_to:
        email["In-Reply-To"] = f"<{in_reply_to}>"
        email["References"] = " ".join(f"<{reference}>" for reference in references)
    email.set_content(text.replace("\r\n", "\n"))
    for upload in uploads:
        maintype, _, subtype = upload.content_type.partition("/")
        email.add_attachment(upload.data, maintype=maintype, subtype=subtype, filename=upload.filename)
    return email


def store_claimed(
    session: Session, settings: Settings, email: EmailMessage, *, mail_from: str, rcpt_to: str, peer: str
) -> InboundEmail:
    """Store `email` as an InboundEmail row claimed for immediate processing by the caller."""
    raw = email.as_bytes()
    now = utcnow()
    row = InboundEmail(
        raw=raw,
        sha256=hashlib.sha256(raw).hexdigest(),
        message_id=header_message_id(raw),
        mail_from=mail_from[:320],
        rcpt_tos=[rcpt_to],
        peer=peer[:100],
        source=SOURCE,
        received_at=now,
        status=InboundStatus.PROCESSING,
        attempts=1,
        next_attempt_at=None,
        lease_expires_at=now + timedelta(seconds=settings.process_lease_seconds),
    )
    session.add(row)
    session.flush()
    return row


def submit_request(
    session: Session,
    settings: Settings,
    *,
    contact: Contact,
    mailbox: Mailbox,
    subject: str,
    text: str,
    uploads: Sequence[Upload] = (),
    peer: str = "portal",
) -> InboundEmail:
    """A new request from the portal: mail to the mailbox, as if the contact had written it."""
    email = portal_email(contact=contact, mailbox=mailbox, subject=subject, text=text, uploads=uploads)
    return store_claimed(session, settings, email, mail_from=contact.email, rcpt_to=mailbox.address, peer=peer)


def submit_reply(
    session: Session,
    settings: Settings,
    *,
    contact: Contact,
    ticket: Ticket,
    text: str,
    uploads: Sequence[Upload] = (),
    peer: str = "portal",
) -> InboundEmail:
    """A reply from the portal: mail to the ticket's signed reply address, continuing its thread."""
    mailbox = session.get_one(Mailbox, ticket.mailbox_id)
    thread = conversation_thread(session, ticket, for_customer=True)
    email = portal_email(
        contact=contact,
        mailbox=mailbox,
        subject=f"Re: {subject_tag(ticket)} {ticket.subject}",
        text=text,
        uploads=uploads,
        in_reply_to=thread.in_reply_to,
        references=thread.references,
    )
    rcpt_to = customer_reply_address(settings, mailbox, ticket)
    return store_claimed(session, settings, email, mail_from=contact.email, rcpt_to=rcpt_to, peer=peer)
