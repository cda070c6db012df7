"""Header words: RFC 2047 encoded words and RFC 2231 parameters, decoded leniently.

This module owns turning a raw header value into one line of text: folds are undone, raw
8-bit bytes (which the stdlib parser keeps as surrogate escapes) are read as undeclared
text through `gateway.mail.charsets`, encoded words are decoded even where senders break
the rules (adjacent words of one charset joined as bytes before decoding, so a character
split across two words survives; base64 without padding or with junk in it; words inside
quoted strings or glued to other text), and decoded CR/LF and other controls become
spaces. MIME parameters (file names) come as the stdlib returns them, an RFC 2231 triple
or a string that may hold encoded words. Nothing here raises; every repair is a note.
"""

from __future__ import annotations

import base64
import binascii
import re

from gateway.mail.charsets import decode_bytes, normalize_charset, undeclared, wire_bytes
from gateway.mail.detection import NO_EVIDENCE, MessageCharsets

_ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([bBqQ])\?([^?]*)\?=")
_FOLD = re.compile(r"\n(?=[ \t])")
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def decode_header_value(
    raw: str, name: str = "header", charsets: MessageCharsets = NO_EVIDENCE
) -> tuple[str, list[str]]:
    """Unfold a raw header value, repair 8-bit bytes and decode RFC 2047 words leniently.

    `raw` is the value as the stdlib parser keeps it (8-bit bytes as surrogate escapes).
    The result is a single line: decoded CR/LF and other controls become spaces.
    """
    notes: list[str] = []
    if not raw.isascii():
        raw, note = undeclared(wire_bytes(raw), None, charsets)
        if note:
            notes.append(f"{note} in {name} header")
    value = _FOLD.sub("", raw.replace("\r\n", "\n")).strip() if "\n" in raw else raw.strip()
    if "=?" in value:
        value = _decode_words(value, name, notes)
    if not value.isprintable():
        value = _CONTROLS.sub(" ", value)
    return value, notes


def decode_parameter(
    value: str | tuple[str | None, str | None, str], name: str
) -> tuple[str, list[str]]:
    """A MIME parameter (file name) as the stdlib returns it: an RFC 2231 (charset, language,
    text) triple holding the bytes as latin-1, or a string that may carry RFC 2047 words."""
    if isinstance(value, str):
        return decode_header_value(value, name)
    charset, _, encoded = value
    try:
        data = str(encoded).encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:
        data = wire_bytes(str(encoded))
    text, note = decode_bytes(data, charset)
    return text, [f"{note} in {name}"] if note else []


def _decode_words(value: str, name: str, notes: list[str]) -> str:
    """Decode every encoded word; adjacent words of one charset are joined as bytes first."""
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset: str | None = None
    position = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending:
            text, note = decode_bytes(b"".join(pending), pending_charset)
            out.append(text)
            if note:
                notes.append(f"{note} in {name} header")
            pending.clear()
        pending_charset = None

    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        if between and not (pending and between.isspace()):
            flush()
            out.append(between)
        charset, encoding, encoded = match.groups()
        data = _word_bytes(encoding, encoded)
        if data is None:
            flush()
            notes.append(f"broken encoded word in {name} header")
            out.append(match.group())
        else:
            charset = normalize_charset(charset)
            if pending and charset != pending_charset:
                flush()
            pending_charset = charset
            pending.append(data)
        position = match.end()
    flush()
    out.append(value[position:])
    return "".join(out)


def _word_bytes(encoding: str, encoded: str) -> bytes | None:
    """The bytes of one encoded word's text, or None when they cannot be recovered."""
    data = wire_bytes(encoded)
    if encoding in "qQ":
        return binascii.a2b_qp(data, header=True)
    data = _NOT_BASE64.sub(b"", data.split(b"=", 1)[0])
    if len(data) % 4 == 1:
        return None
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4))
    except binascii.Error:
        return None
