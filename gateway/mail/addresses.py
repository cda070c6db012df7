"""Addresses as mail names them (`Address`), and whether one may become a contact.

Whether it may is email-validator's syntax check, never DNS. Special-use domains such as `.local`, `.invalid` and `localhost` and single-label domains
are refused (mail cannot be answered there); `.test` is accepted because test and staging
set-ups use it. Internationalized addresses are accepted as SMTPUTF8 mail carries them.
Plain ASCII addresses take a pattern that accepts a subset of what email-validator
accepts, and the answers are cached: the check runs on every message and senders repeat.
`escaped_header` is how a From that named no valid address is shown to the team.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(
    rf"{_ATOM}(?:\.{_ATOM})*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+[A-Za-z]{{2,63}}"
)
_RESERVED = tuple(name for name in SPECIAL_USE_DOMAIN_NAMES if name != "test")
MAX_SHOWN_HEADER = 500  # characters of a hostile header worth showing


@dataclass(frozen=True, slots=True)
class Address:
    email: str  # lower-cased addr-spec, "" if unparseable
    name: str  # decoded display name, "" if none


def is_valid_address(address: str) -> bool:
    """Whether `address` is a syntactically valid mailbox a reply could be sent to."""
    if not address or len(address) > 254:
        return False
    return _is_valid(address)


@lru_cache(maxsize=4096)
def _is_valid(address: str) -> bool:
    if _PLAIN.fullmatch(address) and len(address.partition("@")[0]) <= 64:
        domain = address.rpartition("@")[2].lower()
        if not any(domain == name or domain.endswith(f".{name}") for name in _RESERVED):
            return True
    try:
        validate_email(address, check_deliverability=False, test_environment=True, allow_smtputf8=True)
    except EmailNotValidError:
        return False
    return True


def escaped_header(value: str) -> str:
    """A header value as text that is safe to show anywhere: one line, control and format
    characters (and backslashes) written as Python escapes, at most `MAX_SHOWN_HEADER`
    characters. Pages and mail still escape it for their own markup."""
    shown = []
    for char in " ".join(value.split()):
        if char == "\\":
            shown.append("\\\\")
        elif char.isprintable():
            shown.append(char)
        else:
            shown.append(char.encode("unicode_escape", "backslashreplace").decode("ascii"))
    text = "".join(shown)
    return text if len(text) <= MAX_SHOWN_HEADER else text[: MAX_SHOWN_HEADER - 1] + "…"
