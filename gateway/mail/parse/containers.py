"""Attachments that are containers of other files: Outlook's TNEF `winmail.dat` and
attached Outlook items (.msg files).

Outlook sends rich-text mail to some servers as one `application/ms-tnef` part that holds
the real attachments and often the body itself, and attaches a mail dragged from its
folders as an Outlook item. tnefparse opens the first, extract-msg the second
(`gateway.mail.outlook`); each file inside becomes an attachment of its own after the
original, which is kept as sent, and the text inside (plain, else HTML rendered as text) is
returned for the caller to use when the mail has no body of its own. An item inside an
item is opened too, up to `_MAX_DEPTH` deep; one allowance of files and bytes covers a
container and all it nests, so a hostile file cannot make the parse hold more than about
twice its size, and the OLE directory entries opened are capped for the whole message,
since olefile's time grows with their square. A container that cannot be read stays a plain attachment with a defect.
"""

from __future__ import annotations

import hashlib
import mimetypes

from tnefparse import TNEF

from gateway.mail.charsets import decode_bytes, storable
from gateway.mail.html_text import html_to_text
from gateway.mail.outlook import MAX_ENTRIES, MAX_FILES, OUTLOOK_TYPE, Allowance, UnreadableItem, is_outlook_item, read_item
from gateway.mail.parse.bodies import ParsedAttachment

_TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
_MIME_TYPES = mimetypes.MimeTypes()  # the stdlib's built-in table only, same on every host
_MAX_DEPTH = 3  # Outlook items opened inside one another


def unpack_containers(
    attachments: tuple[ParsedAttachment, ...], notes: list[str]
) -> tuple[tuple[ParsedAttachment, ...], str]:
    """The attachments with each container's files added after it, and the first
    container's text ("" when none)."""
    out: list[ParsedAttachment] = []
    text = ""
    entries = MAX_ENTRIES  # OLE directory entries left to open, for all the message's items
    for attachment in attachments:
        out.append(attachment)
        if _is_tnef(attachment):
            files, inner_text = _unpack_tnef(attachment, notes)
        elif is_outlook_item(attachment.data, attachment.filename, attachment.content_type):
            allowance = Allowance.of(attachment.data, entries)
            files, inner_text = _unpack_item(attachment, notes, allowance, 1)
            entries = allowance.entries
        else:
            continue
        out.extend(files)
        text = text or inner_text
    return tuple(out), text


def _is_tnef(attachment: ParsedAttachment) -> bool:
    return attachment.content_type in _TNEF_TYPES or attachment.filename.lower() == "winmail.dat"


def _unpack_tnef(attachment: ParsedAttachment, notes: list[str]) -> tuple[list[ParsedAttachment], str]:
    try:
        tnef = TNEF(attachment.data)
    except Exception:  # tnefparse raises assorted errors on damaged containers
        notes.append(f"TNEF attachment {attachment.filename} could not be read")
        return [], ""
    files = [
        _inner_file(str(inner.long_filename() or inner.name or ""), bytes(inner.data or b""), attachment.filename, index)
        for index, inner in enumerate(tnef.attachments[:MAX_FILES], 1)
    ]
    return files, _tnef_text(tnef)


def _unpack_item(
    attachment: ParsedAttachment, notes: list[str], allowance: Allowance, depth: int
) -> tuple[list[ParsedAttachment], str]:
    """The files of an attached Outlook item (and of the items inside it), and its text."""
    try:
        item = read_item(attachment.data, allowance)
    except UnreadableItem as error:
        notes.append(f"Outlook item {attachment.filename} could not be read ({error})")
        return [], ""
    notes.extend(item.notes)
    files: list[ParsedAttachment] = []
    for index, inner in enumerate(item.files, 1):
        content_type = OUTLOOK_TYPE if inner.is_item else None
        file = _inner_file(inner.filename, inner.data, attachment.filename, index, content_type)
        files.append(file)
        if inner.is_item and depth < _MAX_DEPTH:
            files.extend(_unpack_item(file, notes, allowance, depth + 1)[0])
        elif inner.is_item:
            notes.append(f"Outlook item {file.filename} left closed: items nest over {_MAX_DEPTH} deep")
    text = item.text.strip() or (html_to_text(item.html) if item.html and item.html.strip() else "")
    return files, text


def _inner_file(
    name: str, data: bytes, container: str, index: int, content_type: str | None = None
) -> ParsedAttachment:
    """A file taken out of a container, named without a path; typed by its name."""
    fallback = f"{container}-{index}.bin"
    name = storable(name or fallback).replace("\\", "/").rpartition("/")[2].strip(" .") or fallback
    return ParsedAttachment(
        filename=name[:200],
        content_type=content_type or _MIME_TYPES.guess_type(name)[0] or "application/octet-stream",
        data=data,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content_id=None,
        inline=False,
    )


def _tnef_text(tnef: TNEF) -> str:
    body = tnef.body
    if isinstance(body, bytes) and body.strip():
        return decode_bytes(body, None)[0].strip()
    if isinstance(body, str) and body.strip():
        return body.strip()
    html = tnef.htmlbody
    if isinstance(html, bytes):
        html = decode_bytes(html, None)[0]
    return html_to_text(html) if isinstance(html, str) and html.strip() else ""
