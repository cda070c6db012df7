"""Outlook items (.msg files): what one holds, read with extract-msg within bounds.

An Outlook item is an OLE compound file (it starts with D0 CF 11 E0 A1 B1 1A E1) of MAPI
properties. `read_item` opens one with extract-msg and returns an `OutlookItem`: the header
fields of the mail it holds (from the transport headers Outlook kept when it received the
mail, else rebuilt from the properties, as for a mail saved from Drafts or Sent Items), its
plain and HTML text, and its files, an embedded item written out as a .msg file of its own.
Everything in it is hostile: an `Allowance` caps the number and total size of the files
taken out of a container and everything nested in it, and the OLE directory entries opened
(counted from the file's header before olefile opens it, `gateway.mail.ole`); recipients
and attachments beyond the caps are never built (nor an item of more than `MAX_STORAGES`), a body kept only as compressed RTF is read
only when the RTF is small, and whatever extract-msg cannot open raises `UnreadableItem`. extract-msg is imported on first use: few messages carry an item, and
the package and what it brings (RTF and HTML parsers) are slow to import.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import format_datetime, formataddr
from typing import Any

from gateway.mail.charsets import decode_bytes, storable
from gateway.mail.ole import directory_size

OLE_SIGNATURE = bytes.fromhex("d0cf11e0a1b11ae1")
OUTLOOK_TYPE = "application/vnd.ms-outlook"
HEADER_FIELDS = ("From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID",
                 "In-Reply-To", "References")
MAX_FILES = 500  # files taken out of one container, whatever it nests (TNEF's limit too)
# OLE directory entries opened for one message, all its items together: olefile's time grows
# with their square (gateway/mail/ole.py), a second for about 8,000; 500 attachments of an
# item (MAX_STORAGES) take about 4,000.
MAX_ENTRIES = 5_000
MAX_STORAGES = 500  # recipients, attachments and embedded items of one item, all nested ones included
_MAX_RECIPIENTS = 100  # read from the properties when the item kept no transport headers
_MAX_RTF = 16 * 1024  # compressed RTF read for a body: de-encapsulating 8 KB of it takes seconds
_NAMES = ("longFilename", "shortFilename", "displayName", "name")  # an attachment's names, best first
_HEADERS_PREFIX = "Microsoft Mail Internet Headers Version 2.0"
_FOLD = re.compile(r"\r?\n[ \t]*|\r")


NOT_INSTALLED = "not opened: Outlook items need the optional extract-msg package (pip install 'wicket[outlook]')"


class UnreadableItem(ValueError):
    """extract-msg could not read the item; the message says what went wrong."""


class Allowance:
    """What may still be taken out of one container and the items nested in it."""

    def __init__(self, files: int, size: int, entries: int = MAX_ENTRIES) -> None:
        self.files = files
        self.size = size
        self.entries = entries

    @classmethod
    def of(cls, container: bytes, entries: int = MAX_ENTRIES) -> Allowance:
        """The allowance of one container: `MAX_FILES` files, and twice its size, since an
        item keeps its files uncompressed (nothing honest comes out larger than the item)
        and an embedded item comes out both as its .msg file and as its files; `entries`
        is what the message has left of `MAX_ENTRIES`."""
        return cls(MAX_FILES, 2 * len(container), entries)

    def take(self, size: int) -> bool:
        if self.files < 1 or size > self.size:
            return False
        self.files -= 1
        self.size -= size
        return True


@dataclass(frozen=True, slots=True)
class ItemFile:
    """A file attached to an item, named as the item names it (unclean, maybe empty)."""

    filename: str
    data: bytes
    content_id: str | None = None
    inline: bool = False
    is_item: bool = False  # an embedded Outlook item, written out as a .msg file


@dataclass(frozen=True, slots=True)
class OutlookItem:
    """One Outlook item as Wicket reads it: header fields on one line each, text, files;
    `notes` say in words what was left out or could not be read."""

    headers: tuple[tuple[str, str], ...]
    text: str
    html: str | None
    files: tuple[ItemFile, ...]
    notes: tuple[str, ...]


def is_outlook_item(data: bytes, filename: str, content_type: str) -> bool:
    """An attached Outlook item: its declared type, or a .msg name on an OLE file."""
    return content_type == OUTLOOK_TYPE or (filename.lower().endswith(".msg") and data.startswith(OLE_SIGNATURE))


def read_item(data: bytes, allowance: Allowance) -> OutlookItem:
    """The item in `data`; raises `UnreadableItem` when extract-msg cannot open it."""
    if not data.startswith(OLE_SIGNATURE):
        raise UnreadableItem("not an OLE compound file")
    directory = directory_size(data)
    if directory is None:
        raise UnreadableItem("its OLE directory cannot be followed")
    if directory.entries > allowance.entries:
        raise UnreadableItem(f"not opened: {directory.entries} OLE directory entries, "
                             f"over the {allowance.entries} left to open")
    if directory.storages > MAX_STORAGES:
        raise UnreadableItem(f"not opened: {directory.storages} recipients and attachments, over {MAX_STORAGES}")
    try:  # an optional extra: extract-msg is GPL-3.0, Wicket Apache-2.0 (README, "Dependencies")
        import extract_msg
        from extract_msg.enums import ErrorBehavior
    except ImportError:
        raise UnreadableItem(NOT_INSTALLED) from None
    allowance.entries -= directory.entries

    try:  # a file object, never bytes: olefile takes short bytes for a file name
        item = extract_msg.openMsg(
            io.BytesIO(data), strict=False, delayAttachments=True, recipientSeparator=",",
            errorBehavior=ErrorBehavior.ATTACH_SUPPRESS_ALL | ErrorBehavior.RTFDE,
        )
    except Exception as error:  # extract-msg and olefile raise assorted errors on damaged files
        raise UnreadableItem(_reason(error)) from error
    try:
        notes: list[str] = []
        text, html = _bodies(item, notes)
        files = _files(item, allowance, notes)
        return OutlookItem(_header_fields(item), text, html, files, tuple(notes))
    except RecursionError as error:
        raise UnreadableItem("nested too deeply") from error
    except Exception as error:
        raise UnreadableItem(_reason(error)) from error
    finally:
        item.close()


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error)[:120]}" if str(error) else type(error).__name__


def _bodies(item: Any, notes: list[str]) -> tuple[str, str | None]:
    text = _string(item, "__substg1.0_1000")
    raw_html = item.getStream("__substg1.0_10130102")
    if not text.strip() and not raw_html and item.exists("__substg1.0_10090102"):
        if len(item.getStream("__substg1.0_10090102") or b"") > _MAX_RTF:
            notes.append("Outlook item's text is in RTF too large to read")
        else:  # extract-msg recovers HTML (or text) encapsulated in the RTF body
            raw_html = getattr(item, "htmlBody", None)
            if not raw_html:
                notes.append("Outlook item's text is only in RTF, not read")
    html = storable(decode_bytes(bytes(raw_html), _html_charset(item))[0]) if raw_html else None
    return storable(text.replace("\r\n", "\n")), html


def _html_charset(item: Any) -> str | None:
    from extract_msg.encoding import lookupCodePage

    code_page = item.getPropertyVal("3FDE0003")  # PR_INTERNET_CPID: the HTML body's code page
    try:
        return lookupCodePage(code_page) if isinstance(code_page, int) else None
    except Exception:  # a code page Python has no codec for: the charset is guessed
        return None


def _files(item: Any, allowance: Allowance, notes: list[str]) -> tuple[ItemFile, ...]:
    files: list[ItemFile] = []
    left, unreadable = 0, 0
    names = _storages(item, "__attach")
    for index, storage in enumerate(names, 1):
        if allowance.files < 1:  # nothing more may come out: build no more attachments
            left += len(names) - index + 1
            break
        try:
            file = _file(item.initAttachmentFunc(item, storage), index)
        except Exception:  # one damaged attachment costs only itself
            file = None
        if file is None:  # a link, or an attachment extract-msg could not read
            unreadable += 1
        elif allowance.take(len(file.data)):
            files.append(file)
        else:
            left += 1
    if left:
        notes.append(f"{left} files of an Outlook item left inside it (over the unpacking limits)")
    if unreadable:
        notes.append(f"{unreadable} attachments of an Outlook item could not be read")
    return tuple(files)


def _file(attachment: Any, index: int) -> ItemFile | None:
    data = getattr(attachment, "data", None)
    if hasattr(data, "exportBytes"):  # an embedded item: written out as the .msg file it was
        name = str(getattr(attachment, "displayName", None) or getattr(attachment, "name", None) or f"item-{index}")
        return ItemFile(name if name.lower().endswith(".msg") else f"{name}.msg", data.exportBytes(), is_item=True)
    if not isinstance(data, bytes):
        return None
    name = str(next(filter(None, (getattr(attachment, key, None) for key in _NAMES)), ""))
    content_id = getattr(attachment, "contentId", None) or None
    return ItemFile(name, data, content_id, bool(content_id) and bool(getattr(attachment, "hidden", False)))


def _header_fields(item: Any) -> tuple[tuple[str, str], ...]:
    """The header fields of the mail: as transmitted where Outlook kept the headers, else
    as the properties give them."""
    kept = _transport_headers(item)
    fallback = _property_fields(item, with_recipients=kept is None)
    fields = []
    for name in HEADER_FIELDS:
        value = kept.get(name) if kept is not None else None
        value = _FOLD.sub(" ", str(value)).strip() if value is not None else ""
        value = value or fallback.get(name, "")
        if value:
            fields.append((name, storable(value)))
    return tuple(fields)


def _transport_headers(item: Any) -> Any:
    text = _string(item, "__substg1.0_007D")
    if not text or not text.strip():
        return None
    if text.startswith(_HEADERS_PREFIX):
        text = text[len(_HEADERS_PREFIX):].lstrip()
    return HeaderParser(policy=compat32).parsestr(text, headersonly=True)


def _property_fields(item: Any, *, with_recipients: bool) -> dict[str, str]:
    def stream(name: str) -> str:
        return _FOLD.sub(" ", _string(item, name)).strip()

    fields = {
        "From": _address(stream("__substg1.0_0C1A") or stream("__substg1.0_0042"), _sender_address(item)),
        "Subject": stream("__substg1.0_0037"),
        "Message-ID": stream("__substg1.0_1035"),
        "In-Reply-To": stream("__substg1.0_1042"),
        "References": stream("__substg1.0_1039"),
    }
    recipients = _recipients(item) if with_recipients else []  # kept headers name them as sent
    for kind, name in ((1, "To"), (2, "Cc")):  # MAPI recipient types
        chosen = [r for r in recipients if int(r.type) == kind]
        fields[name] = ", ".join(filter(None, (_address(r.name or "", r.email or "") for r in chosen)))
    sent = getattr(item, "date", None)
    if isinstance(sent, datetime):
        fields["Date"] = format_datetime(sent if sent.tzinfo else sent.replace(tzinfo=UTC))
    return fields


def _storages(item: Any, prefix: str) -> list[str]:
    """The item's own storages (attachments, recipients) whose names start with `prefix`."""
    return list(dict.fromkeys(path[0] for path in item.listDir(False, True, False) if path[0].startswith(prefix)))


def _recipients(item: Any) -> list[Any]:
    """The first `_MAX_RECIPIENTS` recipients (extract-msg's own list builds every one, each
    lookup a scan of the whole directory)."""
    from extract_msg import Recipient
    from extract_msg.enums import RecipientType

    kinds = getattr(item, "recipientTypeClass", RecipientType)
    return [Recipient(storage, item, kinds) for storage in _storages(item, "__recip")[:_MAX_RECIPIENTS]]


def _string(item: Any, name: str) -> str:
    """A string property without the NULs some writers leave at its end."""
    return (item.getStringStream(name) or "").rstrip("\x00")


def _sender_address(item: Any) -> str:
    """The sender's SMTP address; an Exchange sender (address type EX) may have none."""
    for address, kind in (("5D01", ""), ("0C1F", "0C1E"), ("5D02", ""), ("0065", "0064")):
        value = _string(item, f"__substg1.0_{address}").strip()
        if value and (not kind or _string(item, f"__substg1.0_{kind}").strip().upper() == "SMTP"):
            return value
    return ""


def _address(name: str, address: str) -> str:
    """`Name <address>` with the name RFC 2047-encoded where needed; "" without an address."""
    if "@" not in address or address.startswith("/"):  # an Exchange directory name, not a mail address
        return ""
    return formataddr((_FOLD.sub(" ", name).strip(), address.strip()), charset="utf-8")
