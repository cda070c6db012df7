"""Header recovery: a broken line in the header section no longer ends the headers.

The stdlib parser (the tree mail-parser builds) takes the first line that is neither a
header field nor a continuation as the start of the body, so one stray line (a word
glued before a field name, 8-bit junk, a line a client forgot to fold) used to drop the
Subject, From and Message-ID below it and show the rest of the headers as the body. Such a
line is now left out of the bytes that are parsed when another header field follows it,
and named in a defect (a field written with the obsolete space before its colon is read
as the field it is); a line followed by body text instead is where the body starts
(a message without the blank separator line), as before. The stored raw bytes keep it.
"""

from __future__ import annotations

import re

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD = re.compile(rb"[!-9;-~]+[ \t]*:")
_BAD_LINE = re.compile(rb"^(?![!-9;-~]+[ \t]*:|[ \t]|\r?$)", re.M)
_SPACED_NAME = re.compile(rb"^([!-9;-~]+)[ \t]+:", re.M)  # RFC 5322 obsolete "Subject  :"
_MBOX_LINE = re.compile(rb"From [^\s:]")
_MAX_NOTED = 80


def recover_headers(raw: bytes, notes: list[str]) -> bytes:
    """`raw` without the stray lines inside its header section; each one becomes a note."""
    end = _HEADER_END.search(raw)
    head_end = end.start() if end else len(raw)
    head = raw[:head_end]
    first_break = head.find(b"\n")
    start = first_break + 1 if _MBOX_LINE.match(head) and first_break != -1 else 0
    if not _BAD_LINE.search(head, start):
        return raw
    if _SPACED_NAME.search(head, start):
        notes.append("obsolete header syntax (space before the colon) read")
        head = head[:start] + _SPACED_NAME.sub(rb"\1:", head[start:])
        raw = head + raw[head_end:]
        head_end = len(head)
    lines = head[start:].split(b"\n")
    kept: list[bytes] = []
    for index, line in enumerate(lines):
        if _is_field_or_fold(line) or not _field_follows(lines, index + 1):
            kept.append(line)
            continue
        shown = line.rstrip(b"\r").decode("utf-8", "replace")[:_MAX_NOTED]
        notes.append(f"malformed header line skipped: {shown!r}")
    return raw[:start] + b"\n".join(kept) + raw[head_end:]


def _is_field_or_fold(line: bytes) -> bool:
    return not line.strip(b"\r") or line[:1] in (b" ", b"\t") or _FIELD.match(line) is not None


def _field_follows(lines: list[bytes], start: int) -> bool:
    """Whether the next line that is not a continuation is a header field."""
    for index in range(start, len(lines)):  # by index: slicing here made long headers quadratic
        line = lines[index]
        if line[:1] in (b" ", b"\t"):
            continue
        return _FIELD.match(line) is not None
    return False
