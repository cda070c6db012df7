"""Charset repair: turning the bytes and encoded words that real mail carries into text.

This module owns every decision about which codec reads a piece of mail text. Declared
charsets are mapped to the supersets that senders actually use (gb2312 holding GBK is read
as gb18030, ks_c_5601-1987 and euc-kr as cp949, Shift_JIS as cp932, iso-8859-1 as
windows-1252), the ISO-2022-JP family falls back through its variants and finally through
a JIS-to-cp932 conversion (cp50220-style mail), and undeclared or broken 8-bit text is read
as UTF-8, else in a charset the message declares elsewhere or `gateway.mail.detection`
recognises, else with each undecodable stretch read as windows-1252, so UTF-8 and Latin-1
lines in one body both come out right; text mislabelled as a charset it does not decode in
is tried as UTF-8. RFC 2047 encoded words and RFC 2231 parameters are decoded
leniently. Nothing here raises on any input; every repair that changes what the sender
declared is reported as a short human-readable note.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

from gateway.mail.detection import detect

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
_ISO2022JP_CODECS = ("iso2022_jp", "iso2022_jp_2", "iso2022_jp_ext")
_NOT_MAIL_CODECS = frozenset(
    {"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape"}
)
_JIS_ESCAPE = re.compile(rb"\x1b(\$@|\$B|\(B|\(J|\(I)")
_ENCODED_WORD = re.compile(r"=\?([^?\s]*)\?([bBqQ])\?([^?]*)\?=")
_FOLD = re.compile(r"\n(?=[ \t])")
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


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


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Decode body or header bytes declared as `charset`; returns (text, repair note or None)."""
    label = normalize_charset(charset)
    if label is None or label in _ASCII:
        return _undeclared(data, label)
    if label in _WESTERN:
        return data.decode("cp1252", _LATIN1_FALLBACK), None
    if label in ("utf-8", "utf8"):
        try:
            return data.decode("utf-8"), None
        except UnicodeDecodeError:
            return mixed_decode(data), "invalid UTF-8 bytes decoded as windows-1252"
    if label in _ISO2022JP:
        return _decode_iso2022jp(data, label)
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


def decode_header_value(raw: str, name: str = "header", hints: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """Unfold a raw header value, repair 8-bit bytes and decode RFC 2047 words leniently.

    `raw` is the value as the stdlib parser keeps it (8-bit bytes as surrogate escapes).
    The result is a single line: decoded CR/LF and other controls become spaces.
    """
    notes: list[str] = []
    if not raw.isascii():
        raw, note = _undeclared(wire_bytes(raw), None, hints)
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


def _undeclared(data: bytes, label: str | None, hints: tuple[str, ...] = ()) -> tuple[str, str | None]:
    """8-bit text with no (or an ASCII, or a wrong) charset: UTF-8, else what the message's
    other charsets or the detector say, else UTF-8 with stretches of windows-1252."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        declared = f"declared {label}" if label else "undeclared"
        detected = detect(data, hints)
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


def _decode_iso2022jp(data: bytes, label: str) -> tuple[str, str | None]:
    """ISO-2022-JP and the variants mail clients write under its name."""
    for codec in _ISO2022JP_CODECS:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        return text, None if codec == "iso2022_jp" else f"charset {label} decoded as {codec}"
    try:
        return _jis_to_sjis(data).decode("cp932"), f"charset {label} decoded as cp932"
    except UnicodeDecodeError:
        return _replace_decode(data, "iso2022_jp_ext", label)


def _jis_to_sjis(data: bytes) -> bytes:
    """Rewrite ISO-2022-JP escape segments as Shift_JIS so cp932 (NEC/IBM rows) can read them."""
    out = bytearray()
    mode = b"(B"
    position = 0
    for match in _JIS_ESCAPE.finditer(data):
        out += _jis_segment(data[position : match.start()], mode)
        mode = match.group(1)
        position = match.end()
    out += _jis_segment(data[position:], mode)
    return bytes(out)


def _jis_segment(chunk: bytes, mode: bytes) -> bytes:
    if mode == b"(I":
        return bytes(byte | 0x80 if 0x21 <= byte <= 0x5F else byte for byte in chunk)
    if mode not in (b"$B", b"$@"):
        return chunk
    out = bytearray()
    for index in range(0, len(chunk) - 1, 2):
        first, second = chunk[index], chunk[index + 1]
        if not (0x21 <= first <= 0x7E and 0x21 <= second <= 0x7E):
            out += chunk[index : index + 2]
            continue
        lead = ((first - 0x21) >> 1) + 0x81
        out.append(lead + 0x40 if lead > 0x9F else lead)
        if first % 2:
            out.append(second + 0x1F + (1 if second >= 0x60 else 0))
        else:
            out.append(second + 0x7E)
    if len(chunk) % 2:
        out.append(chunk[-1])
    return bytes(out)


def _is_mail_charset(codec: str) -> bool:
    """Whether `codec` is a text codec mail may use (not idna, punycode, escapes: some of
    those decode in quadratic time, none of them is a charset)."""
    try:
        return codecs.lookup(codec).name not in _NOT_MAIL_CODECS
    except Exception:  # LookupError, or ValueError for a label with a NUL in it
        return False
