"""The `parse_email` entry point: raw message bytes to one `ParsedEmail`, never raising.

Before the bytes are parsed, charset labels whose codecs decode in quadratic time
(punycode, idna) are renamed; they are then parsed once into the tree mail-parser builds
(headers only when the nesting is too deep to walk), multiparts whose delimiter lines do
not use their declared boundary are split by the one they use (`boundaries`), and the MIME
structure defects mail-parser reports, over-long header lines and missing or invalid
Message-IDs become readable defect notes. The pieces are read by the sibling modules
(`headers`, `bodies`, `reports`) and split into new and quoted text and any inline or
attached forward by `gateway.mail.quotes` and `gateway.mail.forwards`, then assembled into
the frozen `ParsedEmail`. Any exception escaping all that still yields a `ParsedEmail`,
holding the raw text and an "unparseable message" defect.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from urllib.parse import unquote

from gateway.mail.addresses import Address
from gateway.mail.charsets import mixed_decode, storable
from gateway.mail.forwards import ForwardedOriginal, find_inline_forward, is_forward_subject
from gateway.mail.parse.bodies import (
    ParsedAttachment,
    _attached_forward,
    _attachment,
    _body_text,
    _walk,
)
from gateway.mail.parse.boundaries import recover_boundaries
from gateway.mail.parse.containers import unpack_containers
from gateway.mail.parse.display import DEFAULT_MAX_BYTES, NO_HTML, DisplayHtml, display_html
from gateway.mail.parse.evidence import message_charsets
from gateway.mail.parse.headers import (
    Headers,
    _addresses,
    _date,
    _headers,
    _message_ids,
    _sender,
    normalize_message_id,
)
from gateway.mail.parse.recovery import recover_headers
from gateway.mail.parse.reports import DeliveryReport, _delivery_report
from gateway.mail.quotes import split_reply

_MAX_HEADER_LINE = 998
_HEADER_END = re.compile(rb"\n\r?\n")
_SLOW_CHARSET = re.compile(rb"""(charset\*?\s*=\s*["']?|=\?)(punycode|idna)\b""", re.I)
_CID = re.compile(r"""cid:([^\s"'<>)]+)""", re.I)
_MIME_DEFECTS = {
    "CloseBoundaryNotFoundDefect": "unterminated multipart",
    "StartBoundaryNotFoundDefect": "multipart boundary never found",
    "NoBoundaryInMultipartDefect": "multipart without boundary",
    "MultipartInvariantViolationDefect": "multipart without parts",
    "FirstHeaderLineIsContinuationDefect": "header section starts with a continuation line",
    "MissingHeaderBodySeparatorDefect": "malformed header line",
    "MisplacedEnvelopeHeaderDefect": "misplaced envelope header",
}
_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """One inbound message as Wicket reads it.

    Ids come without angle brackets; `subject` is decoded onto one line; `date` is aware
    UTC (None if missing or invalid); `text` is the text/plain body, or text derived from
    the HTML when there is none; `html` is the HTML as sent (unsanitized) and `display`
    the same sanitized for readers (or too large to show); `reply_text` + `quoted_text` ==
    `text`; `defects` says in words what was malformed or repaired.
    """

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    sender: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    date: datetime | None
    headers: Headers
    text: str
    html: str | None
    display: DisplayHtml
    reply_text: str
    quoted_text: str
    attachments: tuple[ParsedAttachment, ...]
    forwarded: ForwardedOriginal | None
    delivery_report: DeliveryReport | None
    defects: tuple[str, ...]

    @property
    def malformed(self) -> bool:
        return bool(self.defects)

    @property
    def sender_unclear(self) -> bool:
        """From gave no valid address: `sender` came from Sender or Reply-To, or is empty."""
        return any(defect.startswith("sender unclear") for defect in self.defects)


def parse_email(raw: bytes, *, max_display_html: int = DEFAULT_MAX_BYTES) -> ParsedEmail:
    """Parse raw message bytes; never raises, a broken message yields defects instead.

    HTML over `max_display_html` bytes is not sanitized for display (`display.too_large`).
    """
    try:
        return _parse(bytes(raw), max_display_html)
    except Exception as error:  # the last line of defence: bad mail never crashes ingest
        text = mixed_decode(raw).replace("\x00", "\ufffd") if isinstance(raw, bytes) else ""
        return ParsedEmail(
            message_id=None, in_reply_to=(), references=(), subject="", sender=None,
            reply_to=(), to=(), cc=(), date=None, headers=Headers(()), text=text, html=None,
            display=NO_HTML, reply_text=text, quoted_text="", attachments=(), forwarded=None, delivery_report=None,
            defects=(f"unparseable message ({type(error).__name__})",),
        )  # fmt: skip


def _parse(raw: bytes, max_display_html: int) -> ParsedEmail:
    notes: list[str] = []
    raw = recover_headers(_refuse_slow_charsets(raw, notes), notes)
    try:  # the tree exactly as mail-parser's parse_from_bytes builds it
        message = email.message_from_bytes(raw)
        recover_boundaries(message, notes)
        notes.extend(_mime_defects(message))
    except RecursionError:  # nesting too deep to walk: keep what the headers say
        message = BytesParser(policy=compat32).parsebytes(raw, headersonly=True)
        notes.append("multipart nesting too deep, body not read")
    if _has_long_header_line(raw):
        notes.append(f"header line over {_MAX_HEADER_LINE} characters")
    charsets = message_charsets(message)
    headers, raw_headers = _headers(message, notes, charsets)
    subject = " ".join(headers.get("Subject", "").split())
    sender = _sender(raw_headers, headers, notes)
    message_id = normalize_message_id(headers.get("Message-ID") or "")
    if "Message-ID" not in headers:
        notes.append("missing Message-ID")
    elif message_id is None:
        notes.append("invalid Message-ID")

    parts = _walk(message, notes, charsets)
    html = "\n".join(parts.html) if parts.html else None
    text = _body_text(parts, html)
    cids = {unquote(cid).lower() for cid in _CID.findall(html)} if html else set()
    attachments, packed_text = unpack_containers(
        tuple(_attachment(part, index, cids, notes) for index, part in enumerate(parts.files, 1)), notes
    )
    if packed_text and not text.strip():  # Outlook put the whole message in winmail.dat
        text = packed_text

    reply_text, quoted_text = split_reply(text)
    forwarded = _attached_forward(parts, subject, text) or find_inline_forward(reply_text, subject)
    if forwarded is None and quoted_text and is_forward_subject(subject):
        forwarded = find_inline_forward(quoted_text, subject)
        if forwarded is not None:  # an Outlook forward: the forwarded mail is the content
            reply_text, quoted_text = text, ""

    return ParsedEmail(
        message_id=message_id,
        in_reply_to=_message_ids(headers.get_all("In-Reply-To")),
        references=_message_ids(headers.get_all("References")),
        subject=subject,
        sender=sender,
        reply_to=_addresses(raw_headers, "Reply-To", notes),
        to=_addresses(raw_headers, "To", notes),
        cc=_addresses(raw_headers, "Cc", notes),
        date=_date(raw_headers, notes),
        headers=headers,
        text=text,
        html=html,
        display=display_html(html, max_display_html),
        reply_text=reply_text,
        quoted_text=quoted_text,
        attachments=attachments,
        forwarded=forwarded,
        delivery_report=_delivery_report(parts, sender, subject, headers, text),
        defects=tuple(dict.fromkeys(storable(note) for note in notes)),  # notes quote header text
    )


def _refuse_slow_charsets(raw: bytes, notes: list[str]) -> bytes:
    """Rename punycode/idna charset labels: mail-parser's address parser and the stdlib
    decode encoded words and parameters with the declared codec, and those two decode in
    quadratic time, so a big header would stall the worker."""
    lowered = raw.lower()  # two literal searches are far faster than the regex on every mail
    if (b"punycode" not in lowered and b"idna" not in lowered) or not _SLOW_CHARSET.search(raw):
        return raw
    notes.append("punycode/idna charset label refused")
    return _SLOW_CHARSET.sub(rb"\1x-refused-\2", raw)


def _mime_defects(message: Message) -> list[str]:
    """Readable notes for the structure defects the stdlib parser recorded on each part,
    the same defects (by class name, in `walk()` order) mail-parser reports."""
    return [
        _MIME_DEFECTS.get(name) or _WORD_START.sub(" ", name).lower()
        for part in message.walk()
        for name in (type(defect).__name__ for defect in part.defects)
    ]


def _has_long_header_line(raw: bytes) -> bool:
    """RFC 5322 caps a line at 998 characters; only the header section is checked."""
    end = _HEADER_END.search(raw)
    head = raw[: end.start()] if end else raw
    return any(
        len(line) > _MAX_HEADER_LINE and len(line.rstrip(b"\r")) > _MAX_HEADER_LINE
        for line in head.split(b"\n")
    )
