"""Quoted history in HTML mail: where the new words of an HTML reply end.

This module owns the HTML side of reply splitting: the containers Gmail, Apple Mail,
Outlook, Yahoo and Thunderbird wrap quoted history in (by class, id, or a
`<blockquote type="cite">`) and our own reply marker; the page (`gateway.mail.parse.display`)
folds what follows. The plain-text splitter is `gateway.mail.quotes`.
"""

from __future__ import annotations

import re

from gateway.mail.quotes import REPLY_MARKER

_QUOTE_TAG = re.compile(r"<(div|blockquote)\b([^<>]*)>", re.I)
_ATTRIBUTE = re.compile(r"""\b(class|id|type)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_QUOTE_CLASSES = frozenset(
    {"gmail_quote", "gmail_quote_container", "moz-cite-prefix", "yahoo_quoted"}
)
_QUOTE_IDS = frozenset({"divrplyfwdmsg", "appendonsend"})
_OPENING_TAIL = re.compile(r"<(?:hr|div)\b[^<>]*>\s*$", re.I)


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
