"""ISO-2022-JP as Japanese mail clients really write it.

This module owns reading text labelled ISO-2022-JP (or one of its variant labels): the
strict codec first, then the variants Python knows (-2 and -ext), and finally a rewrite of
the escape-delimited JIS segments as Shift_JIS so that cp932 reads the NEC and IBM
extension rows (circled numbers, Roman numerals) that Outlook and other Windows clients
put into "ISO-2022-JP" mail (cp50220-style). `None` means none of these could read it.
"""

from __future__ import annotations

import re

_ISO2022JP_CODECS = ("iso2022_jp", "iso2022_jp_2", "iso2022_jp_ext")
_JIS_ESCAPE = re.compile(rb"\x1b(\$@|\$B|\(B|\(J|\(I)")


def decode_iso2022jp(data: bytes, label: str) -> tuple[str, str | None] | None:
    """(text, repair note or None) for ISO-2022-JP and the variants mail clients write
    under its name; None when no reading works."""
    for codec in _ISO2022JP_CODECS:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        return text, None if codec == "iso2022_jp" else f"charset {label} decoded as {codec}"
    try:
        return _jis_to_sjis(data).decode("cp932"), f"charset {label} decoded as cp932"
    except UnicodeDecodeError:
        return None


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
