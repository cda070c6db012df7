"""Building outbound emails: headers that thread, branded text and HTML parts, the marker.

`compose` turns a template name and its context into a finished `EmailMessage` for one
recipient: From is the mailbox under its brand name (the mailbox's brand columns, falling
back to its name and the colour settings), Reply-To the signed reply address the caller
chose, the Message-ID lives under the mailbox domain, In-Reply-To and References come
from the thread (gateway/outbound/threads.py), Thread-Topic/Thread-Index keep Outlook
threading, and the subject carries the `[#ref]` tag. Files go in as real attachments,
inline pictures beside the HTML (gateway/outbound/files.py). Every display name Wicket
writes goes through `display_name`, so a stranger's name can never read as (part of) an
address. Every email carries the loop header; automatic ones also say `Auto-Submitted:
auto-replied`. Both parts are rendered from `templates/mail/<name>` and end with the
ticket marker, and with the "View this ticket" link and code when given.
"""

from __future__ import annotations

import base64
import re
import secrets
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from gateway.directory.branding import portal_url
from gateway.i18n import Translator, choose_language, translator
from gateway.models import Contact, Mailbox, Ticket, utcnow
from gateway.outbound.files import NO_FILES, OutgoingFiles, attach
from gateway.outbound.mime import new_email, text_and_html
from gateway.settings import Settings
from gateway.tickets.markers import subject_tag, ticket_marker
from gateway.tickets.satisfaction import RatingLinks

if TYPE_CHECKING:  # threads.py reads CUSTOMER_KINDS from here
    from gateway.outbound.threads import Thread

DISPLAY_NAME_LIMIT = 64  # one person's name, as Wicket writes it into a header
HEADER_NAME_LIMIT = 128  # a whole display name, e.g. "<customer> via <brand>"
# RFC 5322 specials but the dot (names like "J. Doe"): unquoted, each can end or split an address.
_NAME_SPECIALS = re.compile(r'[()<>\[\]:;@\\,"]')
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


class OutboundKind(StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"
    AGENT_REPLY = "agent_reply"
    NOTIFICATION = "notification"
    RESOLVED = "resolved"
    COLLEAGUE_COPY = "colleague_copy"  # another agent's reply, for the agents following the ticket
    AGENT_NOTICE = "agent_notice"  # an agent's emailed reply that went nowhere, and why
    AUTO_RESOLVED = "auto_resolved"  # the customer is told a pending ticket was resolved
    DIGEST = "digest"  # an agent's daily digest


CUSTOMER_KINDS = (
    OutboundKind.ACKNOWLEDGEMENT, OutboundKind.AGENT_REPLY, OutboundKind.RESOLVED, OutboundKind.AUTO_RESOLVED
)


@dataclass(frozen=True, slots=True)
class LinkBlock:
    """The magic link, its code and its lifetime, as the templates show them."""

    url: str
    code: str
    minutes: int


def _paragraphs(text: str) -> Markup:
    """Plain text as escaped HTML paragraphs with line breaks kept."""
    blocks = [b.strip("\n") for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    lines = (Markup("<br>\n").join(escape(line) for line in block.split("\n")) for block in blocks)
    return Markup("\n").join(Markup("<p>{}</p>").format(line) for line in lines)


@cache
def _templates() -> Environment:
    environment = mail_templates("templates/mail")
    environment.filters["paragraphs"] = _paragraphs
    return environment


def mail_templates(folder: str, *, trim: bool = True) -> Environment:
    """A Jinja environment for mail templates under `folder`, speaking through a `Translator`.

    English is installed as the default; each render passes the reader's translator's
    `template_values()`, which take the place of the default for that render.
    """
    environment = Environment(
        loader=PackageLoader("gateway.outbound", folder),
        autoescape=select_autoescape(["html"]),
        trim_blocks=trim,
        lstrip_blocks=trim,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_null_translations()  # type: ignore[attr-defined]
    return environment


def mail_translator(contact: Contact | None, mailbox: Mailbox) -> Translator:
    """The language and time zone a customer reads mail in: theirs, else the mailbox's."""
    chosen = choose_language(contact.language if contact else None, None, mailbox.language)
    return translator(chosen, contact.time_zone if contact else None)


def render_parts(template: str, values: dict[str, Any]) -> tuple[str, str]:
    """The text and HTML parts of mail template `template` (for mail that is not about one ticket)."""
    environment = _templates()
    values = {**translator(None).template_values(), **values}  # agents read English
    return (
        environment.get_template(f"{template}.txt").render(values),
        environment.get_template(f"{template}.html").render(values),
    )


def one_line(value: str) -> str:
    """Header-safe text: whitespace (line breaks included) folded to single spaces."""
    return " ".join(value.split())


def display_name(value: str, limit: int = DISPLAY_NAME_LIMIT) -> str:
    """`value` as a display name that reads as a name and nothing else, at most `limit` long.

    Names come from strangers (a customer's From header), and a folded header can lose the
    quotes around a long name (Python 3.11's folder does), so no quoting is relied on: the
    address syntax's specials, encoded-word markers (a literal `=?...?=` in a name is
    decoded by the reader), control and format characters are removed, after NFKC has
    turned look-alikes such as a full-width `＠` into the characters they imitate.
    """
    text = value[: limit * 4]  # bounded work for any input
    if not (text.isascii() and text.isprintable()):  # printable ASCII has nothing to normalize
        text = "".join(
            "" if category == "Cf" else " " if category[0] in "CZ" else character
            for character in unicodedata.normalize("NFKC", text)
            for category in (unicodedata.category(character),)
        )
    text = _NAME_SPECIALS.sub(" ", text)
    while "=?" in text or "?=" in text:
        text = text.replace("=?", "?").replace("?=", "?")
    return " ".join(text.split())[:limit].rstrip()


def mail_address(name: str, email: str) -> Address:
    """`name <email>` for a header; ValueError when the address cannot be written or reached."""
    if email.rpartition("@")[2].lower().split(".")[-1] == "invalid":
        raise ValueError(f"{email!r} is in the reserved .invalid domain")
    try:
        return Address(display_name(name, HEADER_NAME_LIMIT), addr_spec=email)
    except (ValueError, IndexError, HeaderParseError) as error:
        raise ValueError(f"{email!r} cannot be written into a header: {error}") from None


def new_message_id(mailbox: Mailbox) -> str:
    """A fresh Message-ID under the mailbox's domain, without angle brackets."""
    return make_msgid(domain=mailbox.domain).strip("<>")


def thread_index(ticket: Ticket, now: datetime) -> str:
    """Outlook's Thread-Index: a header block fixed per ticket plus one timed child block."""
    root = int((ticket.created_at - _FILETIME_EPOCH).total_seconds() * 10_000_000)
    header = b"\x01" + (root >> 24).to_bytes(5, "big") + uuid.uuid5(uuid.NAMESPACE_URL, ticket.public_id).bytes
    delta = max(0, int((now - _FILETIME_EPOCH).total_seconds() * 10_000_000) - (root >> 24 << 24))
    code = (delta >> 18) & 0x7FFFFFFF if delta < 1 << 49 else 0x80000000 | ((delta >> 23) & 0x7FFFFFFF)
    child = code.to_bytes(4, "big") + bytes([secrets.randbits(8)])
    return base64.b64encode(header + child).decode()


def compose(
    settings: Settings,
    mailbox: Mailbox,
    ticket: Ticket,
    *,
    to: Address,
    template: str,
    context: dict[str, Any],
    reply_to: str,
    thread: Thread,
    automatic: bool,
    message_id: str,
    from_name: str | None = None,
    link: LinkBlock | None = None,
    shown_to: Sequence[Address] = (),
    cc: Sequence[Address] = (),
    files: OutgoingFiles = NO_FILES,
    rating: RatingLinks | None = None,
    speaking: Translator | None = None,
) -> EmailMessage:
    """One finished email for one recipient, under the Message-ID it was queued with.

    `to` is the recipient (the marker is signed for it); the To and Cc headers show
    `shown_to` and `cc` when given, so everyone on a ticket sees one conversation.
    """
    now = utcnow()
    subject = one_line(f"{'Re: ' if thread.in_reply_to else ''}{subject_tag(ticket)} {ticket.subject}")
    brand = mailbox.display_name
    speaking = speaking or translator(None)
    values = {
        **context,
        **speaking.template_values(),
        "brand": brand,
        "ticket": ticket,
        "tag": subject_tag(ticket),
        "marker": ticket_marker(settings.keys[0], mailbox, ticket, to.addr_spec),
        "link": link,
        "rating": rating,
        "code_url": f"{portal_url(settings, mailbox)}/code",
        "brand_color": mailbox.primary_color or settings.brand_primary_color,
        "brand_logo_url": mailbox.logo_url or settings.brand_logo_url,
        "subject": subject,
        "inline_images": files.inline_images,
        "downloads": files.downloads,
        "attached": [f.filename for f in files.attached],
        "download_hours": settings.agent_download_ttl_hours,
    }
    email = new_email()
    email["From"] = mail_address(from_name or brand, mailbox.address)
    email["To"] = list(shown_to) or to
    if cc:
        email["Cc"] = list(cc)
    email["Reply-To"] = reply_to
    email["Subject"] = subject
    email["Date"] = format_datetime(now)
    email["Message-ID"] = f"<{message_id}>"
    if thread.in_reply_to:
        email["In-Reply-To"] = f"<{thread.in_reply_to}>"
        email["References"] = " ".join(f"<{i}>" for i in thread.references)
    email["Thread-Topic"] = one_line(ticket.subject)
    email["Thread-Index"] = thread_index(ticket, now)
    email["X-Wicket-Loop"] = settings.loop_token
    if automatic:
        email["Auto-Submitted"] = "auto-replied"
        email["X-Auto-Response-Suppress"] = "All"
    text = _templates().get_template(f"{template}.txt").render(values)
    text_and_html(email, text, _templates().get_template(f"{template}.html").render(values))
    attach(email, files)
    return email
