"""Charset repair: turning the bytes real mail carries into text.

This module owns every decision about which codec reads a piece of mail text. Declared
charsets are mapped to the supersets that senders actually use (gb2312 holding GBK is read
as gb18030, ks_c_5601-1987 and euc-kr as cp949, Shift_JIS as cp932, iso-8859-1 as
windows-1252), the ISO-2022-JP family is read by `gateway.mail.iso2022jp`, and undeclared
or broken 8-bit text is read as UTF-8, else in a charset the message declares elsewhere or
`gateway.mail.detection` recognises, else with each undecodable stretch read as
windows-1252, so UTF-8 and Latin-1 lines in one body both come out right; text mislabelled
as a charset it does not decode in is tried as UTF-8. Header words (RFC 2047, RFC 2231)
are `gateway.mail.encoded_words`, which decodes their bytes here. Nothing here raises on
any input; every repair that changes what the sender declared is reported as a short
human-readable note.
"""

from __future__ import annotations

import codecs

from gateway.mail.detection import NO_EVIDENCE, MessageCharsets, detect
from gateway.mail.iso2022jp import decode_iso2022jp

_LATIN1_FALLBACK = "wicket.latin1"
_CP1252_FALLBACK = "wicket.cp1252"


def _latin1_fallback(error: UnicodeError) -> tuple[str, int]:
    """Bytes windows-1252 leaves undefined (0x81, 0x8D, ...) read as Latin-1."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start : error.end].decode("latin-1"), error.end


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    """Bytes that are not UTF-8 read as windows-1252, stretch by stretch."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    chunk = error.object[error.start : error.end]
    return chunk.decode("cp1252", _LATIN1_FALLBACK), error.end


codecs.register_error(_LATIN1_FALLBACK, _latin1_fallback)
codecs.register_error(_CP1252_FALLBACK, _cp1252_fallback)

_ASCII = frozenset(("us-ascii", "ascii", "ansi_x3.4-1968"))
_WESTERN = frozenset(
    "iso-8859-1 iso8859-1 iso_8859-1 latin1 latin-1 l1 windows-1252 cp1252 x-cp1252".split()
)
_SUPERSETS = {
    **dict.fromkeys("gb2312 gb_2312-80 euc-cn x-euc-cn gbk x-gbk cp936 chinese".split(), "gb18030"),
    **dict.fromkeys(
        "ks_c_5601-1987 ks_c_5601-1989 ks_c_5601 ksc5601 ksc_5601 euc-kr x-euc-kr "
        "korean windows-949 x-windows-949".split(),
        "cp949",
    ),
    **dict.fromkeys(
        "shift_jis shift-jis sjis x-sjis ms_kanji windows-31j csshiftjis".split(), "cp932"
    ),
    **dict.fromkeys("big5 x-x-big5 csbig5".split(), "cp950"),
    "iso-8859-8-i": "iso-8859-8",
    "x-mac-roman": "mac-roman",
}
_ISO2022JP = frozenset(
    "iso-2022-jp csiso2022jp iso-2022-jp-1 iso-2022-jp-2 iso-2022-jp-3 iso-2022-jp-ext "
    "iso-2022-jp-2004 iso-2022-jp-ms cp50220 cp50221 cp50222".split()
)
_NOT_MAIL_CODECS = frozenset(
    {"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape"}
)


def storable(text: str) -> str:
    """`text` as every database column takes it: NUL and lone surrogates replaced by U+FFFD.

    PostgreSQL refuses NUL in text and no driver encodes a lone surrogate
    (aiosmtpd keeps undecodable envelope bytes as surrogates), so one such character in a
    header, parameter or envelope address used to fail the whole write. The raw bytes keep
    the original.
    """
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").replace("\x00", "\ufffd")


def normalize_charset(label: str | None) -> str | None:
    """The lower-cased charset label without quotes or an RFC 2231 language, or None."""
    if not label:
        return None
    label = label.strip().strip("\"'").split("*", 1)[0].strip().lower()
    return label or None


def wire_bytes(text: str) -> bytes:
    """The bytes behind a str the stdlib parser made from bytes (8-bit kept as surrogates)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that never came from a byte
        return text.encode("utf-8", "replace")


def mixed_decode(data: bytes) -> str:
    """UTF-8 where the bytes are UTF-8, windows-1252 for every stretch that is not."""
    return data.decode("utf-8", _CP1252_FALLBACK)


def decode_bytes(
    data: bytes, charset: str | None, charsets: MessageCharsets = NO_EVIDENCE
) -> tuple[str, str | None]:
    """Decode body or header bytes declared as `charset`; returns (text, repair note or None).

    `charsets` is what the rest of the message says, for text that declares no charset.
    """
    label = normalize_charset(charset)
    if label is None or label in _ASCII:
        return undeclared(data, label, charsets)
    if label in _WESTERN:
        return data.decode("cp1252", _LATIN1_FALLBACK), None
    if label in ("utf-8", "utf8"):
        try:
            return data.decode("utf-8"), None
        except UnicodeDecodeError:
            detected = detect(data, charsets)  # None for UTF-8 with a stray byte
            if detected is not None:
                return detected[0], f"8-bit text (declared {label}) detected as {detected[1]}"
            return mixed_decode(data), "invalid UTF-8 bytes decoded as windows-1252"
    if label in _ISO2022JP:
        return decode_iso2022jp(data, label) or _replace_decode(data, "iso2022_jp_ext", label)
    if label in ("gb2312", "euc-cn"):
        try:
            return data.decode("gb2312"), None
        except UnicodeDecodeError:
            pass
        try:
            return data.decode("utf-8"), f"charset {label} mislabelled, decoded as utf-8"
        except UnicodeDecodeError:
            pass
        try:
            return data.decode("gb18030"), f"charset {label} decoded as gbk"
        except UnicodeDecodeError:
            return data.decode("gb18030", "replace"), f"charset {label} had undecodable bytes"
    codec = _SUPERSETS.get(label, label)
    if not _is_mail_charset(codec):
        return mixed_decode(data), f"unknown charset {label} decoded as utf-8/windows-1252"
    try:
        text = data.decode(codec)
        text.encode("utf-8")  # some codecs produce lone surrogates
    except Exception:  # the sender picks the codec; any failure means "not this charset"
        try:
            return data.decode("utf-8"), f"charset {label} mislabelled, decoded as utf-8"
        except UnicodeDecodeError:
            return _replace_decode(data, codec, label)
    return text, None


def undeclared(
    data: bytes, label: str | None, charsets: MessageCharsets = NO_EVIDENCE
) -> tuple[str, str | None]:
    """8-bit text with no (or an ASCII, or a wrong) charset: UTF-8, else what the rest of
    the message or the detector says, else UTF-8 with stretches of windows-1252."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        declared = f"declared {label}" if label else "undeclared"
        detected = detect(data, charsets)
        if detected is not None:
            return detected[0], f"8-bit text ({declared}) detected as {detected[1]}"
        return mixed_decode(data), f"8-bit text ({declared}) decoded as utf-8/windows-1252"


def _replace_decode(data: bytes, codec: str, label: str) -> tuple[str, str]:
    """Last resort for a known codec that refuses the bytes."""
    try:
        text = data.decode(codec, "replace")
        text.encode("utf-8")
    except Exception:
        return mixed_decode(data), f"charset {label} unusable, decoded as utf-8/windows-1252"
    return text, f"charset {label} had undecodable bytes"


def _is_mail_charset(codec: str) -> bool:
    """Whether `codec` is a text codec mail may use (not idna, punycode, escapes: some of
    those decode in quadratic time, none of them is a charset)."""
    try:
        return codecs.lookup(codec).name not in _NOT_MAIL_CODECS
    except Exception:  # LookupError, or ValueError for a label with a NUL in it
        return False
