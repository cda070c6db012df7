"""Inline and attached forwards: the original message a customer passes on, and its parts.

This module owns reading a forwarded message out of a body's text (Gmail's and Apple
Mail's forward markers, and Outlook's "-----Original Message-----", underscore separator
or bare From/Sent block when the subject says Fwd/FW) into a `ForwardedOriginal`: the
original sender, subject, date as written and body text. It also says which subjects are
forwards (Fwd:, FW:, WG:, TR:, RV:, ENC:); `gateway.mail.parse` reads attached forwards
(`message/rfc822`) into the same value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr

from gateway.mail.addresses import Address
from gateway.mail.quote_lines import field_kind, header_block_follows, is_forward_marker, next_nonblank
from gateway.mail.quote_patterns import FIELD, MAX_LINE, ORIGINAL_MESSAGE, SEPARATOR


@dataclass(frozen=True, slots=True)
class ForwardedOriginal:
    sender: Address
    subject: str
    date: str  # as written
    text: str  # the forwarded body text


_MAX_FORWARD_FIELDS = 12  # a forwarded header block is From/Date/Subject/To/Cc, maybe wrapped
_FORWARD_SUBJECT = re.compile(r"\s*(?:fwd?|wg|tr|rv|enc)\s*:", re.I)
_MAILTO = re.compile(r"\[mailto:([^\]]*)\]", re.I)


def is_forward_subject(subject: str) -> bool:
    """Whether the subject starts with a forward prefix (Fwd:, FW:, WG:, TR:, RV:, ENC:)."""
    return _FORWARD_SUBJECT.match(subject) is not None


def find_inline_forward(text: str, subject: str = "") -> ForwardedOriginal | None:
    """The original message forwarded inline in `text`, or None.

    Gmail's and Apple Mail's forward markers always count; Outlook's "-----Original
    Message-----", separator or bare From/Sent block only when `subject` says Fwd/FW.
    """
    lines = text.splitlines()
    outlook_forward = is_forward_subject(subject)
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or len(stripped) > MAX_LINE:
            continue
        start = None
        if is_forward_marker(stripped):
            start = index + 1
        elif outlook_forward:
            if ORIGINAL_MESSAGE.fullmatch(stripped) or SEPARATOR.fullmatch(stripped):
                start = index + 1
            elif field_kind(stripped) == "from" and header_block_follows(lines, index):
                start = index
        original = None if start is None else _read_forward(lines, start)
        if original is not None:
            return original
    return None


def _read_forward(lines: list[str], start: int) -> ForwardedOriginal | None:
    """Read the forwarded header block (From: first) at `start` and the body below it."""
    index = next_nonblank(lines, start)
    if index is None:
        return None
    quoted = lines[index].lstrip().startswith(">")
    read = _unquote if quoted else str
    first = read(lines[index]).strip()
    if field_kind(first) != "from":
        return None
    fields: dict[str, str] = {}
    last = ""
    end = min(len(lines), index + _MAX_FORWARD_FIELDS)
    while index < end and (line := read(lines[index]).strip()):
        kind = field_kind(line)
        match = FIELD.match(line)
        if kind is not None and match is not None and kind not in fields:
            fields[kind] = match.group(2).strip()
            last = kind
        else:  # a long To/Cc list wrapped onto the next line
            fields[last] = f"{fields[last]} {line}"
        index += 1
    body = "\n".join(read(line) for line in lines[index:]).strip()
    return ForwardedOriginal(
        sender=_parse_address(fields["from"]),
        subject=fields.get("subject", ""),
        date=fields.get("date", ""),
        text=body,
    )


def _parse_address(value: str) -> Address:
    """An address as mail clients print it in a quoted header ("*Name* <a@b>", "[mailto:a@b]")."""
    cleaned = _MAILTO.sub(r"<\1>", value.replace("*", "")).strip()
    name, email = parseaddr(cleaned)
    if "@" not in email:
        return Address(email="", name=cleaned)
    return Address(email=email.lower(), name=name.strip())


def _unquote(line: str) -> str:
    stripped = line.lstrip()
    if not stripped.startswith(">"):
        return line
    stripped = stripped[1:]
    return stripped[1:] if stripped.startswith(" ") else stripped
