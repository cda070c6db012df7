"""An Outlook .msg file as the RFC 5322 message it holds, for mail that arrives as a file.

`wicket replay` and the test harness take saved mail as files, and Outlook saves mail as
.msg items, not as messages. `as_message` turns the bytes of such a file into the message
it holds, written by the stdlib `email` package: the header fields the item gives
(`gateway.mail.outlook`), its text and HTML as a multipart/alternative, inline pictures
beside the HTML under their Content-ID, the other files as attachments (an embedded item
as a .msg file, which the parser opens like any attached item). Bytes that are not an
Outlook item come back unchanged, so the caller need not tell them apart. From there the
message takes the one production path, stored and parsed like mail that came by SMTP
(docs/architecture.md, "Outlook items"). The message says that it was converted and from
what: `X-Wicket-Converted` names the item's SHA-256, and the same file always gives the
same bytes (boundaries come from that digest), so replaying it twice is a duplicate.
"""

from __future__ import annotations

import hashlib
import mimetypes
from email.message import EmailMessage
from email.policy import SMTP

from gateway.mail.outlook import OLE_SIGNATURE, OUTLOOK_TYPE, Allowance, ItemFile, UnreadableItem, read_item

CONVERTED_HEADER = "X-Wicket-Converted"
_MIME_TYPES = mimetypes.MimeTypes()  # the stdlib's built-in table only, same on every host


def as_message(raw: bytes) -> bytes:
    """The message an Outlook item holds; other bytes unchanged. Raises
    `gateway.mail.outlook.UnreadableItem` for an item extract-msg cannot read."""
    if not raw.startswith(OLE_SIGNATURE):
        return raw
    digest = hashlib.sha256(raw).hexdigest()
    item = read_item(raw, Allowance.of(raw))
    message = EmailMessage(policy=SMTP)
    for name, value in item.headers:
        try:
            message[name] = value
        except Exception:  # the header registry raises assorted errors on hostile values: left out
            continue
    message[CONVERTED_HEADER] = f"from an Outlook item, sha256={digest}"
    for note in item.notes:
        message["X-Wicket-Conversion-Note"] = note
    _add_bodies(message, item.text, item.html, [f for f in item.files if f.inline and f.content_id])
    for file in item.files:
        if not (file.inline and file.content_id and item.html):
            _attach(message, file)
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"wicket-{digest[:24]}-{index}")
    try:
        return message.as_bytes()
    except Exception as error:  # the stdlib's folding still fails on some odd header values
        raise UnreadableItem(f"could not be written as a message ({type(error).__name__})") from error


def _add_bodies(message: EmailMessage, text: str, html: str | None, inline: list[ItemFile]) -> None:
    if not html:
        message.set_content(text or "\n")
        return
    if text.strip():
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        html_part = message.get_payload()[1]
    else:
        message.set_content(html, subtype="html")
        html_part = message
    for file in inline:
        maintype, subtype = _content_type(file).split("/", 1)
        html_part.add_related(file.data, maintype, subtype, cid=f"<{file.content_id.strip('<>')}>",
                              filename=file.filename or None)


def _attach(message: EmailMessage, file: ItemFile) -> None:
    maintype, subtype = _content_type(file).split("/", 1)
    message.add_attachment(file.data, maintype, subtype, filename=file.filename or None)


def _content_type(file: ItemFile) -> str:
    if file.is_item:
        return OUTLOOK_TYPE
    return _MIME_TYPES.guess_type(file.filename)[0] or "application/octet-stream"
