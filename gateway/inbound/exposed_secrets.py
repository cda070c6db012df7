"""Links and codes Wicket issued that come back in inbound mail: burned, and removed from every derived text.

A customer who answers by email quotes the mail they got, live link and code included;
whoever can read that text (a colleague, an agent, anyone the mail is forwarded to) could
sign in as them. `ExposedSecrets.scrub` runs on each parsed message before it is threaded
or stored: a URL on a Wicket host (the public URL's host or any mailbox's custom domain)
whose path ends in `/l/<43 URL-safe characters>` is replaced by `LINK_REMOVED` whether or
not the token is known, and its link, if there is one, is burned at once; a code-shaped
word (`ABCD-EFGH` or `ABCDEFGH` from the code alphabet) is replaced by `CODE_REMOVED`, and
its link burned, only when it is a code Wicket really issued, so ordinary capitals stay.
Subject, body text, reply and quoted text, HTML (as sent and as sanitized for display) and
an inline forward's text are scrubbed
alike, so everything derived from them (stored message, ticket subject, API, agent
notifications) holds the placeholders; the raw message on the inbound row stays
byte-exact. Cheap on ordinary mail: a substring test and one regex pass decide, and the
database is asked only when a candidate was found.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.audit import record
from gateway.auth.exposed import burn_exposed, issued_codes
from gateway.auth.link_secrets import CODE_ALPHABET, normalize_code
from gateway.mail.parse import ParsedEmail
from gateway.models import Mailbox
from gateway.settings import Settings

LINK_REMOVED = "[sign-in link removed]"
CODE_REMOVED = "[sign-in code removed]"
_MAX_CODE_CANDIDATES = 50  # a mail full of code-shaped words costs one bounded lookup

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A link is found from its tail, `/l/` and a token-shaped run (a literal prefix: fast), and
# read back to where the URL starts: optional scheme, host, optional port, path prefix.
_TAIL = re.compile(r"/l/(?P<token>[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")
_HEAD = re.compile(
    rf"(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?P<host>{_LABEL}(?:\.{_LABEL})*\.?)(?::\d{{1,5}})?(?:/[^/?#]*)*\Z"
)
_URL_ENDS = frozenset(" \t\r\n\"'<>()[]{}|\\^`")
_MAX_URL = 2048
_CODE_CHAR = "[" + re.escape(CODE_ALPHABET) + "]"
# No look-behind in front: a pattern that starts with a character set is searched fast.
_CODE = re.compile(rf"{_CODE_CHAR}{{4}}-?{_CODE_CHAR}{{4}}(?![A-Za-z0-9_-])")
# Four code characters in a row, found by a byte translation and a substring search, about
# ten times faster than the regex on prose (whose capitals rarely come four in a row).
_CODE_MARK = bytes.maketrans(CODE_ALPHABET.encode(), b"X" * len(CODE_ALPHABET))
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclasses.dataclass(frozen=True, slots=True)
class _Link:
    start: int
    end: int
    host: str
    token: str


def _links(text: str) -> list[_Link]:
    """Every `…/l/<token>` URL in `text` whose start reads as scheme, host and path."""
    found = []
    for tail in _TAIL.finditer(text):
        start, limit = tail.start(), max(0, tail.start() - _MAX_URL)
        while start > limit and text[start - 1] not in _URL_ENDS:
            start -= 1
        # The leftmost start that reads as a URL up to the tail ("Link:http://…" starts at "http").
        head = _HEAD.search(text, start, tail.start())
        if head is not None:
            found.append(_Link(head.start(), tail.end(), _host(head.group("host")), tail.group("token")))
    return found


def _codes(text: str) -> list[re.Match[str]]:
    """Code-shaped words: 8 characters of the code alphabet, a dash allowed in the middle."""
    if b"XXXX" not in text.encode("utf-8", "surrogatepass").translate(_CODE_MARK):
        return []
    return [found for found in _CODE.finditer(text) if not found.start() or text[found.start() - 1] not in _WORD_CHARS]


def _host(url_host: str) -> str:
    return url_host.lower().rstrip(".")


class ExposedSecrets:
    """Finds, burns and removes Wicket's links and codes in one parsed message."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._public_host = _host(urlsplit(settings.public_url).hostname or "")

    def scrub(self, session: Session, mail: ParsedEmail, inbound_id: int | None = None) -> ParsedEmail:
        """`mail` with every Wicket link and issued code replaced, their links burned in `session`."""
        texts = _texts(mail)
        links = [link for text in texts if "/l/" in text for link in _links(text)]
        # Codes are looked for in the words a person reads; the HTML says the same and is
        # scrubbed of any code found there.
        codes = {found.group() for text in texts[:-1] for found in _codes(text)}
        if not links and not codes:
            return mail
        hosts = self._wicket_hosts(session, {link.host for link in links})
        tokens = {link.token for link in links if link.host in hosts}
        issued = issued_codes(session, self._settings, sorted(codes)[:_MAX_CODE_CANDIDATES]) if codes else {}
        if not tokens and not issued:
            return mail
        link_ids = [link_id for ids in issued.values() for link_id in ids]
        for burned in burn_exposed(session, self._settings, tokens=tokens, link_ids=link_ids):
            record(
                session, "link.burned", contact_id=burned.contact_id, ticket_id=burned.ticket_id,
                detail={"link_id": burned.id, "reason": "seen in inbound mail", "inbound_email_id": inbound_id},
            )  # fmt: skip
        return _replaced(mail, _replacer(hosts, tokens, set(issued)))

    def _wicket_hosts(self, session: Session, seen: set[str]) -> set[str]:
        """Which of the hosts `seen` in links are Wicket's (the custom domains only read when needed)."""
        hosts = {self._public_host}
        if seen - hosts:
            domains = session.connection().scalars(select(Mailbox.custom_domain).where(Mailbox.custom_domain.in_(seen)))
            hosts |= {_host(domain) for domain in domains if domain}
        return hosts & seen


def _texts(mail: ParsedEmail) -> list[str]:
    """The texts a message is read from, the HTML last (reply and quoted text are parts of `text`)."""
    texts = [mail.subject, mail.text]
    if mail.forwarded is not None:
        texts += [mail.forwarded.subject, mail.forwarded.text]
    return [*texts, mail.html or ""]


def _replacer(hosts: set[str], tokens: set[str], codes: set[str]) -> Callable[[str], str]:
    def replace(text: str) -> str:
        if tokens and "/l/" in text:
            pieces, done = [], 0
            for link in _links(text):
                if link.host in hosts and link.start >= done:
                    pieces += [text[done : link.start], LINK_REMOVED]
                    done = link.end
            text = "".join([*pieces, text[done:]])
        for token in tokens:  # the same token written another way (a link's visible text)
            if token in text:
                text = text.replace(token, LINK_REMOVED)
        if codes:
            pieces, done = [], 0
            for found in _codes(text):
                if normalize_code(found.group()) in codes:
                    pieces += [text[done : found.start()], CODE_REMOVED]
                    done = found.end()
            text = "".join([*pieces, text[done:]])
        return text

    return replace


def _replaced(mail: ParsedEmail, replace: Callable[[str], str]) -> ParsedEmail:
    forwarded = mail.forwarded
    if forwarded is not None:
        forwarded = dataclasses.replace(forwarded, subject=replace(forwarded.subject), text=replace(forwarded.text))
    return dataclasses.replace(
        mail,
        subject=replace(mail.subject),
        text=replace(mail.text),
        html=replace(mail.html) if mail.html is not None else None,
        display=dataclasses.replace(mail.display, body=replace(mail.display.body), quoted=replace(mail.display.quoted)),
        reply_text=replace(mail.reply_text),
        quoted_text=replace(mail.quoted_text),
        forwarded=forwarded,
    )
