"""Optional contact passwords: argon2id hashing, verified off the event loop.

`verify_password(None, typed)` still runs a full argon2 verification against a throwaway
hash, so "no such contact", "no password set" and "wrong password" take the same time.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_LENGTH = 1024


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return _hasher().hash("wicket-decoy-password")


def _verify(stored: str | None, typed: str) -> bool:
    try:
        return _hasher().verify(stored or _decoy_hash(), typed) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher().hash, password)


async def verify_password(stored: str | None, typed: str) -> bool:
    """True only when `stored` is a hash of `typed`; the same work whatever `stored` is."""
    return await asyncio.to_thread(_verify, stored, typed[:MAX_LENGTH])
