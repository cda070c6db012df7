"""Raw message bytes to a `ParsedEmail`: the one place that reads what a sender sent.

mail-parser (`mailparser.parse_from_bytes`) is the parser of record: it parses the bytes
once into the stdlib message tree that everything here walks, reports the MIME structure
defects, and its address and date parsers read From/To/Cc/Reply-To and Date. Where it
loses information the stdlib `email` objects it built are read directly: body text and
header words are decoded through `gateway.charsets` (mail-parser drops what the declared
charset cannot decode), attachment names are decoded from their RFC 2231/2047 parameters,
attached `message/rfc822` parts stay whole (forwards) instead of being merged into the
body, and `message/delivery-status` parts become a `DeliveryReport`. Quoted history and
inline forwards are found by `gateway.quotes`. `parse_email` never raises.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import errors
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses
from typing import overload
from urllib.parse import unquote

import mailparser
from mailparser import MailParser
from mailparser.dates import parse_mail_date
from mailparser.exceptions import MailParserRecursionError
from mailparser.utils import decode_base64_payload, get_addresses

from gateway.charsets import (
    decode_bytes,
    decode_header_value,
    decode_parameter,
    mixed_decode,
    wire_bytes,
)
from gateway.quotes import (
    Address,
    ForwardedOriginal,
    find_inline_forward,
    html_to_text,
    is_forward_subject,
    split_reply,
)

__all__ = [
    "Address",
    "DeliveryReport",
    "ForwardedOriginal",
    "Headers",
    "ParsedAttachment",
    "ParsedEmail",
    "has_empty_return_path",
    "is_bounce_subject",
    "is_mailer_daemon",
    "normalize_message_id",
    "parse_email",
]

_ADDRESS_ATTRIBUTES = {"From": "from_", "To": "to", "Cc": "cc", "Reply-To": "reply_to"}
_MAX_HEADER_LINE = 998
_MAX_MESSAGE_ID = 998
_MAX_FILENAME = 200
_HEADER_END = re.compile(rb"\n\r?\n")
_EMPTY_GROUP = re.compile(r"\s*[^:<>@\s][^:<>@]*:\s*;\s*$")  # "undisclosed-recipients:;"
_SLOW_CHARSET = re.compile(rb"""(charset\*?\s*=\s*["']?|=\?)(punycode|idna)\b""", re.I)
_BRACKETED = re.compile(r"<([^<>]*)>")
_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)")
_BOUNCE_SUBJECT = re.compile(
    r"\s*(?:undeliverable|undelivered mail|undeliverable mail|delivery status notification"
    r"|mail delivery failed|mail delivery failure|delivery failure|returned mail|failure notice"
    r"|non[- ]?delivery|unzustellbar|nicht zustellbar|non remis|delivery has failed)",
    re.I,
)
_DAEMONS = frozenset({"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster"})
_QUOTED_MESSAGE_ID = re.compile(r"^[ \t>]*Message-ID:[ \t]*(<[^>\r\n]+>|\S+)", re.I | re.M)
_LONE_ADDRESS = re.compile(r"^[ \t]*<?([^\s<>@:;,]+@[^\s<>@:;,]+?)>?:?[ \t]*$", re.M)
_TRANSIENT = re.compile(r"\b(?:temporar|delayed|will (?:retry|try again))", re.I)
_CID = re.compile(r"""cid:([^\s"'<>)]+)""", re.I)
_FILENAME_JUNK = re.compile(r"[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_MIME_TYPES = mimetypes.MimeTypes()  # the stdlib's built-in table only, same on every host
_EXTENSIONS = {
    "text/calendar": ".ics",
    "application/ics": ".ics",
    "message/delivery-status": ".txt",
}
_BASE64_DEFECTS = (
    errors.InvalidBase64PaddingDefect,
    errors.InvalidBase64CharactersDefect,
    errors.InvalidBase64LengthDefect,
)
_MAILPARSER_OWN_DEFECTS = frozenset(
    {
        "CharsetDecodeDefect",
        "MimeHeaderDefect",
        "AddressHeaderDefect",
        "DateHeaderDefect",
        "ReceivedHeaderDefect",
    }
)
_MIME_DEFECTS = {
    "CloseBoundaryNotFoundDefect": "unterminated multipart",
    "StartBoundaryNotFoundDefect": "multipart boundary never found",
    "NoBoundaryInMultipartDefect": "multipart without boundary",
    "MultipartInvariantViolationDefect": "multipart without parts",
    "FirstHeaderLineIsContinuationDefect": "header section starts with a continuation line",
    "MissingHeaderBodySeparatorDefect": "malformed header line",
    "MisplacedEnvelopeHeaderDefect": "misplaced envelope header",
}


class Headers:
    """Case-insensitive, multi-valued, read-only view of the decoded top-level headers."""

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items = tuple(items)
        self._index: dict[str, list[str]] = {}
        for name, value in self._items:
            self._index.setdefault(name.lower(), []).append(value)

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header `name`, or `default`."""
        values = self._index.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value of header `name`, in message order."""
        return list(self._index.get(name.lower(), ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    filename: str  # decoded, sanitized; fallback "attachment-N.<ext>"
    content_type: str  # lower-case "type/subtype"
    data: bytes
    size: int
    sha256: str  # hex
    content_id: str | None  # without angle brackets
    inline: bool  # disposition inline or referenced by cid from the HTML


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    original_message_id: str | None  # without brackets
    recipients: tuple[str, ...]  # Final-Recipient / Original-Recipient addresses
    status: str | None  # e.g. "5.1.1"
    action: str | None  # e.g. "failed"
    permanent: bool


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """One inbound message as Wicket reads it.

    Ids come without angle brackets; `subject` is decoded onto one line; `date` is aware
    UTC (None if missing or invalid); `text` is the text/plain body, or text derived from
    the HTML when there is none; `html` is the HTML as sent (unsanitized); `reply_text` +
    `quoted_text` == `text`; `defects` says in words what was malformed or repaired.
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
    reply_text: str
    quoted_text: str
    attachments: tuple[ParsedAttachment, ...]
    forwarded: ForwardedOriginal | None
    delivery_report: DeliveryReport | None
    defects: tuple[str, ...]

    @property
    def malformed(self) -> bool:
        return bool(self.defects)


@dataclass
class _Parts:
    """What a walk of one message found, before it becomes text and attachments."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    files: list[Message] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)  # attached message/rfc822 contents
    status: list[Message] = field(default_factory=list)  # message/delivery-status field groups
    returned: list[Message | str] = field(default_factory=list)  # a report's returned message


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse raw message bytes; never raises, a broken message yields defects instead."""
    try:
        return _parse(bytes(raw))
    except Exception as error:  # the last line of defence: bad mail never crashes ingest
        text = mixed_decode(raw).replace("\x00", "\ufffd") if isinstance(raw, bytes) else ""
        return ParsedEmail(
            message_id=None, in_reply_to=(), references=(), subject="", sender=None,
            reply_to=(), to=(), cc=(), date=None, headers=Headers(()), text=text, html=None,
            reply_text=text, quoted_text="", attachments=(), forwarded=None, delivery_report=None,
            defects=(f"unparseable message ({type(error).__name__})",),
        )  # fmt: skip


def normalize_message_id(value: str) -> str | None:
    """A Message-ID without angle brackets and whitespace; None when nothing usable is left."""
    candidates = [found for found in _BRACKETED.findall(value) if found.strip()] or [value]
    candidate = "".join(candidates[0].split()).strip("<>")
    return candidate if 0 < len(candidate) <= _MAX_MESSAGE_ID else None


def is_bounce_subject(subject: str) -> bool:
    """Whether a subject reads like a non-delivery notice ("Undeliverable: ...", ...)."""
    return _BOUNCE_SUBJECT.match(subject) is not None


def is_mailer_daemon(address: str) -> bool:
    """Whether an address is a mail system's own (MAILER-DAEMON, postmaster, Exchange)."""
    local = address.rpartition("@")[0] or address
    local = local.strip().lower()
    return local in _DAEMONS or local.startswith("microsoftexchange")


def has_empty_return_path(headers: Headers) -> bool:
    """Whether the message carries a null reverse path (`Return-Path: <>`)."""
    value = headers.get("Return-Path")
    return value is not None and "".join(value.split()) in ("", "<>")


def _parse(raw: bytes) -> ParsedEmail:
    notes: list[str] = []
    if _SLOW_CHARSET.search(raw):
        # mail-parser decodes bodies with the declared codec, and punycode/idna decode in
        # quadratic time: a large body labelled so would stall the worker for minutes.
        raw = _SLOW_CHARSET.sub(rb"\1x-refused-\2", raw)
        notes.append("punycode/idna charset label refused")
    parsed: MailParser | None
    try:
        parsed = mailparser.parse_from_bytes(raw)
        message = parsed.message
        notes.extend(_mime_defects(parsed.defects))
    except MailParserRecursionError:  # nesting too deep to walk: keep what the headers say
        parsed = None
        message = BytesParser(policy=compat32).parsebytes(raw, headersonly=True)
        notes.append("multipart nesting too deep, body not read")
    except Exception as error:  # mail-parser choked on something the stdlib parse survived
        parsed = None
        message = BytesParser(policy=compat32).parsebytes(raw)
        notes.append(f"mail-parser failed ({type(error).__name__}), read with the stdlib parser")
    if _has_long_header_line(raw):
        notes.append(f"header line over {_MAX_HEADER_LINE} characters")
    headers, raw_headers = _headers(message, notes)
    subject = " ".join(headers.get("Subject", "").split())
    sender = _sender(raw_headers, headers, notes, parsed)
    message_id = normalize_message_id(headers.get("Message-ID") or "")
    if "Message-ID" not in headers:
        notes.append("missing Message-ID")
    elif message_id is None:
        notes.append("invalid Message-ID")

    parts = _walk(message, notes)
    html = "\n".join(parts.html) if parts.html else None
    text = _body_text(parts, html)
    cids = {unquote(cid).lower() for cid in _CID.findall(html)} if html else set()
    attachments = tuple(
        _attachment(part, index, cids, notes) for index, part in enumerate(parts.files, 1)
    )

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
        reply_to=_addresses(raw_headers, "Reply-To", notes, parsed),
        to=_addresses(raw_headers, "To", notes, parsed),
        cc=_addresses(raw_headers, "Cc", notes, parsed),
        date=_date(raw_headers, notes, parsed),
        headers=headers,
        text=text,
        html=html,
        reply_text=reply_text,
        quoted_text=quoted_text,
        attachments=attachments,
        forwarded=forwarded,
        delivery_report=_delivery_report(parts, sender, subject, headers, text),
        defects=tuple(dict.fromkeys(notes)),
    )


def _mime_defects(reported: list[dict[str, list[str]]]) -> list[str]:
    """Readable notes for the structure defects mail-parser reports ("ClassName: doc")."""
    notes = []
    for group in reported:
        for entries in group.values():
            for entry in entries:
                name = entry.partition(":")[0]
                if name not in _MAILPARSER_OWN_DEFECTS:
                    notes.append(
                        _MIME_DEFECTS.get(name) or re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
                    )
    return notes


def _has_long_header_line(raw: bytes) -> bool:
    """RFC 5322 caps a line at 998 characters; only the header section is checked."""
    end = _HEADER_END.search(raw)
    head = raw[: end.start()] if end else raw
    return any(
        len(line) > _MAX_HEADER_LINE and len(line.rstrip(b"\r")) > _MAX_HEADER_LINE
        for line in head.split(b"\n")
    )


def _headers(message: Message, notes: list[str]) -> tuple[Headers, dict[str, list[str]]]:
    """The decoded header view, and the raw values (8-bit as surrogates) by lower-case name."""
    items = []
    raw: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        text = str(value)
        decoded, header_notes = decode_header_value(text, name)
        items.append((name, decoded))
        raw.setdefault(name.lower(), []).append(text)
        notes.extend(header_notes)
    return Headers(items), raw


def _addresses(
    raw_headers: dict[str, list[str]], name: str, notes: list[str], parsed: MailParser | None = None
) -> tuple[Address, ...]:
    """Every mailbox of every `name` header, read by mail-parser's address parser.

    mail-parser's own result is used for the usual single ASCII header; 8-bit values are
    charset-repaired first, and repeated headers all count.
    """
    values = raw_headers.get(name.lower(), [])
    if parsed is not None and len(values) == 1 and values[0].isascii():
        pairs = getattr(parsed, _ADDRESS_ATTRIBUTES[name])
    else:
        pairs = [pair for value in values for pair in _parse_addresses(value) if pair[1]]
    if not pairs and any(value.strip() and not _EMPTY_GROUP.match(value) for value in values):
        notes.append(f"unparseable {name} address")
    found = []
    for raw_name, raw_address in pairs:
        # "=?" left in a name is an encoded word mail-parser could not decode.
        display = decode_header_value(raw_name, name)[0] if "=?" in raw_name else raw_name.strip()
        address = raw_address.strip().lower()
        found.append(Address(email=address, name="" if display.lower() == address else display))
    return tuple(found)


def _parse_addresses(value: str) -> list[tuple[str, str]]:
    """mail-parser's address parser on a charset-repaired value; the stdlib's if it fails."""
    if not value.isascii():
        value = mixed_decode(wire_bytes(value))
    try:
        pairs: list[tuple[str, str]] = get_addresses(value, decode_names=True)
    except Exception:  # e.g. HeaderParseError from a corrupt encoded word in a name
        pairs = getaddresses([value])
    return pairs


def _sender(
    raw_headers: dict[str, list[str]],
    headers: Headers,
    notes: list[str],
    parsed: MailParser | None = None,
) -> Address | None:
    addresses = _addresses(raw_headers, "From", notes, parsed)
    if addresses:
        return addresses[0]
    value = headers.get("From")
    return Address(email="", name=value.strip("\"' ")) if value else None


def _date(
    raw_headers: dict[str, list[str]], notes: list[str], parsed: MailParser | None
) -> datetime | None:
    """mail-parser's reading of the first Date header, aware UTC."""
    if "date" not in raw_headers:
        return None
    date: datetime | None
    date = parsed.date if parsed is not None else parse_mail_date(raw_headers["date"][0]).value
    if date is None:
        notes.append("invalid Date header")
    return date


def _message_ids(values: list[str]) -> tuple[str, ...]:
    ids: dict[str, None] = {}
    for value in values:
        found = _BRACKETED.findall(value) or value.split()
        for candidate in found:
            normalized = normalize_message_id(candidate)
            if normalized is not None:
                ids[normalized] = None
    return tuple(ids)


def _walk(message: Message, notes: list[str]) -> _Parts:
    """Sort the parts of `message` (without descending into attached messages)."""
    parts = _Parts()
    stack: list[tuple[Message, bool]] = [(message, False)]
    while stack:
        part, report_data = stack.pop()
        content_type = part.get_content_type()
        children = _children(part)
        if content_type == "message/delivery-status" and children is not None:
            parts.status.extend(children)
        elif report_data and content_type in ("message/rfc822", "text/rfc822-headers"):
            parts.returned.append(children[0] if children else _part_text(part, notes))
        elif content_type == "message/rfc822" and children:
            parts.messages.append(children[0])
            parts.files.append(part)
        elif children is not None:
            report = content_type == "multipart/report"
            stack.extend(
                (child, report and index > 0)
                for index, child in reversed(list(enumerate(children)))
            )
        elif _is_body(part, content_type):
            text = _part_text(part, notes)
            (parts.html if content_type == "text/html" else parts.plain).append(text)
        else:
            parts.files.append(part)
    return parts


def _children(part: Message) -> list[Message] | None:
    """The sub-messages of a multipart or message/* part; None for a leaf.

    Only list payloads are read this way: get_payload() on a string first applies the
    declared charset, which raises for hostile charset names.
    """
    if not part.is_multipart():
        return None
    return [child for child in part.get_payload() if isinstance(child, Message)]


def _is_body(part: Message, content_type: str) -> bool:
    """Text meant to be read as the message (not a named or attached file)."""
    if part.get_content_maintype() == "multipart":  # a multipart the parser could not split
        return True
    return (
        content_type in ("text/plain", "text/html")
        and part.get_content_disposition() != "attachment"
        and part.get_param("filename", None, "content-disposition") is None
        and part.get_param("name", None) is None
    )


def _payload_bytes(part: Message, what: str, notes: list[str]) -> bytes:
    """The part's content with its transfer encoding undone, as leniently as mail clients do."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # the stdlib returns bogus data as-is; this is only a safety net
        data = None
    if not isinstance(data, bytes):
        return b""
    base64_defects = [defect for defect in part.defects if isinstance(defect, _BASE64_DEFECTS)]
    if base64_defects:
        notes.append(f"invalid base64 in {what}")
        if any(isinstance(defect, errors.InvalidBase64LengthDefect) for defect in base64_defects):
            # The stdlib hands back the undecoded text for a cut-off quantum.
            repaired: bytes = decode_base64_payload(data.decode("ascii", "ignore"))
            return repaired
    return data


def _part_text(part: Message, notes: list[str]) -> str:
    text, note = decode_bytes(
        _payload_bytes(part, "body text", notes), part.get_content_charset(None)
    )
    if note:
        notes.append(note)
    return text


def _body_text(parts: _Parts, html: str | None) -> str:
    """The text/plain parts, or the HTML rendered as text when they are missing or blank."""
    text = "\n".join(parts.plain)
    if html is not None and not text.strip():
        text = html_to_text(html)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")


def _attachment(part: Message, index: int, cids: set[str], notes: list[str]) -> ParsedAttachment:
    content_type = part.get_content_type()
    filename = _filename(part, notes) or f"attachment-{index}{_extension(content_type)}"
    inner = _children(part)
    data = _message_bytes(inner[0], notes) if inner else _payload_bytes(part, filename, notes)
    content_id = "".join(str(part.get("Content-ID", "")).split()).strip("<>") or None
    return ParsedAttachment(
        filename=filename,
        content_type=content_type,
        data=data,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content_id=content_id,
        inline=part.get_content_disposition() == "inline"
        or (content_id is not None and content_id.lower() in cids),
    )


def _message_bytes(message: Message, notes: list[str]) -> bytes:
    """An attached message as bytes again (the stdlib keeps it parsed, not as sent)."""
    try:
        return message.as_bytes()
    except Exception:  # nesting too deep for the generator, or a part it refuses
        notes.append("attached message could not be re-serialized")
        return b""


def _filename(part: Message, notes: list[str]) -> str:
    """The decoded (RFC 2231 or RFC 2047) file name, without paths or control characters."""
    value = part.get_param("filename", None, "content-disposition")
    if value is None:
        value = part.get_param("name", None)
    if value is None:
        return ""
    name, name_notes = decode_parameter(value, "attachment name")
    notes.extend(name_notes)
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rpartition("/")[2])
    name = "".join(char for char in name if unicodedata.category(char) != "Cc")
    name = _FILENAME_JUNK.sub("", name).strip(" .")
    if len(name) > _MAX_FILENAME:
        extension = name.rpartition(".")[2][:16] if "." in name else ""
        keep = _MAX_FILENAME - len(extension) - 1
        name = f"{name[:keep]}.{extension}" if extension else name[:_MAX_FILENAME]
    return name


def _extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type) or _MIME_TYPES.guess_extension(content_type) or ".bin"


def _attached_forward(parts: _Parts, subject: str, text: str) -> ForwardedOriginal | None:
    """The attached message when the mail forwards it (Fwd: subject, or nothing else to read)."""
    if not parts.messages or not (is_forward_subject(subject) or not text.strip()):
        return None
    inner = parts.messages[0]
    headers, raw_headers = _headers(inner, [])
    inner_parts = _walk(inner, [])
    inner_html = "\n".join(inner_parts.html) if inner_parts.html else None
    return ForwardedOriginal(
        sender=_sender(raw_headers, headers, []) or Address(email="", name=""),
        subject=" ".join(headers.get("Subject", "").split()),
        date=headers.get("Date", ""),
        text=_body_text(inner_parts, inner_html).strip(),
    )


def _delivery_report(
    parts: _Parts, sender: Address | None, subject: str, headers: Headers, text: str
) -> DeliveryReport | None:
    if parts.status:
        return _dsn_report(parts)
    daemon = sender is not None and is_mailer_daemon(sender.email)
    if is_bounce_subject(subject) and (daemon or has_empty_return_path(headers)):
        return _text_report(parts, text)
    return None


def _dsn_report(parts: _Parts) -> DeliveryReport:
    """RFC 3464: recipients, the failed (or first) recipient's status and action."""
    recipients: dict[str, None] = {}
    status = action = None
    for block in parts.status:
        for name in ("Final-Recipient", "Original-Recipient"):
            value = str(block.get(name, "")).rpartition(";")[2].strip().strip("<>").lower()
            if value:
                recipients[value] = None
        found = _STATUS.search(str(block.get("Status", "")))
        block_action = str(block.get("Action", "")).strip().lower() or None
        first = status is None and action is None
        worse = block_action == "failed" and action != "failed"
        if (found or block_action) and (first or worse):
            status, action = (found.group(1) if found else None), block_action
    return DeliveryReport(
        original_message_id=_returned_message_id(parts, ""),
        recipients=tuple(recipients),
        status=status,
        action=action,
        permanent=status.startswith("5") if status else action == "failed",
    )


def _text_report(parts: _Parts, text: str) -> DeliveryReport:
    """A bounce written for people (Exchange NDRs, qmail, exim): what the text reveals."""
    found = _STATUS.search(text)
    status = found.group(1) if found else None
    permanent = status.startswith("5") if status else _TRANSIENT.search(text) is None
    return DeliveryReport(
        original_message_id=_returned_message_id(parts, text),
        recipients=tuple(dict.fromkeys(address.lower() for address in _LONE_ADDRESS.findall(text))),
        status=status,
        action="failed" if permanent else "delayed",
        permanent=permanent,
    )


def _returned_message_id(parts: _Parts, text: str) -> str | None:
    """The bounced message's id: returned message or headers first, else the bounce text."""
    for returned in [*parts.returned, *parts.messages, text]:
        if isinstance(returned, Message):
            message_id = normalize_message_id(str(returned.get("Message-ID", "")))
        else:
            found = _QUOTED_MESSAGE_ID.search(returned)
            message_id = normalize_message_id(found.group(1)) if found else None
        if message_id is not None:
            return message_id
    return None
