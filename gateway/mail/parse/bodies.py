"""Reading a message's parts: body text, attachments, their file names, and attached forwards.

`_walk` sorts the MIME tree into a `_Parts` record without descending into attached
messages: text/plain and text/html parts meant to be read become body text (decoded
through `gateway.mail.charsets`, with the transfer encoding undone as leniently as mail clients
do, including cut-off base64), anything else becomes a file, attached `message/rfc822`
parts stay whole, and the status groups and returned message of a `multipart/report` are
set aside for `gateway.mail.parse.reports`. Files become `ParsedAttachment`s with names decoded
from their RFC 2231/2047 parameters and sanitized (no paths, control or bidi characters,
bounded length, a typed fallback name), and an attached message becomes the
`ForwardedOriginal` when the mail forwards it.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from email import errors
from email.message import Message

from mailparser.utils import decode_base64_payload

from gateway.mail.addresses import Address
from gateway.mail.charsets import decode_bytes, storable
from gateway.mail.detection import NO_EVIDENCE, MessageCharsets
from gateway.mail.encoded_words import decode_header_value, decode_parameter
from gateway.mail.forwards import ForwardedOriginal, is_forward_subject
from gateway.mail.html_text import html_to_text
from gateway.mail.parse.evidence import message_charsets
from gateway.mail.parse.headers import _headers, _sender

_MAX_FILENAME = 200
_FILENAME_JUNK = re.compile(r"[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_MIME_TYPES = mimetypes.MimeTypes()  # the stdlib's built-in table only, same on every host
_EXTENSIONS = {"text/calendar": ".ics", "application/ics": ".ics"}  # missing from the table
_BASE64_DEFECTS = (
    errors.InvalidBase64PaddingDefect,
    errors.InvalidBase64CharactersDefect,
    errors.InvalidBase64LengthDefect,
)

# RFC 2045 type/subtype tokens; anything else (NUL, spaces, junk) is no media type.
_LOOKS_LIKE_FILE = re.compile(r"[^\s<>@/\\]{1,150}\.[A-Za-z0-9]{1,5}")
_MEDIA_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    filename: str  # decoded, sanitized; fallback "attachment-N.<ext>"
    content_type: str  # lower-case "type/subtype"
    data: bytes
    size: int
    sha256: str  # hex
    content_id: str | None  # without angle brackets
    inline: bool  # disposition inline or referenced by cid from the HTML


@dataclass
class _Parts:
    """What a walk of one message found, before it becomes text and attachments."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    files: list[Message] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)  # attached message/rfc822 contents
    status: list[Message] = field(default_factory=list)  # message/delivery-status field groups
    returned: list[Message | str] = field(default_factory=list)  # a report's returned message


def _walk(message: Message, notes: list[str], charsets: MessageCharsets = NO_EVIDENCE) -> _Parts:
    """Sort the parts of `message` (without descending into attached messages); text that
    declares no charset is read with what the rest of the message says (`charsets`)."""
    parts = _Parts()
    stack: list[tuple[Message, bool]] = [(message, False)]
    while stack:
        part, report_data = stack.pop()
        content_type = part.get_content_type()
        children = _children(part)
        if content_type == "message/delivery-status" and children is not None:
            parts.status.extend(children)
        elif report_data and content_type in ("message/rfc822", "text/rfc822-headers"):
            parts.returned.append(children[0] if children else _part_text(part, notes, charsets))
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
            text = _part_text(part, notes, charsets)
            (parts.html if content_type == "text/html" else parts.plain).append(text)
        else:
            parts.files.append(part)
    if not parts.plain and not parts.html:
        _read_named_text(parts, notes, charsets)
    return parts


def _read_named_text(parts: _Parts, notes: list[str], charsets: MessageCharsets) -> None:
    """A message whose only text is a named inline text/plain part (`filename=msg.txt`) is
    read from that part, which stays an attachment too."""
    for part in parts.files:
        if part.get_content_type() == "text/plain" and part.get_content_disposition() != "attachment":
            parts.plain.append(_part_text(part, notes, charsets))
            return


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
    if content_type.startswith("multipart/"):  # a multipart the parser could not split
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


def _part_text(part: Message, notes: list[str], charsets: MessageCharsets) -> str:
    text, note = decode_bytes(
        _payload_bytes(part, "body text", notes), part.get_content_charset(None), charsets
    )
    if note:
        notes.append(note)
    if "\x00" in text:
        notes.append("NUL bytes in body text stored as U+FFFD")
    return storable(text)  # NUL (and lone surrogates) fit no text column


def _body_text(parts: _Parts, html: str | None) -> str:
    """The text/plain parts, or the HTML rendered as text when they are missing or blank."""
    text = "\n".join(parts.plain)
    if html is not None and not text.strip():
        text = html_to_text(html)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")


def _attachment(part: Message, index: int, cids: set[str], notes: list[str]) -> ParsedAttachment:
    content_type = part.get_content_type()
    if len(content_type) > 255 or not _MEDIA_TYPE.match(content_type):
        notes.append("invalid Content-Type on an attachment, stored as application/octet-stream")
        content_type = "application/octet-stream"
    filename = _filename(part, notes) or f"attachment-{index}{_extension(content_type)}"
    inner = _children(part)
    data = _message_bytes(inner[0], notes) if inner else _payload_bytes(part, filename, notes)
    content_id = storable("".join(str(part.get("Content-ID", "")).split()).strip("<>")) or None  # no NUL
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
    value = _param(part, "filename", "content-disposition")
    if value is None:
        value = _param(part, "name", "content-type")
    if value is None:
        value = _named_by_reference(part)
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


def _named_by_reference(part: Message) -> str | None:
    """A file name from Content-Location's last path segment or a Content-ID like
    `<image001.png@01D9...>` (Apple Mail and Outlook name inline images only so)."""
    location = str(part.get("Content-Location", "")).strip().rstrip("/")
    candidates = [location.rpartition("/")[2].partition("?")[0]]
    candidates.append(str(part.get("Content-ID", "")).strip().strip("<>").partition("@")[0])
    return next((name for name in candidates if _LOOKS_LIKE_FILE.fullmatch(name)), None)


def _param(part: Message, name: str, header: str) -> str | tuple[str | None, str | None, str] | None:
    """A header parameter; from a header carrying raw 8-bit bytes it is read after the
    bytes are decoded, since the stdlib turns each such byte into U+FFFD."""
    raw = next((str(value) for key, value in part.raw_items() if key.lower() == header), None)
    if raw is None or raw.isascii():
        return part.get_param(name, None, header)
    decoded, _ = decode_header_value(raw, "attachment name")
    probe = Message()
    probe[header] = decoded
    return probe.get_param(name, None, header)


def _extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type) or _MIME_TYPES.guess_extension(content_type) or ".bin"


def _attached_forward(parts: _Parts, subject: str, text: str) -> ForwardedOriginal | None:
    """The attached message when the mail forwards it (Fwd: subject, or nothing else to read)."""
    if not parts.messages or not (is_forward_subject(subject) or not text.strip()):
        return None
    inner = parts.messages[0]
    charsets = message_charsets(inner)
    headers, raw_headers = _headers(inner, [], charsets)
    inner_parts = _walk(inner, [], charsets)
    inner_html = "\n".join(inner_parts.html) if inner_parts.html else None
    return ForwardedOriginal(
        sender=_sender(raw_headers, headers, []) or Address(email="", name=""),
        subject=" ".join(headers.get("Subject", "").split()),
        date=headers.get("Date", ""),
        text=_body_text(inner_parts, inner_html).strip(),
    )
