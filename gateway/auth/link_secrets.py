"""The two secrets a magic link carries: how they are made, written, read back and digested.

A token is 256 random bits in URL-safe base64 and carries no data; a code is 8 characters
from an alphabet without look-alikes, for typing on another device. Both are stored only
as HMACs under a configured key (`token_digest`, `code_digest`), never as they are. Pure
functions, no database: gateway/auth/tokens.py issues and uses links with them, and
gateway/auth/exposed.py recognises them where they should not be.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from gateway.settings import SecretKey

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
_CODE_NOISE = re.compile(r"[\s\-_.]")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def format_code(code: str) -> str:
    """`ABCDEFGH` -> `ABCD-EFGH`, the way the email shows it."""
    return f"{code[:4]}-{code[4:]}"


def normalize_code(text: str) -> str:
    """What a person typed, as a code: upper case, without spaces or dashes."""
    return _CODE_NOISE.sub("", text or "").upper()[:32]


def well_formed(token: str) -> bool:
    return bool(_TOKEN_SHAPE.fullmatch(token or ""))


def token_digest(key: SecretKey, token: str) -> str:
    return hmac.new(key.secret, b"wicket-link|" + token.encode(), hashlib.sha256).hexdigest()


def code_digest(key: SecretKey, code: str) -> str:
    return hmac.new(key.secret, b"wicket-code|" + code.encode(), hashlib.sha256).hexdigest()
