"""HTML mail and help pages rendered as plain text, with quoted history marked by ">".

inscriptis does the rendering (a real HTML parser with CSS-aware block and table layout,
so Outlook's `<o:p>` and other namespaced Word tags, comments, scripts and styles never
reach the text); bench/RESULTS.md records why it was chosen over html2text and
selectolax. Its annotation of `<blockquote>` spans is turned into "> " prefixes, one per
nesting level, so an HTML-only reply splits into new words and history the same way a
plain-text one does (`gateway.mail.quotes`).
"""

from __future__ import annotations

import re

from inscriptis import get_annotated_text
from inscriptis.model.config import ParserConfig

_CONFIG = ParserConfig(display_links=False, annotation_rules={"blockquote": ["quote"]})
_BLANK_RUNS = re.compile(r"\n{3,}")
_MAX_QUOTE_SPANS = 200  # deeper or more numerous quotes are rendered without markers


def html_to_text(html: str) -> str:
    """Plain text of an HTML body: blocks on their own lines, entities decoded, invisible
    elements dropped, blockquote content prefixed with "> "."""
    if not html.strip():
        return ""
    try:
        rendered = get_annotated_text(html, _CONFIG)
    except Exception:  # inscriptis refuses some byte soup (lxml finds no document at all)
        return ""
    text: str = rendered["text"]
    spans = [(start, end) for start, end, _ in rendered["label"]][:_MAX_QUOTE_SPANS]
    lines = []
    position = 0
    for line in text.split("\n"):
        depth = sum(start <= position < end for start, end in spans) if spans and line.strip() else 0
        content = line.replace("\xa0", " ").strip()
        lines.append(f"{'> ' * depth}{content}".rstrip())
        position += len(line) + 1
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()
