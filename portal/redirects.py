"""Where a person goes after signing in: only ever a path on this portal.

`safe_return_path` is the one validator for every return path (a link's stored path, the
`next` field of /login and /code, the `return_to` claim of an SSO token). It accepts a
plain local path of printable ASCII, and refuses anything a browser could read as another
host: `//host`, `/\\host`, schemes, control characters and whitespace; after undoing each
layer of percent-encoding it checks again (`/%2F%2Fhost`, `/%5Chost`, `/%09/host`,
`/%252F…`), so no later decoding step can turn the path into another host. Refused paths
become the ticket list.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from gateway.models import MagicLink, Ticket

TICKET_LIST = "/tickets"
MAX_LENGTH = 2000
_DECODE_LAYERS = 4
_TICKET_PUBLIC_ID = select(Ticket.__table__.c.public_id).where(Ticket.__table__.c.id == bindparam("ticket_id"))


def _looks_local(path: str, *, raw: bool) -> bool:
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return False
    if raw and any(not 0x21 <= ord(char) <= 0x7E for char in path):
        return False
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return False
    parts = urlsplit(path)
    return not parts.scheme and not parts.netloc


def safe_return_path(value: object) -> str | None:
    """`value` when it is a harmless local path, else None."""
    if not isinstance(value, str) or not value or len(value) > MAX_LENGTH:
        return None
    if not _looks_local(value, raw=True):
        return None
    candidate = value
    for _ in range(_DECODE_LAYERS):
        decoded = unquote(candidate)
        if decoded == candidate:
            return value
        if not _looks_local(decoded, raw=False):
            return None
        candidate = decoded
    return None


def return_path_or_list(value: object) -> str:
    return safe_return_path(value) or TICKET_LIST


def return_path_for(session: Session, link: MagicLink) -> str:
    """The page a consumed link leads to: its ticket, its stored path, or the ticket list."""
    if link.ticket_id is not None:
        public_id = session.scalar(_TICKET_PUBLIC_ID, {"ticket_id": link.ticket_id})
        if public_id is not None:
            return f"/tickets/{public_id}"
    return return_path_or_list(link.return_path)
