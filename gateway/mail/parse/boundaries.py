"""Boundary recovery: a multipart whose delimiter lines do not use the boundary it declares.

A sender that mistypes the boundary, quotes it one way in the header and another on the
delimiter lines, writes it in 8-bit (which the stdlib reads as U+FFFD in the header but
not in the body), or folds the Content-Type header so the boundary parameter falls off,
leaves a multipart the stdlib parser cannot split: it records StartBoundaryNotFoundDefect
or NoBoundaryInMultipartDefect and keeps the whole body as one string, whose raw MIME lines
used to reach the customer and the agents as text. Such a part's body is searched for the
delimiter actually used: a line `--X` followed by part headers, where X repeats (or closes
as `--X--`) or resembles the declared boundary. The body is then parsed again with that
delimiter and the part takes the parts found; a defect names both boundaries. The headers
stay as sent and the stored raw bytes are untouched. A multipart that was split but lost
its closing delimiter (CloseBoundaryNotFoundDefect) is a cut-off message, not a mismatch:
its parts are already read, and it is left as it is.
"""

from __future__ import annotations

import email
import re
from collections import Counter
from difflib import SequenceMatcher
from email import errors
from email.message import Message

_UNSPLIT = (errors.StartBoundaryNotFoundDefect, errors.NoBoundaryInMultipartDefect)
_SETTLED = (*_UNSPLIT, errors.MultipartInvariantViolationDefect)  # gone once the parts are read
_DELIMITER = re.compile(rb"^--([^\r\n]{1,200}?)[ \t]*\r?$", re.M)
_FIELD = re.compile(rb"[!-9;-~]+[ \t]*:")
_LINE_END = re.compile(rb"\r?\n")
_TOKEN_JUNK = re.compile(r"[^a-z0-9.+-]")
_MAX_RECOVERED = 8  # parts per message: each one is parsed again
_MAX_NOTED = 80


def recover_boundaries(message: Message, notes: list[str]) -> None:
    """Split, in place, every multipart of `message` left unsplit by a boundary mismatch."""
    recovered = 0
    for part in message.walk():  # walks into the parts a recovery gives a multipart
        if recovered == _MAX_RECOVERED:
            return
        if part.is_multipart() or not any(isinstance(defect, _UNSPLIT) for defect in part.defects):
            continue
        body = part.get_payload(decode=True)
        declared = part.get_boundary()
        used = _delimiter_used(body, declared) if isinstance(body, bytes) else None
        if used is None:
            continue
        recovered += 1
        if not _read_parts(part, body, used):
            continue
        declared_text = f"declared {declared[:_MAX_NOTED]!r}" if declared else "none declared"
        notes.append(f"multipart boundary recovered ({declared_text}, used {_shown(used)!r})")


def _delimiter_used(body: bytes, declared: str | None) -> bytes | None:
    """The X of the `--X` lines that open the parts in `body`, or None if nothing opens one."""
    opening: Counter[bytes] = Counter()
    closing: Counter[bytes] = Counter()
    headed: list[bytes] = []  # opening lines a header field follows, in order
    for match in _DELIMITER.finditer(body):
        boundary = match.group(1)
        if boundary.endswith(b"--"):  # "--X--" closes X ("-----Original Message-----" too)
            closing[boundary[:-2]] += 1
            continue
        if not boundary.strip(b"-").strip() or b'"' in boundary or b"\\" in boundary:
            continue
        opening[boundary] += 1
        if boundary not in headed and _FIELD.match(body, _next_line(body, match.end())):
            headed.append(boundary)
    ranked = sorted(headed, key=lambda boundary: -(opening[boundary] + closing[boundary]))
    for boundary in ranked:
        if opening[boundary] + closing[boundary] >= 2 or _resembles(boundary, declared):
            return boundary
    return None


def _resembles(used: bytes, declared: str | None) -> bool:
    """A delimiter seen once counts when it is the declared boundary but for a typo, its
    quotes or its 8-bit characters (the stdlib turns those into U+FFFD in the header)."""
    if not declared:
        return False
    wanted = "".join(char if char.isascii() else "?" for char in declared.strip("'\" "))
    seen = "".join(chr(byte) if byte < 0x80 else "?" for byte in used)
    return seen == wanted or SequenceMatcher(None, seen, wanted).ratio() >= 0.8


def _read_parts(part: Message, body: bytes, used: bytes) -> bool:
    """Parse `body` again with `used` as its boundary and give `part` the parts found.

    The delimiter lines are rewritten to a fresh ASCII boundary first: the stdlib cannot
    match an 8-bit one, nor one with characters its header parser treats specially.
    """
    fresh = b"wicket-recovered"
    while fresh in body:
        fresh += b"-"
    lines = re.compile(rb"^--" + re.escape(used) + rb"(?=(?:--)?[ \t]*\r?$)", re.M)
    subtype = _TOKEN_JUNK.sub("", part.get_content_subtype()) or "mixed"
    head = b"Content-Type: multipart/" + subtype.encode() + b'; boundary="' + fresh + b'"\n\n'
    parsed = email.message_from_bytes(head + lines.sub(b"--" + fresh, body))
    if not parsed.is_multipart():
        return False
    part.set_payload(parsed.get_payload())
    part.preamble, part.epilogue = parsed.preamble, parsed.epilogue
    part.defects[:] = [defect for defect in part.defects if not isinstance(defect, _SETTLED)]
    part.defects.extend(parsed.defects)
    return True


def _next_line(body: bytes, end: int) -> int:
    found = _LINE_END.match(body, end)
    return found.end() if found else len(body)


def _shown(boundary: bytes) -> str:
    return boundary[:_MAX_NOTED].decode("utf-8", "replace")
