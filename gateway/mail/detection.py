"""Guessing the charset of 8-bit text that declares none, or declares the wrong one.

Two sources of evidence, best first: the charsets the same message declares elsewhere
(a body part's `charset=`, the encoded words of another header), tried strictly, since a
client that writes raw Shift_JIS into a Subject writes Shift_JIS everywhere; then, for
runs long enough to judge (short file names and subjects are not), charset-normalizer
restricted to the codecs mail uses. A western single-byte guess is left to the caller's
UTF-8/windows-1252 reading, which is right for those and cheaper. `None` means "no better
answer than the caller's fallback".
"""

from __future__ import annotations

import codecs

from charset_normalizer import from_bytes

_MIN_DETECTED = 32  # fewer non-ASCII bytes than this are too few for a statistical guess
_MAX_DETECTED = 64 * 1024  # the detector reads this much at most
_CANDIDATES = (
    "utf_8", "cp932", "euc_jp", "iso2022_jp", "gb18030", "big5", "cp949", "cp1251", "koi8_r",
    "cp1250", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp874", "cp1258",
)  # fmt: skip
_WESTERN = frozenset({"cp1252", "latin_1", "iso8859_1", "iso8859_15", "cp1250", "mac_roman", "ascii", "utf_8"})
_NO_HINT = frozenset({"cp1252", "latin_1", "iso8859_1", "ascii", "utf_8"})  # the fallback reads these
_HINT_CODECS = {
    "shift_jis": "cp932", "x-sjis": "cp932", "gb2312": "gb18030", "gbk": "gb18030",
    "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "big5": "cp950", "windows-1251": "cp1251",
}  # fmt: skip


def detect(data: bytes, hints: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """(text, codec name) for 8-bit `data` that is not UTF-8, or None."""
    for hint in hints:
        codec = _codec(hint)
        if codec is None or codec in _NO_HINT:
            continue
        try:
            return data.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            continue
    if sum(byte >= 0x80 for byte in data[:_MAX_DETECTED]) < _MIN_DETECTED:
        return None
    best = from_bytes(data[:_MAX_DETECTED], cp_isolation=list(_CANDIDATES)).best()
    if best is None or best.encoding in _WESTERN:
        return None
    try:
        return data.decode(best.encoding), best.encoding
    except (UnicodeDecodeError, LookupError):  # the sample decoded, the whole did not
        return None


def _codec(label: str) -> str | None:
    label = _HINT_CODECS.get(label, label)
    try:
        return codecs.lookup(label).name.replace("-", "_")
    except LookupError:
        return None
