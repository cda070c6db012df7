"""The `EmailMessage` every outbound email starts from: the standard policy, headers made faster.

`new_email()` is `EmailMessage()` under `email.policy.default`; only the header factory
differs, and only in what it does again. Parsing, folding and serializing stay the
standard library's, and the bytes are the same (tests/outbound/test_mime.py):

- The standard `HeaderRegistry` builds a new class with `type()` for every header it
  parses; `_HeaderClasses` builds each class once.
- Most of an email's header values repeat from one email to the next (From, MIME-Version,
  the parts' Content-Type and Content-Transfer-Encoding, the loop header), and the same
  value parses to the same immutable header object: the last few hundred values are kept,
  so a repeated one is not parsed again. An address header is parsed from its text even
  when it is given as `Address` objects, so those are kept by their text.
- A header object folds to the same text under the same line length, line separator and
  UTF-8 setting, and the outbox serializes each email twice (the bytes sent, then the copy
  kept without secrets): each object keeps the text it folded to.

Together they take about a third off composing an email (bench/RESULTS.md). Emails are
serialized with `email.policy.SMTP`, as before.

`text_and_html` gives the text-and-HTML body its multipart boundary up front: 128 random
bits, which no text can contain except by chance, where the generator would draw one
and compile a regular expression to search the parts for it, email after email.
"""

from __future__ import annotations

from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import Policy, default
from functools import lru_cache
from secrets import token_hex

REMEMBERED_VALUES = 256  # a few emails' worth of unique values beside the repeating ones


class _FoldedOnce(BaseHeader):
    """A header that keeps what it folded to, per line length, line separator and UTF-8 setting."""

    def fold(self, *, policy: Policy) -> str:
        folds: dict[tuple[object, ...], str] = self.__dict__.setdefault("_folds", {})
        key = (policy.max_line_length, policy.utf8, policy.linesep)  # all that folding reads of it
        text = folds.get(key)
        if text is None:
            text = folds[key] = super().fold(policy=policy)
        return text


class _HeaderClasses(HeaderRegistry):
    def __init__(self) -> None:
        super().__init__(base_class=_FoldedOnce)
        self._made: dict[str, type[BaseHeader]] = {}
        self._parsed = lru_cache(maxsize=REMEMBERED_VALUES)(self._parse)

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made

    def __call__(self, name: str, value: object) -> BaseHeader:
        if type(value) is str:
            return self._parsed(name, value)
        if isinstance(value, Address):  # the header is parsed from its text either way
            return self._parsed(name, str(value))
        if isinstance(value, list | tuple) and all(isinstance(item, Address) for item in value):
            return self._parsed(name, ", ".join(str(item) for item in value))
        return self._parse(name, value)

    def _parse(self, name: str, value: object) -> BaseHeader:
        return self[name](name, value)


OUTBOUND = default.clone(header_factory=_HeaderClasses())


def new_email() -> EmailMessage:
    """An empty email under the outbound policy."""
    return EmailMessage(policy=OUTBOUND)


def text_and_html(email: EmailMessage, text: str, html: str) -> None:
    """Give `email` its body: `text` and `html` as the two parts of a multipart/alternative."""
    email.set_content(text)
    email.make_alternative(boundary=f"=_{token_hex(16)}")
    email.add_alternative(html, subtype="html")
