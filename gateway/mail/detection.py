"""Guessing the charset of 8-bit text that declares none, or declares the wrong one.

Evidence is weighed best first, and a message is read as one whole (`MessageCharsets`):
the charsets it declares elsewhere (a part's `charset=`, the encoded words of a header),
tried strictly, since a client that writes raw Shift_JIS into a Subject writes Shift_JIS
everywhere; then the charset guessed from all its undeclared 8-bit text pooled, so a short
subject is read like the longer body beside it; only then a guess from the text alone.
A guess comes first from `gateway.mail.short_text`, which tells Cyrillic, Greek and
Hebrew from western text by the shape of its words (unless the message declares a western
charset), then from charset-normalizer, restricted to the codecs mail uses, when there are
enough 8-bit bytes for statistics (with a few dozen, it takes Russian for Greek). Text that is mostly valid UTF-8 with a stray byte is never
guessed: the caller's UTF-8/windows-1252 reading is right for it, as it is for a western
single-byte guess. `None` means "no better answer than the caller's fallback".
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable
from functools import cached_property

from charset_normalizer import from_bytes

from gateway.mail.short_text import guess_short

_MIN_DETECTED = 32  # fewer non-ASCII bytes than this are too few for a statistical guess
_MAX_DETECTED = 64 * 1024  # the detector reads this much at most
_MAX_SHAPED = 2048  # the shape of the words is read from this much: it is clear long before
_CANDIDATES = (
    "utf_8", "cp932", "euc_jp", "iso2022_jp", "gb18030", "big5", "cp949", "cp1251", "koi8_r",
    "cp1250", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp874", "cp1258",
)  # fmt: skip
_WESTERN = frozenset({"cp1252", "latin_1", "iso8859_1", "iso8859_15", "cp1250", "mac_roman", "ascii", "utf_8"})
_NO_HINT = frozenset({"cp1252", "latin_1", "iso8859_1", "ascii", "utf_8"})  # the fallback reads these
_WESTERN_LABELS = frozenset({"cp1252", "latin_1", "iso8859_1", "iso8859_15"})
_HINT_CODECS = {
    "shift_jis": "cp932", "x-sjis": "cp932", "gb2312": "gb18030", "gbk": "gb18030",
    "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "big5": "cp950", "windows-1251": "cp1251",
}  # fmt: skip
# Codecs no undeclared 8-bit text is in (and idna and punycode decode in quadratic time).
_NOT_TEXT = ("utf_16", "utf_32", "utf_7", "idna", "punycode", "undefined", "unicode_escape", "raw_unicode_escape")
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


class MessageCharsets:
    """What one message says about the charset of its 8-bit text that declares none.

    Both sources are read only when some text needs them: most mail is UTF-8 or declared.
    """

    def __init__(
        self,
        declared: Callable[[], Iterable[str]] = tuple,
        undeclared: Callable[[], Iterable[bytes]] = tuple,
    ) -> None:
        self._declared = declared
        self._undeclared = undeclared

    @cached_property
    def declared(self) -> tuple[str, ...]:
        """The codecs of the charsets the message declares, in order, without repeats."""
        found = (_codec(label) for label in self._declared())
        return tuple(dict.fromkeys(codec for codec in found if codec is not None))

    @cached_property
    def western(self) -> bool:
        """Whether the message declares a western single-byte charset somewhere."""
        return any(codec in _WESTERN_LABELS for codec in self.declared)

    @cached_property
    def pool(self) -> bytes:
        """All the message's undeclared 8-bit text that is not UTF-8, taken together."""
        return b"\n".join(self._undeclared())

    @cached_property
    def pooled(self) -> str | None:
        """The codec guessed from the pool."""
        return _guess(self.pool, self.western) if self.pool else None


NO_EVIDENCE = MessageCharsets()


def detect(data: bytes, charsets: MessageCharsets = NO_EVIDENCE) -> tuple[str, str] | None:
    """(text, codec name) for 8-bit `data` that is not UTF-8, or None."""
    if _mostly_utf8(data):
        return None
    for codec in charsets.declared:
        if codec in _NO_HINT:
            continue
        if (text := _strict(data, codec)) is not None:
            return text, codec
    pooled = charsets.pooled
    if pooled is not None and (text := _strict(data, pooled)) is not None:
        return text, pooled
    own = None if charsets.pool == data else _guess(data, charsets.western)  # guessed already
    if own is not None and (text := _strict(data, own)) is not None:
        return text, own
    return None


def _guess(data: bytes, western: bool) -> str | None:
    """A codec for `data` from the text alone: statistics when long enough, else its shape."""
    if _mostly_utf8(data):
        return None
    sample = data[:_MAX_DETECTED]
    shaped = None if western else guess_short(sample[:_MAX_SHAPED])
    if shaped is not None or sum(byte >= 0x80 for byte in sample) < _MIN_DETECTED:
        return shaped
    best = from_bytes(sample, cp_isolation=list(_CANDIDATES)).best()
    if best is None or best.encoding in _WESTERN:
        return None
    return str(best.encoding)


def _mostly_utf8(data: bytes) -> bool:
    """Whether most of the 8-bit bytes form valid UTF-8 sequences (UTF-8 with a stray byte)."""
    high = sum(byte >= 0x80 for byte in data[:_MAX_DETECTED])
    in_sequences = sum(len(found) for found in _UTF8_SEQUENCE.findall(data, 0, _MAX_DETECTED))
    return high > 0 and in_sequences * 2 > high


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _codec(label: str) -> str | None:
    """The codec a declared label names, if it is one mail text may be in."""
    label = _HINT_CODECS.get(label, label)
    try:
        codec = codecs.lookup(label).name.replace("-", "_")
    except (LookupError, ValueError):  # ValueError: a label with a NUL in it
        return None
    return None if codec.startswith(_NOT_TEXT) else codec
