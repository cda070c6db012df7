"""Attachments that are containers of other files: Outlook's TNEF `winmail.dat`.

Outlook sends rich-text mail to some servers as one `application/ms-tnef` part that holds
the real attachments and often the body itself. tnefparse opens it; each file inside
becomes an attachment of its own after the original, which is kept as sent, and the text
inside (plain, else HTML rendered as text) is returned for the caller to use when the mail
has no body of its own. A container tnefparse cannot read stays a plain attachment with a
defect.
"""

from __future__ import annotations

import hashlib
import mimetypes

from tnefparse import TNEF

from gateway.mail.charsets import decode_bytes, storable
from gateway.mail.html_text import html_to_text
from gateway.mail.parse.bodies import ParsedAttachment

_TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
_MIME_TYPES = mimetypes.MimeTypes()  # the stdlib's built-in table only, same on every host
_MAX_INNER = 500  # files taken out of one container


def unpack_containers(
    attachments: tuple[ParsedAttachment, ...], notes: list[str]
) -> tuple[tuple[ParsedAttachment, ...], str]:
    """The attachments with each container's files added after it, and the first
    container's text ("" when none)."""
    out: list[ParsedAttachment] = []
    text = ""
    for attachment in attachments:
        out.append(attachment)
        if not _is_tnef(attachment):
            continue
        try:
            tnef = TNEF(attachment.data)
        except Exception:  # tnefparse raises assorted errors on damaged containers
            notes.append(f"TNEF attachment {attachment.filename} could not be read")
            continue
        out.extend(_inner_files(tnef, attachment.filename))
        text = text or _tnef_text(tnef)
    return tuple(out), text


def _is_tnef(attachment: ParsedAttachment) -> bool:
    return attachment.content_type in _TNEF_TYPES or attachment.filename.lower() == "winmail.dat"


def _inner_files(tnef: TNEF, container: str) -> list[ParsedAttachment]:
    files = []
    for index, inner in enumerate(tnef.attachments[:_MAX_INNER], 1):
        name = storable(str(inner.long_filename() or inner.name or f"{container}-{index}.bin"))
        name = name.replace("\\", "/").rpartition("/")[2].strip(" .") or f"{container}-{index}.bin"
        data = bytes(inner.data or b"")
        content_type = _MIME_TYPES.guess_type(name)[0] or "application/octet-stream"
        files.append(
            ParsedAttachment(
                filename=name[:200],
                content_type=content_type,
                data=data,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                content_id=None,
                inline=False,
            )
        )
    return files


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
