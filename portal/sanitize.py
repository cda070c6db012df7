"""Sanitized mail HTML made ready for one page view, and plain text made readable.

Mail HTML is sanitized once, when the mail is parsed (`gateway.mail.parse.display` owns the
allow-list and the URL policy), and stored. What is left for each view depends on who
looks and is cheap: `present_html` rewrites only the stored HTML's `<img>` tags, adding
lazy loading and no referrer, pointing `cid:` images at the scoped attachment URLs the
caller hands in (unknown ids lose their `src`), counting remote images and replacing them
by a local placeholder unless the contact asked to show them for this message, and
dropping any other `src` (a second line behind the ingest policy). It can read the tags
with a regular expression because the HTML is nh3's own serialization: `<` and `>` in
text and attribute values are always escaped, and every attribute is written as
`name="value"`. `clean_mail_html` does both steps at once (for rows stored before ingest
sanitized, and for the tests that define what sanitized means). `text_to_html` shows
plain text with its line breaks and its web addresses as links.
"""

from __future__ import annotations

import html as entities
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from markupsafe import Markup, escape

from gateway.mail.parse.display import DATA_IMAGE, DEFAULT_MAX_BYTES, display_html, is_remote_image

REMOTE_IMAGE_PLACEHOLDER = "/static/remote-image.svg"
_IMG = re.compile(r"<img\b([^<>]*)>")
_IMG_ADDED = ' loading="lazy" referrerpolicy="no-referrer"'
_ATTRIBUTE = re.compile(r'\s([a-z][a-z0-9-]*)="([^"]*)"')
_SPACE = re.compile(r"\s")
_CHUNK = 64 * 1024
_TEXT_URL = re.compile(r"\bhttps?://[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]}]", re.I)


@dataclass(frozen=True, slots=True)
class CleanMail:
    """A message body ready for the page: the new part, the quoted history, its remote images."""

    body: Markup
    quoted: Markup
    remote_images: int
    inline_used: set[str]


class _Images:
    """The per-view image policy for one message: what each stored `<img>` becomes."""

    def __init__(self, inline_images: Mapping[str, str], show_remote_images: bool) -> None:
        self._inline = {cid.lower(): url for cid, url in inline_images.items()}
        self._show_remote = show_remote_images
        self.remote = 0
        self.inline_used: set[str] = set()

    def tag(self, match: re.Match[str]) -> str:
        attributes: list[str] = []
        for name, value in _ATTRIBUTE.findall(match.group(1)):
            if name == "src":
                src = self._src(entities.unescape(value))
                if src is None:
                    continue
                value = str(escape(src))
            attributes.append(f' {name}="{value}"')
        return "<img" + "".join(attributes) + _IMG_ADDED + ">"

    def _src(self, value: str) -> str | None:
        if value[:4].lower() == "cid:":
            cid = value[4:].lower()
            if cid in self._inline:
                self.inline_used.add(cid)
            return self._inline.get(cid)
        if value[:5].lower() == "data:":
            return value if DATA_IMAGE.fullmatch(value) else None
        if is_remote_image(value):
            self.remote += 1
            return value if self._show_remote else REMOTE_IMAGE_PLACEHOLDER
        return None


def present_html(
    body: str, quoted: str = "", *, inline_images: Mapping[str, str] | None = None, show_remote_images: bool = False
) -> CleanMail:
    """Stored sanitized HTML for this view; `inline_images` maps Content-IDs to scoped attachment URLs."""
    images = _Images(inline_images or {}, show_remote_images)
    body, quoted = (_IMG.sub(images.tag, part) if "<img" in part else part for part in (body, quoted))
    # nh3's output, with only <img> attributes rewritten and re-escaped above
    return CleanMail(Markup(body), Markup(quoted), images.remote, images.inline_used)  # noqa: S704


def clean_mail_html(
    html: str,
    *,
    inline_images: Mapping[str, str] | None = None,
    show_remote_images: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> CleanMail:
    """Sanitize a message's HTML as sent and present it (empty when too large or nothing is left)."""
    shown = display_html(html, max_bytes)
    return present_html(shown.body, shown.quoted, inline_images=inline_images, show_remote_images=show_remote_images)


def text_to_html(text: str) -> Markup:
    """Plain text as escaped HTML with web addresses linked (line breaks are kept by CSS)."""
    pieces: list[Markup] = []
    for chunk in _chunks(text):
        if "://" not in chunk:  # most text has no web address: skip the slow search
            pieces.append(escape(chunk))
            continue
        position = 0
        for match in _TEXT_URL.finditer(chunk):
            pieces.append(escape(chunk[position : match.start()]))
            url = match.group(0)
            pieces.append(Markup('<a href="{}" rel="noopener noreferrer nofollow" target="_blank">{}</a>').format(url, url))
            position = match.end()
        pieces.append(escape(chunk[position:]))
    return Markup("").join(pieces)


def _chunks(text: str) -> Iterator[str]:
    """`text` in pieces of about `_CHUNK` characters, each ending after a whitespace character.

    A web address holds no whitespace, so none is split; and a regular expression search
    holds the interpreter lock until it returns, so searching megabytes in one call would
    stall the event loop even from another thread.
    """
    start = 0
    while len(text) - start > _CHUNK:
        space = _SPACE.search(text, start + _CHUNK)
        if space is None:
            break
        yield text[start : space.end()]
        start = space.end()
    yield text[start:]
