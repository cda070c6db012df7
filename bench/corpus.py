"""The mixed backlog: fixture emails copied as many times as a benchmark needs.

Copy k of the corpus is every file in fixtures/emails/ with each Message-ID it names
(in Message-ID, In-Reply-To, References or quoted text) rewritten to a copy-k variant, so
copies never deduplicate against each other while replies inside one copy still thread
to their originals, and with an `X-Bench-Copy` header so that even a message without a
Message-ID has bytes of its own. `new-request.eml` leads each copy, as the corpus README
assumes. The envelope sender is the one `wicket replay` would guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gateway.cli.replay import header_envelope

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "emails"
_MESSAGE_ID_HEADER = re.compile(rb"^message-id:\s*<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Mail:
    name: str
    raw: bytes
    mail_from: str


@cache
def _originals() -> tuple[tuple[str, bytes], ...]:
    files = sorted(FIXTURES.glob("*.eml"), key=lambda p: (p.name != "new-request.eml", p.name))
    return tuple((path.name, path.read_bytes()) for path in files)


@cache
def _id_pattern() -> re.Pattern[bytes]:
    ids = {mid for _, raw in _originals() for mid in _MESSAGE_ID_HEADER.findall(raw)}
    return re.compile(b"<(" + b"|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)) + b")>")


def _copy(raw: bytes, k: int) -> bytes:
    def rename(match: re.Match[bytes]) -> bytes:
        local, _, domain = match.group(1).rpartition(b"@")
        return b"<%s.c%d@%s>" % (local, k, domain)

    return b"X-Bench-Copy: %d\n" % k + _id_pattern().sub(rename, raw)


def mail(n: int) -> Mail:
    """Message `n` of the endless sequence of corpus copies."""
    originals = _originals()
    k, index = divmod(n, len(originals))
    name, raw = originals[index]
    copied = _copy(raw, k)
    return Mail(f"{name}#{k}", copied, header_envelope(copied)[0])


def backlog(count: int, first: int = 0) -> list[Mail]:
    """`count` messages from number `first` on: whole copies of the corpus, the last one cut short."""
    return [mail(n) for n in range(first, first + count)]
