"""A message's HTML made safe to show, once, when the mail is parsed.

`display_html` runs the HTML through nh3 with an allow-list: formatting, lists, tables,
links and images survive; scripts, styles, forms, frames, objects, SVG, MathML, event
handlers, `style` attributes (the portal's CSP forbids them anyway), ids and classes do
not. Links keep only http, https and mailto; an image keeps a `cid:` reference (the
portal points it at the ticket's attachment URL when it shows the page, since attachment
URLs do not exist yet), a raster `data:` image, or a remote http(s) address (the portal
replaces it with a placeholder unless the reader asks for pictures); anything else,
including relative URLs that would point into the portal itself, is dropped. Quoted
history (the quote containers `gateway.mail.html_quotes` knows) is kept apart so the page can fold
it away. HTML larger than the display limit, as sent or once sanitized, is not kept for
display at all (`too_large`): sanitizing it costs seconds and showing it stalls browsers,
so readers get the text version and the original as a download instead. The result is
the same whichever process parses, so it is computed in the parse step (often a worker
process) and stored with the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import nh3

from gateway.mail.html_quotes import split_reply_html

DEFAULT_MAX_BYTES = 1024 * 1024
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
# One added attribute per tag: nh3 writes several in a random order per process, and
# parsing in a worker process must give what parsing inline gives. The portal adds
# loading="lazy" and referrerpolicy="no-referrer" to images when it shows them.
ADDED = {"a": {"target": "_blank"}}
DATA_IMAGE = re.compile(r"data:image/(?:png|gif|jpeg|jpg|webp);base64,[A-Za-z0-9+/=\s]+", re.I)
_SIZE = re.compile(r"\d{1,4}%?")
_HAS_CONTENT = re.compile(r"<img\b|[^\s<>]", re.I)


@dataclass(frozen=True, slots=True)
class DisplayHtml:
    """Sanitized HTML to store for display: the new part and the quoted history.

    Both are "" when there is no HTML, when it sanitizes to nothing, or when it is
    `too_large` to keep; readers then show the text version.
    """

    body: str = ""
    quoted: str = ""
    too_large: bool = False


NO_HTML = DisplayHtml()
TOO_LARGE = DisplayHtml(too_large=True)


def utf8_size_over(text: str, limit: int) -> bool:
    """Whether `text` takes more than `limit` bytes as UTF-8, without encoding it when the
    character count already decides (a character is one to four bytes)."""
    if len(text) > limit:
        return True
    if len(text) * 4 <= limit:
        return False
    return len(text.encode("utf-8", "surrogatepass")) > limit


def scheme(url: str) -> str:
    try:
        return urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return ""


def is_remote_image(url: str) -> bool:
    return scheme(url) in ("http", "https") or url.startswith("//")


def _keep_url(tag: str, attribute: str, value: str) -> str | None:
    """The URL policy at ingest: what each link and image address is stored as."""
    if attribute == "href":
        return value if scheme(value) in LINK_SCHEMES else None
    if tag == "img" and attribute == "src":
        value = value.strip()
        lowered = value.lower()
        if lowered.startswith("cid:"):
            cid = unquote(value[4:]).strip().strip("<>")
            return f"cid:{cid}" if cid else None
        if lowered.startswith("data:"):
            return value if DATA_IMAGE.fullmatch(value) else None
        return value if is_remote_image(value) else None
    if attribute in ("width", "height"):
        return value if _SIZE.fullmatch(value.strip()) else None
    return value


def _clean(fragment: str) -> str:
    cleaned: str = nh3.clean(
        fragment,
        tags=set(TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        attribute_filter=_keep_url,
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={tag: dict(values) for tag, values in ADDED.items()},
        url_schemes={"http", "https", "mailto", "cid", "data"},
        url_relative="pass_through",
    )
    return cleaned


def display_html(html: str | None, max_bytes: int = DEFAULT_MAX_BYTES) -> DisplayHtml:
    """`html` (as sent) sanitized for display, or why there is none to show."""
    if not html:
        return NO_HTML
    if utf8_size_over(html, max_bytes):  # decided before the costly part
        return TOO_LARGE
    new, quoted = split_reply_html(html)
    body = _clean(new)
    history = _clean(quoted) if quoted.strip() else ""
    if not _HAS_CONTENT.search(body):  # everything was "quoted": show it rather than an empty message
        body, history = body + history, ""
    if not _HAS_CONTENT.search(history):
        history = ""
    if not body.strip():
        return NO_HTML
    if utf8_size_over(body + history, max_bytes):  # links and images grow a little when sanitized
        return TOO_LARGE
    return DisplayHtml(body, history)
