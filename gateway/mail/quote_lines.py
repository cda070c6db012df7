"""Reading single lines of quoted text: forward markers, quoted header fields and blocks.

This module owns the line-level tests that both the reply splitter (`gateway.mail.quotes`)
and the inline-forward reader (`gateway.mail.forwards`) ask: whether a line is Gmail's or
Apple Mail's forward marker, which kind of header field ("from", "date", "to", "cc",
"subject", in any language `gateway.mail.quote_patterns` knows) a quoted line is, whether a
From: or Date: line opens a quoted header block, and where the next non-blank line is.
"""

from __future__ import annotations

from gateway.mail.quote_patterns import FIELD, FIELD_KINDS, FORWARD_MARKER, MAX_LINE


def is_forward_marker(line: str) -> bool:
    """Gmail's "---------- Forwarded message ---------" or Apple's "Begin forwarded message:"."""
    return (
        0 < len(line) <= MAX_LINE
        and (line[0] == "-" or line[-1] == ":")
        and FORWARD_MARKER.fullmatch(line) is not None
    )


def header_block_follows(lines: list[str], index: int, first: str = "from") -> bool:
    """A From: (or Date:) line at `index` opens a quoted header block: a From: line is
    followed by a date/sent line, a Date: line by a from, to or subject line."""
    kinds = set()
    for line in lines[index + 1 : index + 6]:
        kind = field_kind(line.strip())
        if kind == first:  # a second From: is another block, not this one
            break
        kinds.add(kind)
    if first == "from":
        return "date" in kinds
    return bool(kinds & {"from", "to", "subject"})


def field_kind(line: str) -> str | None:
    """The kind ("from", "date", "to", "cc", "subject") of a quoted header line, any language."""
    if len(line) > MAX_LINE or (":" not in line[:24] and "：" not in line[:24]):
        return None
    match = FIELD.match(line)
    return FIELD_KINDS.get(match.group(1).lower()) if match else None


def next_nonblank(lines: list[str], start: int) -> int | None:
    for index in range(start, min(len(lines), start + 3)):
        if lines[index].strip():
            return index
    return None
