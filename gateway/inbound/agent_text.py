"""What an agent wrote in an emailed reply, never less than that and never our own words.

The quote splitter (gateway/mail/quotes.py) gives the new text above the quoted history.
Cut at our reply marker and without signed markers, that is the agent's text. When nothing
is left (a reply written below the quote, as Thunderbird and some mobile clients do, or a
client whose quoting the splitter does not know), the whole body is used instead, minus
our own notification text: the lines of the notification the mail answers (the outbox
keeps a copy of it, found by In-Reply-To/References), quoted or not, and the attribution
line that introduced them. When even that leaves nothing, the text is empty and the
caller tells the agent rather than sending an empty reply.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.mail.parse import ParsedEmail
from gateway.mail.quotes import REPLY_MARKER
from gateway.models import OutboxMessage
from gateway.tickets.markers import ANY_MARKER

_QUOTE_PREFIX = re.compile(r"^(?:\s*>)+\s?")
MAX_LOOKED_UP = 20


def agent_text(session: Session, mailbox_id: int, mail: ParsedEmail) -> str:
    """The agent's new words; "" only when the mail holds nothing but our own text."""
    text = _clean(mail.reply_text.split(REPLY_MARKER, 1)[0])
    if text and not _only_attribution(text):
        return text
    ours = _notification_lines(session, mailbox_id, mail)
    return _clean(_without_ours(mail.text, ours))


def _clean(text: str) -> str:
    return ANY_MARKER.sub("", text).strip()


def _only_attribution(text: str) -> bool:
    """A single line ending in a colon ("On Sun, Example Support wrote:") says nothing."""
    return "\n" not in text and text.rstrip().endswith(":")


def _normal(line: str) -> str:
    return " ".join(_QUOTE_PREFIX.sub("", line).split())


def _notification_lines(session: Session, mailbox_id: int, mail: ParsedEmail) -> set[str]:
    """The lines of the emails we sent that this mail answers, normalised."""
    ids = [i.strip("<>") for i in (*mail.in_reply_to, *mail.references) if i][:MAX_LOOKED_UP]
    if not ids:
        return set()
    copies = session.scalars(
        select(OutboxMessage.raw).where(
            OutboxMessage.mailbox_id == mailbox_id, OutboxMessage.rfc_message_id.in_(ids), OutboxMessage.raw.is_not(None)
        )
    )
    lines: set[str] = set()
    for raw in copies:
        body = message_from_bytes(raw, policy=policy.default).get_body(("plain",))  # type: ignore[attr-defined]
        if body is not None:
            lines.update(_normal(line) for line in body.get_content().splitlines())
    lines.discard("")
    return lines


def _without_ours(body: str, ours: set[str]) -> str:
    """`body` without our notification's lines, quoted lines of unknown origin and their attribution."""
    kept: list[str] = []
    for line in body.splitlines():
        normal = _normal(line)
        ourselves = REPLY_MARKER in line or normal in ours or (not ours and _QUOTE_PREFIX.match(line) is not None)
        if ourselves or (_QUOTE_PREFIX.match(line) and not normal):
            # the line before a run of our lines may introduce it ("On …, … wrote:")
            while kept and not kept[-1].strip():
                kept.pop()
            if kept and kept[-1].rstrip().endswith(":"):
                kept.pop()
            continue
        kept.append(line)
    return "\n".join(kept)
