"""Hypothesis strategies for hostile email: raw bytes built by hand, so they can be wrong.

`emails()` draws a message as bytes: a header block with known and invented headers whose
values arrive as UTF-8, Latin-1, raw binary, RFC 2047 encoded words (valid, truncated or
naming charsets that do not exist) or overlong unfolded lines; a MIME tree up to three
levels deep (multipart with missing, repeated or lying boundaries, message/rfc822,
delivery reports, attachments with RFC 2231 and path-like names); bodies in a declared
charset that may not match their bytes, under a transfer encoding that may be broken;
line endings CRLF, LF, CR or mixed; sizes from empty to a few hundred kilobytes. Then
`mutated()` may truncate it, splice random bytes in or cut pieces out.
"""

from __future__ import annotations

import base64
import quopri

from hypothesis import strategies as st

CHARSETS = [
    "utf-8", "us-ascii", "iso-8859-1", "windows-1252", "koi8-r", "shift_jis", "iso-2022-jp", "euc-kr",
    "gb2312", "gb18030", "big5", "utf-16", "utf-16le", "utf-7", "utf-32", "cp1251", "latin1",
    "x-unknown-charset", "", "utf8\x00", "unicode-1-1-utf-7", "idna", "punycode", "base64", "rot13",
]
CONTENT_TYPES = [
    "text/plain", "text/html", "text/calendar", "text/enriched", "application/octet-stream", "application/pdf",
    "image/png", "message/delivery-status", "message/rfc822", "multipart/mixed", "text", "/", "garbage",
]
ENCODINGS = ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "BASE64 ", "bogus", ""]
HEADER_NAMES = [
    "Subject", "From", "To", "Cc", "Reply-To", "Sender", "Message-ID", "In-Reply-To", "References", "Date",
    "Return-Path", "Auto-Submitted", "Precedence", "List-Id", "List-Unsubscribe", "X-Autoreply",
    "X-Auto-Response-Suppress", "X-Loop", "Thread-Index", "MIME-Version", "Content-Type",
    "Content-Transfer-Encoding", "Content-Disposition", "Received", "Resent-From", "Delivered-To",
]
ADDRESSES = [
    "alice@customer.test", "Alice <alice@customer.test>", '"Doe, Alice" <alice@customer.test>',
    "=?utf-8?q?J=C3=BCrgen?= <jurgen@customer.test>", "<>", "undisclosed-recipients:;", "@", "<<>>",
    "MAILER-DAEMON@customer.test", "a@b@c", "alice@[127.0.0.1]", "\"quoted\\\"local\"@customer.test",
    "support@example.test", "ünïcode@exämple.test", "postmaster",
]
FILENAMES = [
    "report.pdf", "../../etc/passwd", "C:\\Windows\\evil.exe", "=?utf-8?b?w6TDtsO8LnR4dA==?=", "a" * 300,
    "", "\x00.txt", "résumé.docx", "con", ".htaccess", "file\r\nX-Injected: yes",
]

_texts = st.text(max_size=200)
_binary = st.binary(max_size=200)


def _encode_text(text: str, charset: str) -> bytes:
    try:
        return text.encode(charset or "utf-8", errors="strict")
    except (LookupError, UnicodeError, ValueError):
        return text.encode("utf-8", "surrogatepass")


@st.composite
def encoded_words(draw: st.DrawFn) -> bytes:
    text = draw(_texts)
    charset = draw(st.sampled_from(CHARSETS))
    payload = _encode_text(text, charset)
    if draw(st.booleans()):
        word = b"=?%s?B?%s?=" % (charset.encode("utf-8", "surrogatepass"), base64.b64encode(payload))
    else:
        word = b"=?%s?Q?%s?=" % (charset.encode("utf-8", "surrogatepass"), quopri.encodestring(payload, header=True))
    if draw(st.booleans()):
        word = word[: draw(st.integers(0, len(word)))]  # broken encoded word
    return word


@st.composite
def header_values(draw: st.DrawFn, name: str) -> bytes:
    kind = draw(st.sampled_from(["address", "utf8", "latin1", "binary", "encoded", "long", "id"]))
    if kind == "address" or (kind == "utf8" and name in ("From", "To", "Cc", "Reply-To")):
        values = draw(st.lists(st.sampled_from(ADDRESSES), min_size=0, max_size=4))
        return ", ".join(values).encode("utf-8")
    if kind == "utf8":
        return draw(_texts).encode("utf-8", "surrogatepass")
    if kind == "latin1":
        return draw(_texts).encode("latin-1", "replace")
    if kind == "binary":
        return draw(_binary)
    if kind == "encoded":
        return b" ".join(draw(st.lists(encoded_words(), min_size=1, max_size=3)))
    if kind == "id":
        ids = draw(st.lists(st.sampled_from(["<a@b>", "<x\x00y@z>", "<>", "no-brackets", "<" + "i" * 1200 + ">"]),
                            max_size=3))
        return " ".join(ids).encode("utf-8")
    return b"x" * draw(st.integers(900, 5000))  # one unfolded line past RFC 5322's 998


@st.composite
def header_block(draw: st.DrawFn, extra: list[tuple[bytes, bytes]] | None = None) -> list[bytes]:
    lines: list[bytes] = []
    for name in draw(st.lists(st.sampled_from(HEADER_NAMES), max_size=8)):
        lines.append(name.encode() + b": " + draw(header_values(name)))
    if draw(st.booleans()):
        lines.append(draw(st.from_regex(rb"\A[!-9;-~]{1,30}\Z")) + b": " + draw(_binary))
    for extra_name, value in extra or []:
        lines.append(extra_name + b": " + value)
    return draw(st.permutations(lines)) if lines else lines


@st.composite
def body_bytes(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([b"x", b"line\n", b"\xff\xfe"])) * draw(st.integers(10_000, 300_000))
    if draw(st.booleans()):
        return draw(_binary)
    return _encode_text(draw(_texts), draw(st.sampled_from(CHARSETS)))


def _transfer_encode(data: bytes, encoding: str, broken: bool) -> bytes:
    name = encoding.strip().lower()
    if name == "base64":
        out = base64.encodebytes(data)
        return out[: len(out) // 2] + b"!!@@" if broken else out
    if name == "quoted-printable":
        out = quopri.encodestring(data)
        return out + b"=Z" if broken else out
    return data


@st.composite
def leaf_part(draw: st.DrawFn) -> tuple[list[tuple[bytes, bytes]], bytes]:
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    params = b""
    if draw(st.booleans()):
        params += b'; charset="' + charset.encode("utf-8", "surrogatepass") + b'"'
    extra: list[tuple[bytes, bytes]] = [(b"Content-Type", content_type.encode() + params)]
    if draw(st.booleans()):
        extra.append((b"Content-Transfer-Encoding", encoding.encode()))
    if draw(st.booleans()):
        filename = draw(st.sampled_from(FILENAMES)).encode("utf-8")
        style = draw(st.sampled_from([b'; filename="%s"', b"; filename*=UTF-8''%s", b"; filename*0=%s"]))
        disposition = draw(st.sampled_from([b"attachment", b"inline", b"bogus"]))
        extra.append((b"Content-Disposition", disposition + style % filename))
    if draw(st.booleans()):
        extra.append((b"Content-ID", draw(st.sampled_from([b"<img1@x>", b"<>", b"img2", b"<\x00@x>"]))))
    if content_type == "message/rfc822" and draw(st.booleans()):
        body = draw(simple_message())
    else:
        body = draw(body_bytes())
    return extra, _transfer_encode(body, encoding, draw(st.booleans()))


@st.composite
def mime_part(draw: st.DrawFn, depth: int = 0) -> tuple[list[tuple[bytes, bytes]], bytes]:
    if depth >= 3 or draw(st.integers(0, 2)) > 0:
        return draw(leaf_part())
    subtype = draw(st.sampled_from([b"mixed", b"alternative", b"related", b"report", b"digest", b"signed"]))
    boundary = draw(st.sampled_from([b"b1", b"==_boundary_==", b"", b"a" * 80, b"b1"]))
    children = draw(st.lists(mime_part(depth + 1), max_size=4))
    quoted = b'"' + boundary + b'"'
    headers = [(b"Content-Type", b"multipart/" + subtype + b"; boundary=" + quoted)]
    chunks = [draw(st.sampled_from([b"", b"This is a multi-part message.\r\n"]))]
    for child_headers, child_body in children:
        chunks.append(b"--" + boundary + b"\r\n")
        chunks.extend(name + b": " + value + b"\r\n" for name, value in child_headers)
        chunks.append(b"\r\n" + child_body + b"\r\n")
    if draw(st.booleans()):
        chunks.append(b"--" + boundary + b"--\r\n")  # sometimes the closing boundary is missing
    return headers, b"".join(chunks)


@st.composite
def simple_message(draw: st.DrawFn) -> bytes:
    lines = draw(header_block())
    return b"\r\n".join(lines) + b"\r\n\r\n" + draw(body_bytes())


@st.composite
def emails(draw: st.DrawFn) -> bytes:
    """One whole message, as bytes, possibly malformed at any level."""
    part_headers, body = draw(mime_part())
    lines = draw(header_block(extra=part_headers))
    raw = b"\r\n".join(lines) + b"\r\n\r\n" + body
    newline = draw(st.sampled_from([b"\r\n", b"\n", b"\r", None]))
    if newline is not None:
        raw = raw.replace(b"\r\n", newline)
    return raw


@st.composite
def mutated(draw: st.DrawFn, raw: bytes) -> bytes:
    """`raw` truncated, with random bytes spliced in, or with a slice cut out."""
    action = draw(st.sampled_from(["keep", "truncate", "splice", "cut"]))
    if action == "keep" or not raw:
        return raw
    at = draw(st.integers(0, len(raw)))
    if action == "truncate":
        return raw[:at]
    if action == "splice":
        return raw[:at] + draw(st.binary(min_size=1, max_size=64)) + raw[at:]
    return raw[:at] + raw[at + draw(st.integers(1, 200)):]


hostile_emails = emails().flatmap(mutated) | st.binary(max_size=4000)
