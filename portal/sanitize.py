"""Mail HTML made safe to show inside the portal, and plain text made readable.

`clean_mail_html` runs a message's HTML through nh3 with an allow-list: formatting,
lists, tables, links and images survive; scripts, styles, forms, frames, objects, SVG,
MathML, event handlers, `style` attributes (the CSP forbids them anyway), ids and classes
do not. Every URL is judged by `MailUrls`: links keep only http, https and mailto;
`cid:` images become the scoped attachment URLs the caller hands in (unknown ids are
dropped); `data:` survives only as a raster image; remote images are counted and replaced
by a local placeholder, unless the contact asked to show them for this message; relative
URLs, which would point into the portal itself, are dropped. Quoted history (Gmail,
Outlook, Apple Mail, Thunderbird quote containers, found by `gateway.quotes`) comes back
separately so the page can fold it away. `text_to_html` shows plain text with its line
breaks and its web addresses as links.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import nh3
from markupsafe import Markup, escape

from gateway.quotes import split_reply_html

REMOTE_IMAGE_PLACEHOLDER = "/static/remote-image.svg"
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
TAGS = frozenset(
    """a abbr address b bdi bdo big blockquote br caption center cite code col colgroup dd del
    dfn div dl dt em figcaption figure font h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre
    q s samp small span strike strong sub summary sup table tbody td tfoot th thead tr tt u ul
    var wbr""".split()
)
DROPPED_WITH_CONTENT = frozenset(
    """script style title template noscript iframe frame frameset object embed applet svg math
    textarea select option xmp noembed noframes plaintext canvas audio video head""".split()
)
CELL = {"colspan", "rowspan", "align", "valign", "width"}
ATTRIBUTES = {
    "*": {"lang", "dir", "title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": CELL,
    "th": CELL,
    "table": {"width", "align"},
    "col": {"span", "width"},
    "ol": {"start"},
}
ADDED = {
    "a": {"target": "_blank"},
    "img": {"loading": "lazy", "referrerpolicy": "no-referrer"},
}
_DATA_IMAGE = re.compile(r"data:image/(?:png|gif|jpeg|jpg|webp);base64,[A-Za-z0-9+/=\s]+", re.I)
_SIZE = re.compile(r"\d{1,4}%?")
_TEXT_URL = re.compile(r"\bhttps?://[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]}]", re.I)
_HAS_CONTENT = re.compile(r"<img\b|[^\s<>]", re.I)


@dataclass(frozen=True, slots=True)
class CleanMail:
    """A message body ready for the page: the new part, the quoted history, its remote images."""

    body: Markup
    quoted: Markup
    remote_images: int
    inline_used: set[str]


class MailUrls:
    """The URL policy for one message: what each link and image address becomes."""

    def __init__(self, inline_images: Mapping[str, str], show_remote_images: bool) -> None:
        self._inline = {cid.lower(): url for cid, url in inline_images.items()}
        self._show_remote = show_remote_images
        self.remote = 0
        self.inline_used: set[str] = set()

    def __call__(self, tag: str, attribute: str, value: str) -> str | None:
        if attribute == "href":
            return value if _scheme(value) in LINK_SCHEMES else None
        if tag == "img" and attribute == "src":
            return self._image(value.strip())
        if attribute in ("width", "height"):
            return value if _SIZE.fullmatch(value.strip()) else None
        return value

    def _image(self, value: str) -> str | None:
        lowered = value.lower()
        if lowered.startswith("cid:"):
            cid = unquote(value[4:]).strip().strip("<>").lower()
            if cid in self._inline:
                self.inline_used.add(cid)
            return self._inline.get(cid)
        if lowered.startswith("data:"):
            return value if _DATA_IMAGE.fullmatch(value) else None
        if _scheme(value) in ("http", "https") or value.startswith("//"):
            self.remote += 1
            return value if self._show_remote else REMOTE_IMAGE_PLACEHOLDER
        return None


def _scheme(url: str) -> str:
    try:
        return urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return ""


def _clean(fragment: str, urls: MailUrls) -> Markup:
    cleaned = nh3.clean(
        fragment,
        tags=set(TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        attribute_filter=urls,
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={tag: dict(values) for tag, values in ADDED.items()},
        url_schemes={"http", "https", "mailto", "cid", "data"},
        url_relative="pass_through",
    )
    return Markup(cleaned)  # noqa: S704 - nh3's output is the sanitized fragment


def clean_mail_html(
    html: str, *, inline_images: Mapping[str, str] | None = None, show_remote_images: bool = False
) -> CleanMail:
    """Sanitize a message's HTML; `inline_images` maps Content-IDs to scoped attachment URLs."""
    urls = MailUrls(inline_images or {}, show_remote_images)
    new, quoted = split_reply_html(html)
    body = _clean(new, urls)
    history = _clean(quoted, urls) if quoted.strip() else Markup("")
    if not _HAS_CONTENT.search(body):  # everything was "quoted": show it rather than an empty message
        body, history = body + history, Markup("")
    if not _HAS_CONTENT.search(history):
        history = Markup("")
    return CleanMail(body, history, urls.remote, urls.inline_used)


def text_to_html(text: str) -> Markup:
    """Plain text as escaped HTML with web addresses linked (line breaks are kept by CSS)."""
    pieces: list[Markup] = []
    position = 0
    for match in _TEXT_URL.finditer(text):
        pieces.append(escape(text[position : match.start()]))
        url = match.group(0)
        pieces.append(Markup('<a href="{}" rel="noopener noreferrer nofollow" target="_blank">{}</a>').format(url, url))
        position = match.end()
    pieces.append(escape(text[position:]))
    return Markup("").join(pieces)
