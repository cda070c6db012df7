"""What one message says about the charset of its text that declares none.

`message_charsets` gathers, when some text first needs them, the two kinds of evidence
`gateway.mail.detection` weighs for a message: the charsets it names (the encoded words of
its headers, then its parts' `charset=` labels) and its 8-bit text that names no charset
(raw 8-bit header values, and text parts with no charset, an ASCII one, or a UTF-8 one
their bytes are not) pooled together, so that a short subject is read like the longer
body beside it.
"""

from __future__ import annotations

import re
from email.message import Message

from gateway.mail.charsets import normalize_charset, wire_bytes
from gateway.mail.detection import MessageCharsets

_WORD_CHARSET = re.compile(r"=\?([^?*\s]+)[^?\s]*\?[bBqQ]\?")
_UNDECLARED = frozenset({"us-ascii", "ascii", "ansi_x3.4-1968", "utf-8", "utf8"})
_MAX_LABELS = 8
_MAX_POOLED = 64 * 1024  # the detector reads this much at most


def message_charsets(message: Message) -> MessageCharsets:
    return MessageCharsets(lambda: declared_charsets(message), lambda: undeclared_text(message))


def declared_charsets(message: Message) -> tuple[str, ...]:
    """The charsets a message names: its encoded words first, then its parts' labels."""
    found: dict[str, None] = {}
    for _, value in message.raw_items():
        for label in _WORD_CHARSET.findall(str(value)):
            found[label.lower()] = None
    try:
        for part in message.walk():
            label = part.get_content_charset(None)
            if label:
                found[label] = None
    except RecursionError:  # nesting too deep to walk: the labels found so far
        pass
    return tuple(found)[:_MAX_LABELS]


def undeclared_text(message: Message) -> list[bytes]:
    """The message's 8-bit header values and undeclared text parts that are not UTF-8."""
    pieces = [wire_bytes(str(value)) for _, value in message.raw_items() if not str(value).isascii()]
    try:
        for part in message.walk():
            if part.is_multipart() or part.get_content_maintype() != "text":
                continue
            label = normalize_charset(part.get_content_charset(None))
            if label is None or label in _UNDECLARED:
                data = part.get_payload(decode=True)
                pieces.append(data if isinstance(data, bytes) else b"")
            if sum(map(len, pieces)) > _MAX_POOLED:
                break
    except RecursionError:  # nesting too deep to walk: the text found so far
        pass
    return [piece for piece in pieces if not _is_utf8(piece)]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
