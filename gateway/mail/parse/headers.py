"""Reading a message's top-level headers: the `Headers` view, addresses, dates and message ids.

The header section is decoded once into `Headers`, a case-insensitive, multi-valued,
read-only view whose words are decoded through `gateway.mail.encoded_words`, alongside the
raw values (8-bit bytes kept as surrogates) that the readers here start from. From/To/Cc/
Reply-To are read by mail-parser's address parser (on a charset-repaired value where the
header carries 8-bit bytes, with the stdlib's parser as a fallback), the first Date header
by mail-parser's date parser, and Message-ID/In-Reply-To/References are normalized to ids
without angle brackets. Anything unreadable becomes a note in the caller's defect list
rather than an exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import overload

from mailparser.dates import parse_mail_date
from mailparser.utils import get_addresses

from gateway.mail.addresses import Address, is_valid_address
from gateway.mail.charsets import mixed_decode, wire_bytes
from gateway.mail.detection import MessageCharsets
from gateway.mail.encoded_words import decode_header_value
from gateway.mail.parse.evidence import message_charsets

_MAX_MESSAGE_ID = 998
_EMPTY_GROUP = re.compile(r"\s*[^:<>@\s][^:<>@]*:\s*;\s*$")  # "undisclosed-recipients:;"
_BRACKETED = re.compile(r"<([^<>]*)>")
_COMMA_WORD = re.compile(r"=\?[^?\s]+\?[qQ]\?[^?\s]*,[^?\s]*\?=")


class Headers:
    """Case-insensitive, multi-valued, read-only view of the decoded top-level headers."""

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items = tuple(items)
        self._index: dict[str, list[str]] = {}
        for name, value in self._items:
            self._index.setdefault(name.lower(), []).append(value)

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header `name`, or `default`."""
        values = self._index.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value of header `name`, in message order."""
        return list(self._index.get(name.lower(), ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"


# What `tickets show --json` and the API show of a stored message's header section: the
# headers a developer asserts on (addressing, threading, automatic-mail markers), not the
# transport trail, and never Subject (the stored subject is the one with quoted links removed).
SHOWN_HEADERS = frozenset({
    "from", "sender", "reply-to", "to", "cc", "delivered-to", "return-path", "date", "message-id",
    "in-reply-to", "references", "auto-submitted", "precedence", "list-id", "list-unsubscribe",
    "x-autoreply", "x-autorespond", "x-auto-response-suppress", "content-type", "mime-version",
})


def shown_headers(raw: bytes) -> list[tuple[str, str]]:
    """The `SHOWN_HEADERS` of `raw` in message order, each value decoded onto one line."""
    try:
        message = BytesHeaderParser(policy=compat32).parsebytes(raw)
    except Exception:  # noqa: BLE001 - a header section too broken to read shows nothing
        return []
    return [
        (name, decode_header_value(str(value), name)[0])
        for name, value in message.items()
        if name.lower() in SHOWN_HEADERS
    ]


def normalize_message_id(value: str) -> str | None:
    """A Message-ID without angle brackets and whitespace; None when nothing usable is left."""
    candidates = [found for found in _BRACKETED.findall(value) if found.strip()] or [value]
    candidate = "".join(candidates[0].split()).strip("<>")
    return candidate if 0 < len(candidate) <= _MAX_MESSAGE_ID else None


def _headers(
    message: Message, notes: list[str], charsets: MessageCharsets | None = None
) -> tuple[Headers, dict[str, list[str]]]:
    """The decoded header view, and the raw values (8-bit as surrogates) by lower-case name.

    Raw 8-bit header bytes are read with what the rest of the message says (`charsets`).
    """
    charsets = charsets or message_charsets(message)
    items = []
    raw: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        text = str(value)
        decoded, header_notes = decode_header_value(text, name, charsets)
        items.append((name, decoded))
        raw.setdefault(name.lower(), []).append(text)
        notes.extend(header_notes)
    return Headers(items), raw


def _addresses(
    raw_headers: dict[str, list[str]], name: str, notes: list[str]
) -> tuple[Address, ...]:
    """Every mailbox of every `name` header (repeated headers all count), read by
    mail-parser's address parser."""
    values = raw_headers.get(name.lower(), [])
    pairs = [pair for value in values for pair in _parse_addresses(value) if pair[1]]
    if not pairs and any(value.strip() and not _EMPTY_GROUP.match(value) for value in values):
        notes.append(f"unparseable {name} address")
    found = []
    for raw_name, raw_address in pairs:
        # "=?" left in a name is an encoded word mail-parser could not decode.
        display = decode_header_value(raw_name, name)[0] if "=?" in raw_name else raw_name.strip()
        address = raw_address.strip().lower()
        found.append(Address(email=address, name="" if display.lower() == address else display))
    return tuple(found)


def _parse_addresses(value: str) -> list[tuple[str, str]]:
    """mail-parser's address parser on a charset-repaired value; the stdlib's if it fails."""
    if not value.isascii():
        value = mixed_decode(wire_bytes(value))
    if "," in value and "=?" in value:
        value = _COMMA_WORD.sub(_quoted_word, value)
    try:
        pairs: list[tuple[str, str]] = get_addresses(value, decode_names=True)
    except Exception:  # e.g. HeaderParseError from a corrupt encoded word in a name
        pairs = getaddresses([value])
    return pairs


def _quoted_word(match: re.Match[str]) -> str:
    """An encoded word with a comma in it (Q encoding leaves commas as they are) as the
    quoted string it stands for, so the address parser does not split the name there."""
    text = decode_header_value(match.group(), "From")[0]
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sender(
    raw_headers: dict[str, list[str]], headers: Headers, notes: list[str]
) -> Address | None:
    """The first valid address of From, else Sender, else Reply-To; without one, the From
    name alone with a "sender unclear" note (the envelope is the caller's last resort)."""
    named = _addresses(raw_headers, "From", notes)
    for field in ("From", "Sender", "Reply-To"):
        found = named if field == "From" else _addresses(raw_headers, field, [])
        valid = next((address for address in found if is_valid_address(address.email)), None)
        if valid is not None:
            if field != "From":
                notes.append(f"sender unclear: no valid From address, {field} used")
            return valid if valid.name or not named else Address(valid.email, named[0].name)
    if "from" not in raw_headers:
        return None
    notes.append("sender unclear: no valid From, Sender or Reply-To address")
    return Address(email="", name=named[0].name if named else "")  # never the raw header as a name


def _date(raw_headers: dict[str, list[str]], notes: list[str]) -> datetime | None:
    """mail-parser's reading of the first Date header, aware UTC."""
    if "date" not in raw_headers:
        return None
    date: datetime | None = parse_mail_date(raw_headers["date"][0]).value
    if date is None:
        notes.append("invalid Date header")
    return date


def _message_ids(values: list[str]) -> tuple[str, ...]:
    ids: dict[str, None] = {}
    for value in values:
        found = _BRACKETED.findall(value) or value.split()
        for candidate in found:
            normalized = normalize_message_id(candidate)
            if normalized is not None:
                ids[normalized] = None
    return tuple(ids)
