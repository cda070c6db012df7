"""Reading a message's text: where the customer's new words end and quoted history begins.

This module owns the rules for finding quoted history in plain text: our own reply
marker, attribution lines in some twenty languages ("On <date>, <name> wrote:", wrapped
over several lines, sharing a line with the reply, fenced by dashes, or a dated address
above a ">" quote), "-----Original Message-----" and its translations, the underscore
separator, From/Sent (or Date/From) header blocks and runs of ">" lines. The words
themselves live in `gateway.mail.quote_patterns`, the line tests shared with the forward
reader in `gateway.mail.quote_lines`; HTML quote containers are `gateway.mail.html_quotes`
and inline forwards `gateway.mail.forwards`. A reply written above the history splits so
the halves concatenate to the input; one written below or between a ">" quote
(bottom-posting) gets the words around the quote, and the quote is put back at one place
to give the input again: no text is ever lost.
"""

from __future__ import annotations

from gateway.mail.quote_lines import field_kind, header_block_follows, is_forward_marker, next_nonblank
from gateway.mail.quote_patterns import (
    ATTRIBUTION,
    ATTRIBUTION_START,
    DATED_ADDRESS,
    FENCED,
    INLINE_ATTRIBUTION,
    MAX_LINE,
    ORIGINAL_MESSAGE,
    SEPARATOR,
    VERB_FIRST,
)

REPLY_MARKER = "##- Please type your reply above this line -##"

_MAX_WRAPPED = 5  # an attribution wrapped by a narrow client spans at most this many lines


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
        if is_forward_marker(stripped):
            return text, ""
        span = _splitter(lines, index, stripped)
        if span is not None:
            start = offsets[index] + _inline_start(line)
            end = _quote_end(lines, index + span)
            if end is None:
                return text[:start], text[start:]
            return text[:start] + text[offsets[end] :], text[start : offsets[end]]
    return _split_bare_quote(text, lines, offsets)


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
        following = next_nonblank(lines, index + 1)
        if SEPARATOR.fullmatch(line) and following is not None and field_kind(lines[following].strip()) == "from":
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
    kind = field_kind(line)
    # An indented Date: block is a bounce quoting the original headers, not history.
    if (kind == "from" or kind == "date" and not lines[index][0].isspace()) and header_block_follows(lines, index, kind):
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
        following = next_nonblank(lines, last + 1)
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
    first = next_nonblank(lines, start)
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


def _offsets(lines: list[str]) -> list[int]:
    offsets = []
    position = 0
    for line in lines:
        offsets.append(position)
        position += len(line)
    return offsets
