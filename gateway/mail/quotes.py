"""Reading a message's text: where the customer's new words end and quoted history begins.

This module owns the mail-client conventions for quoting and forwarding: our own reply
marker, attribution lines ("On ... wrote:" and its translations, Apple Mail's "at <time>"
form, wrapped over two lines), Outlook's "-----Original Message-----", underscore separator
and From/Sent header block, trailing runs of ">" lines, the HTML containers Gmail, Apple
Mail, Outlook and Thunderbird wrap quotes in, and inline forwards (Gmail, Apple Mail and
Outlook). Splits are reversible: the two halves always concatenate to the input, so no
text is ever lost. `html_to_text` renders an HTML body as plain text with blockquotes as
">" lines, so HTML-only mail splits the same way. It also defines the value types a
forwarded original is made of (`Address`, `ForwardedOriginal`); `gateway.mail.parse`
re-exports them.
"""

from __future__ import annotations

import html as html_entities
import re
from dataclasses import dataclass
from email.utils import parseaddr

REPLY_MARKER = "##- Please type your reply above this line -##"


@dataclass(frozen=True, slots=True)
class Address:
    email: str  # lower-cased addr-spec, "" if unparseable
    name: str  # decoded display name, "" if none


@dataclass(frozen=True, slots=True)
class ForwardedOriginal:
    sender: Address
    subject: str
    date: str  # as written
    text: str  # the forwarded body text


_MAX_LINE = 500  # longer lines are prose or data, never an attribution or header
_MAX_FORWARD_FIELDS = 12  # a forwarded header block is From/Date/Subject/To/Cc, maybe wrapped
_ATTRIBUTION_START = re.compile(r"(?:On|Am|Le|El|Op|Il|Em|Den|På)\s", re.I)
_ATTRIBUTION = re.compile(
    r"(?:On|Am|Le|El|Op|Il|Em|Den|På)\s(?=.*\d).*"
    r"\b(?:wrote|schrieb|a\s+écrit|escribió|schreef|ha\s+scritto|escreveu|skrev)\b.*:",
    re.I,
)
_ORIGINAL_MESSAGE = re.compile(
    r"-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original"
    r"|Messaggio originale|Oorspronkelijk bericht)\s*-{2,}",
    re.I,
)
_FORWARD_MARKER = re.compile(
    r"-{2,}\s*(?:Forwarded message|Weitergeleitete Nachricht|Message transféré"
    r"|Mensaje reenviado|Messaggio inoltrato)\s*-*"
    r"|(?:Begin forwarded message|Anfang der weitergeleiteten Nachricht"
    r"|Début du message réexpédié)\s*:",
    re.I,
)
_SEPARATOR = re.compile(r"_{10,}")
_FORWARD_SUBJECT = re.compile(r"\s*(?:fwd?|wg|tr|rv|enc)\s*:", re.I)
_FIELD = re.compile(r"\*?([^\W\d_]+)\s*\*?\s*:\s*\*?\s*(.*)")
_FIELD_KINDS = {
    **dict.fromkeys("from von de da van".split(), "from"),
    **dict.fromkeys(
        "sent date gesendet datum envoyé enviado fecha inviato verzonden data".split(), "date"
    ),
    **dict.fromkeys("to an à para a aan".split(), "to"),
    **dict.fromkeys("cc kopie".split(), "cc"),
    **dict.fromkeys("subject betreff objet asunto oggetto onderwerp assunto".split(), "subject"),
}
_QUOTE_TAG = re.compile(r"<(div|blockquote)\b([^<>]*)>", re.I)
_ATTRIBUTE = re.compile(r"""\b(class|id|type)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_QUOTE_CLASSES = frozenset(
    {"gmail_quote", "gmail_quote_container", "moz-cite-prefix", "yahoo_quoted"}
)
_QUOTE_IDS = frozenset({"divrplyfwdmsg", "appendonsend"})
_OPENING_TAIL = re.compile(r"<(?:hr|div)\b[^<>]*>\s*$", re.I)
_MAILTO = re.compile(r"\[mailto:([^\]]*)\]", re.I)
_SKIPPED_ELEMENTS = frozenset({"script", "style", "title", "template"})
_PARAGRAPHS = frozenset("blockquote h1 h2 h3 h4 h5 h6 ol p pre table ul".split())
_LINES = frozenset(
    "address article aside dd div dl dt fieldset figcaption figure footer form header hr li "
    "main nav section tr".split()
)
_HTML_SPACE = re.compile(r"[ \t\r\n\f]+")
_HTML_TOKEN = re.compile(
    r"<!--.*?(?:-->|\Z)|<(/?)([a-zA-Z][a-zA-Z0-9]*)(?:\s[^<>]*)?/?>|<[!?][^<>]*>", re.S
)
_BLANK_RUNS = re.compile(r"\n{3,}")


def split_reply(text: str) -> tuple[str, str]:
    """Split `text` into (new part, quoted history); the two always add up to `text`.

    A Gmail or Apple Mail forward marker above any history ends the search: what follows
    it is the forwarded message, which is content, not history.
    """
    lines = text.splitlines(keepends=True)
    offsets = _offsets(lines)
    cut = len(text)
    for index, line in enumerate(lines):
        stripped = line.strip()
        if _is_forward_marker(stripped):
            return text, ""
        if _starts_history(lines, index, stripped):
            cut = offsets[index]
            break
    tail = _quoted_tail(lines)
    if tail is not None:
        cut = min(cut, offsets[tail])
    return text[:cut], text[cut:]


def split_reply_html(html: str) -> tuple[str, str]:
    """Split an HTML body at the first quote container or our marker; halves add up to `html`."""
    cut = len(html)
    for match in _QUOTE_TAG.finditer(html):
        if _is_quote_container(match.group(1).lower(), match.group(2)):
            cut = match.start()
            break
    marker = html.find(REPLY_MARKER, 0, cut)
    if marker != -1:
        cut = _enclosing_tag_start(html, marker)
    opening = _OPENING_TAIL.search(html, max(0, cut - 300), cut)
    if opening is not None and cut < len(html):
        cut = opening.start()
    return html[:cut], html[cut:]


def is_forward_subject(subject: str) -> bool:
    """Whether the subject starts with a forward prefix (Fwd:, FW:, WG:, TR:, RV:, ENC:)."""
    return _FORWARD_SUBJECT.match(subject) is not None


def find_inline_forward(text: str, subject: str = "") -> ForwardedOriginal | None:
    """The original message forwarded inline in `text`, or None.

    Gmail's and Apple Mail's forward markers always count; Outlook's "-----Original
    Message-----", separator or bare From/Sent block only when `subject` says Fwd/FW.
    """
    lines = text.splitlines()
    outlook_forward = is_forward_subject(subject)
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or len(stripped) > _MAX_LINE:
            continue
        start = None
        if _is_forward_marker(stripped):
            start = index + 1
        elif outlook_forward:
            if _ORIGINAL_MESSAGE.fullmatch(stripped) or _SEPARATOR.fullmatch(stripped):
                start = index + 1
            elif _field_kind(stripped) == "from" and _header_block_follows(lines, index):
                start = index
        original = None if start is None else _read_forward(lines, start)
        if original is not None:
            return original
    return None


def _starts_history(lines: list[str], index: int, line: str) -> bool:
    """Whether quoted history starts at line `index` (already stripped as `line`).

    Cheap character tests come first: this runs once per line of every message.
    """
    if not line or len(line) > _MAX_LINE:
        return False
    if REPLY_MARKER in line:
        return True
    if line[0] == "-":
        return _ORIGINAL_MESSAGE.fullmatch(line) is not None
    if line[0] == "_":
        following = _next_nonblank(lines, index + 1)
        return (
            _SEPARATOR.fullmatch(line) is not None
            and following is not None
            and _field_kind(lines[following].strip()) == "from"
        )
    if line[-1] == ":" and _ATTRIBUTION.fullmatch(line):
        return True
    if (
        index + 1 < len(lines)
        and lines[index + 1].rstrip().endswith(":")
        and _ATTRIBUTION_START.match(line)
    ):
        joined = f"{line} {lines[index + 1].strip()}"
        if len(joined) <= _MAX_LINE and _ATTRIBUTION.fullmatch(joined):
            return True
    return _field_kind(line) == "from" and _header_block_follows(lines, index)


def _is_forward_marker(line: str) -> bool:
    """Gmail's "---------- Forwarded message ---------" or Apple's "Begin forwarded message:"."""
    return (
        0 < len(line) <= _MAX_LINE
        and (line[0] == "-" or line[-1] == ":")
        and _FORWARD_MARKER.fullmatch(line) is not None
    )


def _header_block_follows(lines: list[str], index: int) -> bool:
    """A From: line at `index` opens a header block: a date/sent line and a to/subject line."""
    kinds = set()
    for line in lines[index + 1 : index + 6]:
        kind = _field_kind(line.strip())
        if kind == "from":  # a second From: is another block, not this one
            break
        kinds.add(kind)
    return "date" in kinds and bool(kinds & {"to", "subject"})


def _field_kind(line: str) -> str | None:
    """The kind ("from", "date", "to", "cc", "subject") of a quoted header line, any language."""
    if len(line) > _MAX_LINE or ":" not in line[:24]:
        return None
    match = _FIELD.match(line)
    return _FIELD_KINDS.get(match.group(1).lower()) if match else None


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


def _read_forward(lines: list[str], start: int) -> ForwardedOriginal | None:
    """Read the forwarded header block (From: first) at `start` and the body below it."""
    index = _next_nonblank(lines, start)
    if index is None:
        return None
    quoted = lines[index].lstrip().startswith(">")
    read = _unquote if quoted else str
    first = read(lines[index]).strip()
    if _field_kind(first) != "from":
        return None
    fields: dict[str, str] = {}
    last = ""
    end = min(len(lines), index + _MAX_FORWARD_FIELDS)
    while index < end and (line := read(lines[index]).strip()):
        kind = _field_kind(line)
        match = _FIELD.match(line)
        if kind is not None and match is not None and kind not in fields:
            fields[kind] = match.group(2).strip()
            last = kind
        else:  # a long To/Cc list wrapped onto the next line
            fields[last] = f"{fields[last]} {line}"
        index += 1
    body = "\n".join(read(line) for line in lines[index:]).strip()
    return ForwardedOriginal(
        sender=_parse_address(fields["from"]),
        subject=fields.get("subject", ""),
        date=fields.get("date", ""),
        text=body,
    )


def _parse_address(value: str) -> Address:
    """An address as mail clients print it in a quoted header ("*Name* <a@b>", "[mailto:a@b]")."""
    cleaned = _MAILTO.sub(r"<\1>", value.replace("*", "")).strip()
    name, email = parseaddr(cleaned)
    if "@" not in email:
        return Address(email="", name=cleaned)
    return Address(email=email.lower(), name=name.strip())


def _is_quote_container(tag: str, attributes: str) -> bool:
    for match in _ATTRIBUTE.finditer(attributes):
        name = match.group(1).lower()
        value = next(group for group in match.groups()[1:] if group is not None)
        if name == "class" and _QUOTE_CLASSES.intersection(value.split()):
            return True
        if name == "id" and value.lower() in _QUOTE_IDS:
            return True
        if name == "type" and tag == "blockquote" and value.lower() == "cite":
            return True
    return False


def _enclosing_tag_start(html: str, position: int) -> int:
    """Start of the nearest opening tag before `position` (or `position` itself)."""
    start = html.rfind("<", 0, position)
    while start != -1 and html.startswith("</", start):
        start = html.rfind("<", 0, start)
    return position if start == -1 else start


def _next_nonblank(lines: list[str], start: int) -> int | None:
    for index in range(start, min(len(lines), start + 3)):
        if lines[index].strip():
            return index
    return None


def _unquote(line: str) -> str:
    stripped = line.lstrip()
    if not stripped.startswith(">"):
        return line
    stripped = stripped[1:]
    return stripped[1:] if stripped.startswith(" ") else stripped


def _offsets(lines: list[str]) -> list[int]:
    offsets = []
    position = 0
    for line in lines:
        offsets.append(position)
        position += len(line)
    return offsets


def html_to_text(html: str) -> str:
    """Plain text of an HTML body: scripts and styles dropped, blocks on their own lines,
    entities decoded, blockquote content prefixed with "> "."""
    renderer = _TextRenderer()
    position = 0
    while position < len(html):
        match = _HTML_TOKEN.search(html, position)
        if match is None:
            renderer.data(html[position:])
            break
        renderer.data(html[position : match.start()])
        position = match.end()
        tag = (match.group(2) or "").lower()
        if not tag:  # comment, doctype, processing instruction
            continue
        if match.group(1):
            renderer.end(tag)
        elif tag in _SKIPPED_ELEMENTS:
            close = re.compile(rf"</{tag}\b", re.I).search(html, position)
            position = close.start() if close else len(html)
        else:
            renderer.start(tag)
    return _BLANK_RUNS.sub("\n\n", renderer.text().replace("\xa0", " ")).strip()


class _TextRenderer:
    """Line builder behind `html_to_text`."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._line: list[str] = []
        self._quotes = 0
        self._pre = 0
        self._gap = False  # a paragraph ended: the next text starts after a blank line

    def text(self) -> str:
        self._flush()
        return "\n".join(self._lines)

    def start(self, tag: str) -> None:
        if tag == "br":
            self._flush(force=True)
        elif tag in _PARAGRAPHS or tag in _LINES:
            self._block(tag)
            self._quotes += tag == "blockquote"
            self._pre += tag == "pre"
            if tag == "li":
                self._line.append("- ")

    def end(self, tag: str) -> None:
        if tag in _PARAGRAPHS or tag in _LINES:
            self._block(tag)
            if tag == "blockquote":
                self._quotes = max(0, self._quotes - 1)
            elif tag == "pre":
                self._pre = max(0, self._pre - 1)

    def data(self, text: str) -> None:
        if text:
            text = html_entities.unescape(text)
            self._line.append(text if self._pre else _HTML_SPACE.sub(" ", text))

    def _block(self, tag: str) -> None:
        self._flush()
        self._gap = self._gap or tag in _PARAGRAPHS

    def _flush(self, force: bool = False) -> None:
        line = "".join(self._line)
        self._line = []
        if not self._pre:
            line = line.strip()
        if line or force:
            prefix = "> " * self._quotes
            if self._gap and line and self._lines and self._lines[-1].strip("> "):
                self._lines.append(prefix.rstrip())
            self._gap = False
            self._lines.extend(f"{prefix}{part}".rstrip() for part in line.split("\n"))
