"""Reading a message's text: where the customer's new words end and quoted history begins.

This module owns the rules for finding quoted history and inline forwards: our own reply
marker, attribution lines in some twenty languages ("On <date>, <name> wrote:", wrapped
over several lines, sharing a line with the reply, fenced by dashes, or a dated address
above a ">" quote), "-----Original Message-----" and its translations, the underscore
separator, From/Sent (or Date/From) header blocks, runs of ">" lines, the HTML containers
Gmail, Apple Mail, Outlook and Thunderbird wrap quotes in, and inline forwards (Gmail,
Apple Mail and Outlook). The words themselves live in `gateway.mail.quote_patterns`.
A reply written above the history splits so the halves concatenate to the input; one
written below or between a ">" quote (bottom-posting) gets the words around the quote,
and the quote is put back at one place to give the input again: no text is ever lost.
It also defines the value types a forwarded original is made of (`Address`,
`ForwardedOriginal`); `gateway.mail.parse` re-exports them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr

from gateway.mail.quote_patterns import (
    ATTRIBUTION,
    ATTRIBUTION_START,
    DATED_ADDRESS,
    FENCED,
    FIELD,
    FIELD_KINDS,
    FORWARD_MARKER,
    INLINE_ATTRIBUTION,
    MAX_LINE,
    ORIGINAL_MESSAGE,
    SEPARATOR,
    VERB_FIRST,
)

REPLY_MARKER = "##- Please type your reply above this line -##"


@dataclass(frozen=True, slots=True)
class Address:
    email: str  # lower-cased addr-spec, "" if unparseable
    name: str  # decoded display name, "" if none


@dataclass(frozen=True, slots=True)
class ForwardedOriginal:
    sender: Address
    subject: str
    date: str  # as written
    text: str  # the forwarded body text


_MAX_FORWARD_FIELDS = 12  # a forwarded header block is From/Date/Subject/To/Cc, maybe wrapped
_MAX_WRAPPED = 5  # an attribution wrapped by a narrow client spans at most this many lines
_FORWARD_SUBJECT = re.compile(r"\s*(?:fwd?|wg|tr|rv|enc)\s*:", re.I)
_QUOTE_TAG = re.compile(r"<(div|blockquote)\b([^<>]*)>", re.I)
_ATTRIBUTE = re.compile(r"""\b(class|id|type)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_QUOTE_CLASSES = frozenset(
    {"gmail_quote", "gmail_quote_container", "moz-cite-prefix", "yahoo_quoted"}
)
_QUOTE_IDS = frozenset({"divrplyfwdmsg", "appendonsend"})
_OPENING_TAIL = re.compile(r"<(?:hr|div)\b[^<>]*>\s*$", re.I)
_MAILTO = re.compile(r"\[mailto:([^\]]*)\]", re.I)


def split_reply(text: str) -> tuple[str, str]:
    """Split `text` into (new words, quoted history); nothing is dropped.

    When the sender wrote above the history, reply + quoted == text. When they wrote
    below or between a ">" quote (bottom-posting), the reply is the text before and after
    the quote and `text` == before + quoted + after. A Gmail or Apple Mail forward marker
    above any history ends the search: what follows it is content, not history.
    """
    lines = text.splitlines(keepends=True)
    offsets = _offsets(lines)
    for index, line in enumerate(lines):
        stripped = line.strip()
        if _is_forward_marker(stripped):
            return text, ""
        span = _splitter(lines, index, stripped)
        if span is not None:
            start = offsets[index] + _inline_start(line)
            end = _quote_end(lines, index + span)
            if end is None:
                return text[:start], text[start:]
            return text[:start] + text[offsets[end] :], text[start : offsets[end]]
    return _split_bare_quote(text, lines, offsets)


def split_reply_html(html: str) -> tuple[str, str]:
    """Split an HTML body at the first quote container or our marker; halves add up to `html`."""
    cut = len(html)
    for match in _QUOTE_TAG.finditer(html):
        if _is_quote_container(match.group(1).lower(), match.group(2)):
            cut = match.start()
            break
    marker = html.find(REPLY_MARKER, 0, cut)
    if marker != -1:
        cut = _enclosing_tag_start(html, marker)
    opening = _OPENING_TAIL.search(html, max(0, cut - 300), cut)
    if opening is not None and cut < len(html):
        cut = opening.start()
    return html[:cut], html[cut:]


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
        if _is_forward_marker(stripped):
            start = index + 1
        elif outlook_forward:
            if ORIGINAL_MESSAGE.fullmatch(stripped) or SEPARATOR.fullmatch(stripped):
                start = index + 1
            elif _field_kind(stripped) == "from" and _header_block_follows(lines, index):
                start = index
        original = None if start is None else _read_forward(lines, start)
        if original is not None:
            return original
    return None


def _splitter(lines: list[str], index: int, line: str) -> int | None:
    """How many lines the separator that starts quoted history at `index` spans, or None.

    Cheap character tests come first: this runs once per line of every message.
    """
    if not line or len(line) > MAX_LINE or line[0] == ">":
        return None
    if REPLY_MARKER in line:
        return 1
    if line[0] == "-" and (ORIGINAL_MESSAGE.fullmatch(line) or FENCED.fullmatch(line)):
        return 1
    if line[0] == "_":
        following = _next_nonblank(lines, index + 1)
        if SEPARATOR.fullmatch(line) and following is not None and _field_kind(lines[following].strip()) == "from":
            return 1
        return None
    if _is_attribution(lines, index, line):
        return 1
    if ATTRIBUTION_START.match(line) and not line.endswith(":"):
        joined = line
        for extra in range(1, _MAX_WRAPPED):
            if index + extra >= len(lines) or len(joined) > MAX_LINE:
                break
            more = lines[index + extra].strip()
            unquoted = more.lstrip("> ")
            if unquoted and ATTRIBUTION_START.match(unquoted) and _is_attribution(lines, index + extra, unquoted):
                return None  # a signature line above an attribution of its own
            joined = f"{joined} {more}" if more else joined
            if more and _is_attribution(lines, index + extra, joined):
                return extra + 1
    kind = _field_kind(line)
    # An indented Date: block is a bounce quoting the original headers, not history.
    if (kind == "from" or kind == "date" and not lines[index][0].isspace()) and _header_block_follows(lines, index, kind):
        return 1
    return None


def _is_attribution(lines: list[str], last: int, line: str) -> bool:
    """Whether `line` (ending at line `last`) says who wrote the quote below it."""
    end = line[-1]
    if end not in ":->":
        return False
    has_address = "@" in line
    starts = ATTRIBUTION_START.match(line) is not None
    if end != ">" and (ATTRIBUTION.search(line) and (starts or has_address) or starts and VERB_FIRST.search(line)):
        return has_address or any(char.isdigit() for char in line)
    if has_address and DATED_ADDRESS.match(line):
        following = _next_nonblank(lines, last + 1)
        quoted = following is not None and lines[following].lstrip().startswith(">")
        return quoted and not ATTRIBUTION.search(lines[following])  # not a wrapped "> wrote:"
    return False


def _inline_start(line: str) -> int:
    """Where in its line an attribution begins when the reply shares the line with it."""
    found = INLINE_ATTRIBUTION.search(line.rstrip())
    if found is None or not line[: found.start()].strip():
        return 0
    return found.start()


def _quote_end(lines: list[str], start: int) -> int | None:
    """The first line after a ">" quote that the sender wrote below it, or None.

    Only a ">"-quoted history can have new words below it; unquoted history (Outlook's
    header block) runs to the end.
    """
    first = _next_nonblank(lines, start)
    if first is None or not lines[first].lstrip().startswith(">"):
        return None
    end = next(
        (index for index in range(first, len(lines)) if lines[index].strip() and not lines[index].lstrip().startswith(">")),
        None,
    )
    if end is None or any(line.lstrip().startswith(">") for line in lines[end:]):
        return None  # quoted lines further down: the break was a wrapped link, not a reply
    return end


def _split_bare_quote(text: str, lines: list[str], offsets: list[int]) -> tuple[str, str]:
    """A ">" quote with no attribution: history when it ends the text, or when the text
    starts with it and the sender wrote below (a ">" run with words on both sides is
    left alone: it is usually not a quote)."""
    first = next((index for index, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith(">"):
        end = _quote_end(lines, first)
        if end is not None:
            return text[offsets[end] :], text[: offsets[end]]
    tail = _quoted_tail(lines)
    cut = offsets[tail] if tail is not None else len(text)
    return text[:cut], text[cut:]


def _is_forward_marker(line: str) -> bool:
    """Gmail's "---------- Forwarded message ---------" or Apple's "Begin forwarded message:"."""
    return (
        0 < len(line) <= MAX_LINE
        and (line[0] == "-" or line[-1] == ":")
        and FORWARD_MARKER.fullmatch(line) is not None
    )


def _header_block_follows(lines: list[str], index: int, first: str = "from") -> bool:
    """A From: (or Date:) line at `index` opens a quoted header block: a From: line is
    followed by a date/sent line, a Date: line by a from, to or subject line."""
    kinds = set()
    for line in lines[index + 1 : index + 6]:
        kind = _field_kind(line.strip())
        if kind == first:  # a second From: is another block, not this one
            break
        kinds.add(kind)
    if first == "from":
        return "date" in kinds
    return bool(kinds & {"from", "to", "subject"})


def _field_kind(line: str) -> str | None:
    """The kind ("from", "date", "to", "cc", "subject") of a quoted header line, any language."""
    if len(line) > MAX_LINE or (":" not in line[:24] and "：" not in line[:24]):
        return None
    match = FIELD.match(line)
    return FIELD_KINDS.get(match.group(1).lower()) if match else None


def _quoted_tail(lines: list[str]) -> int | None:
    """Index of the first line of the run of ">" lines that ends the text, if any."""
    start = None
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index].strip()
        if line.startswith(">"):
            start = index
        elif line:
            break
    return start


def _read_forward(lines: list[str], start: int) -> ForwardedOriginal | None:
    """Read the forwarded header block (From: first) at `start` and the body below it."""
    index = _next_nonblank(lines, start)
    if index is None:
        return None
    quoted = lines[index].lstrip().startswith(">")
    read = _unquote if quoted else str
    first = read(lines[index]).strip()
    if _field_kind(first) != "from":
        return None
    fields: dict[str, str] = {}
    last = ""
    end = min(len(lines), index + _MAX_FORWARD_FIELDS)
    while index < end and (line := read(lines[index]).strip()):
        kind = _field_kind(line)
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


def _is_quote_container(tag: str, attributes: str) -> bool:
    for match in _ATTRIBUTE.finditer(attributes):
        name = match.group(1).lower()
        value = next(group for group in match.groups()[1:] if group is not None)
        if name == "class" and _QUOTE_CLASSES.intersection(value.split()):
            return True
        if name == "id" and value.lower() in _QUOTE_IDS:
            return True
        if name == "type" and tag == "blockquote" and value.lower() == "cite":
            return True
    return False


def _enclosing_tag_start(html: str, position: int) -> int:
    """Start of the nearest opening tag before `position` (or `position` itself)."""
    start = html.rfind("<", 0, position)
    while start != -1 and html.startswith("</", start):
        start = html.rfind("<", 0, start)
    return position if start == -1 else start


def _next_nonblank(lines: list[str], start: int) -> int | None:
    for index in range(start, min(len(lines), start + 3)):
        if lines[index].strip():
            return index
    return None


def _unquote(line: str) -> str:
    stripped = line.lstrip()
    if not stripped.startswith(">"):
        return line
    stripped = stripped[1:]
    return stripped[1:] if stripped.startswith(" ") else stripped


def _offsets(lines: list[str]) -> list[int]:
    offsets = []
    position = 0
    for line in lines:
        offsets.append(position)
        position += len(line)
    return offsets
