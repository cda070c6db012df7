"""Magic links: issue them, look them up, verify them and use them up, by token or by code.

The token and the code are made and digested in gateway/auth/link_secrets.py; the
database keeps only HMAC(key, token), HMAC(key, code) and the key id. Lookups try every
configured key, newest first, so rotating keys keeps links already sent working, while a
link signed with a key that is no longer configured stops working. The small functions at
the top are pure (they take `now`); the others take the caller's synchronous session, so
the link exchange is one unit of work (`Database.write`). A refusal is logged once with
its reason and the link id, never with the token or the code. Consumption is a single
`UPDATE … WHERE consumed_at IS NULL AND expires_at > now RETURNING`, so of many
concurrent exchanges of one token exactly one wins. A link whose token or code was seen
where it should not be is burned (gateway/auth/exposed.py); a burned link is refused like
a used one, whatever its state before.
"""

from __future__ import annotations

import functools
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, Update, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from gateway.auth.audit import record
from gateway.auth.link_secrets import code_digest, new_code, new_token, normalize_code, token_digest, well_formed
from gateway.models import Contact, MagicLink, Ticket, utcnow
from gateway.settings import Settings

log = logging.getLogger(__name__)

MAX_LINK_TTL = timedelta(hours=24)
_MAX_CODE_CANDIDATES = 20


class LinkPurpose(StrEnum):
    REPLY = "reply"
    SIGNIN = "signin"
    REQUEST = "request"  # confirms a new customer's address and opens their pending request


class Refusal(StrEnum):
    """Why a token or code did not sign anyone in."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"
    BURNED = "burned"
    WRONG_CODE = "wrong code"


@dataclass(frozen=True, slots=True)
class IssuedLink:
    token: str  # goes only into the URL, never logged or stored
    code: str  # shown in the email
    link: MagicLink  # the stored row (HMACs only)

    def url(self, portal_url: str) -> str:
        """The link under `portal_url` (see `gateway.directory.branding.portal_url`)."""
        return f"{portal_url}/l/{self.token}"


@dataclass(frozen=True, slots=True)
class LinkCheck:
    """The outcome of looking at or consuming a token: the link, and why it failed if it did."""

    link: MagicLink | None
    refusal: Refusal | None = None
    burned: int = 0

    @property
    def ok(self) -> bool:
        return self.link is not None and self.refusal is None


def default_ttl(settings: Settings, purpose: LinkPurpose) -> timedelta:
    minutes = settings.reply_link_ttl_minutes if purpose is LinkPurpose.REPLY else settings.signin_link_ttl_minutes
    return timedelta(minutes=minutes)


def link_refusal(link: MagicLink | None, now: datetime) -> Refusal | None:
    """Why `link` cannot be used at `now`, or None when it can."""
    if link is None:
        return Refusal.UNKNOWN
    if link.burned:
        return Refusal.BURNED
    if link.consumed_at is not None:
        return Refusal.USED
    if link.expires_at <= now:
        return Refusal.EXPIRED
    return None


_REASONS = {
    Refusal.MALFORMED: "magic link refused: the token is not well formed (truncated or mangled?)",
    Refusal.UNKNOWN: "magic link refused: no link matches under any configured key (altered, or its key removed?)",
    Refusal.EXPIRED: "magic link refused: expired",
    Refusal.USED: "magic link refused: already used",
    Refusal.BURNED: "magic link refused: burned (too many wrong codes, or seen in inbound mail)",
    Refusal.WRONG_CODE: "sign-in code refused: no active link matches",
}


def _log_refusal(refusal: Refusal, link: MagicLink | None) -> None:
    log.info("%s%s", _REASONS[refusal], f" (link {link.id})" if link is not None else "")


@functools.cache
def _token_match(key_ids: tuple[str, ...]) -> ColumnElement[bool]:
    """WHERE clause: the token's HMAC under each configured key (`:digest_<n>`), with that key's id.

    Built once per set of keys, so its statements compile once into the statement cache.
    """
    column = MagicLink.__table__.c
    pairs = [and_(column.token_hmac == bindparam(f"digest_{n}"), column.key_id == kid) for n, kid in enumerate(key_ids)]
    return or_(*pairs)


def _token_values(settings: Settings, token: str) -> dict[str, str]:
    return {f"digest_{n}": token_digest(key, token) for n, key in enumerate(settings.keys)}


def _key_ids(settings: Settings) -> tuple[str, ...]:
    return tuple(key.kid for key in settings.keys)


@functools.cache
def _by_token(key_ids: tuple[str, ...]) -> Select[tuple[MagicLink]]:
    return select(MagicLink).where(_token_match(key_ids))


@functools.cache
def _consuming(key_ids: tuple[str, ...] | None) -> Update:
    """The atomic use of a link: by token (under these keys), or by `:link_id` when None.

    Plain Core on the table's columns (ORM attributes would send it down the ORM's bulk-update
    path, which cost more than the UPDATE itself).
    """
    table = MagicLink.__table__
    condition = table.c.id == bindparam("link_id") if key_ids is None else _token_match(key_ids)
    return (
        update(table)
        .where(condition, table.c.consumed_at.is_(None), table.c.expires_at > bindparam("now"))
        .values(consumed_at=bindparam("now"))
        .returning(*table.columns)
    )


# -- database operations --------------------------------------------------------------


def issue_link(
    session: Session,
    settings: Settings,
    contact: Contact,
    *,
    ticket: Ticket | None = None,
    purpose: LinkPurpose = LinkPurpose.REPLY,
    ttl: timedelta | None = None,
    now: datetime | None = None,
    return_path: str | None = None,
) -> IssuedLink:
    """Store a new link for `contact` (optionally returning to `ticket`) and audit it."""
    now = now or utcnow()
    ttl = ttl or default_ttl(settings, purpose)
    if not timedelta(0) < ttl <= MAX_LINK_TTL:
        raise ValueError("a magic link must expire within 24 hours")
    key = settings.keys[0]
    token, code = new_token(), new_code()
    link = MagicLink(
        contact_id=contact.id,
        ticket_id=ticket.id if ticket is not None else None,
        purpose=str(purpose),
        key_id=key.kid,
        token_hmac=token_digest(key, token),
        code_hmac=code_digest(key, code),
        return_path=return_path,
        code_attempts=0,
        burned=False,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(link)
    session.flush()
    record(
        session,
        "link.issued",
        contact=contact,
        ticket=ticket,
        detail={"link_id": link.id, "purpose": str(purpose), "expires_at": link.expires_at.isoformat()},
    )
    return IssuedLink(token=token, code=code, link=link)


def find_link(session: Session, settings: Settings, token: str) -> MagicLink | None:
    """The stored link for `token` in any state, or None (no logging: see `check_link`)."""
    if not well_formed(token):
        return None
    return session.scalar(_by_token(_key_ids(settings)), _token_values(settings, token))


def check_link(
    session: Session, settings: Settings, token: str, *, now: datetime | None = None
) -> LinkCheck:
    """Look at a token without consuming it; a refusal is logged with its reason."""
    now = now or utcnow()
    if not well_formed(token):
        _log_refusal(Refusal.MALFORMED, None)
        return LinkCheck(None, Refusal.MALFORMED)
    link = find_link(session, settings, token)
    refusal = link_refusal(link, now)
    if refusal is not None:
        _log_refusal(refusal, link)
    return LinkCheck(link, refusal)


def verify_link(
    session: Session, settings: Settings, token: str, *, now: datetime | None = None
) -> MagicLink | None:
    """The usable link for `token`, or None (and a log line saying why)."""
    outcome = check_link(session, settings, token, now=now)
    return outcome.link if outcome.ok else None


def _consume(session: Session, statement: Update, values: dict[str, Any]) -> MagicLink | None:
    """The link the UPDATE used up, as a transient MagicLink (never add it to a session), or None."""
    row = session.execute(statement, values).first()
    return None if row is None else MagicLink(**row._mapping)


def consume_link(session: Session, settings: Settings, token: str, *, now: datetime | None = None) -> LinkCheck:
    """Use a token up: one atomic UPDATE; of concurrent callers exactly one gets the link.

    Synchronous, for `Database.write`; in an async transaction `consume_link(session, …)`.
    """
    now = now or utcnow()
    if not well_formed(token):
        _log_refusal(Refusal.MALFORMED, None)
        return LinkCheck(None, Refusal.MALFORMED)
    key_ids, values = _key_ids(settings), _token_values(settings, token)
    link = _consume(session, _consuming(key_ids), {**values, "now": now})
    if link is not None:
        return LinkCheck(link)
    link = session.scalar(_by_token(key_ids), values)
    refusal = link_refusal(link, now) or Refusal.USED
    _log_refusal(refusal, link)
    return LinkCheck(link, refusal)


def consume_code(
    session: Session,
    settings: Settings,
    contact: Contact | None,
    typed: str,
    *,
    now: datetime | None = None,
) -> LinkCheck:
    """Use up the active link of `contact` whose code is `typed`.

    A wrong code counts against every active link of the contact; a link that reaches
    `settings.code_max_attempts` is burned. The HMACs are computed whether or not the
    contact exists, so an unknown address costs the same work.
    """
    now = now or utcnow()
    code = normalize_code(typed)
    digests = {key.kid: code_digest(key, code) for key in settings.keys}
    candidates: list[MagicLink] = []
    if contact is not None:
        active = (MagicLink.contact_id == contact.id, MagicLink.consumed_at.is_(None), MagicLink.expires_at > now)
        query = select(MagicLink).where(*active).order_by(MagicLink.id.desc()).limit(_MAX_CODE_CANDIDATES)
        candidates = list(session.scalars(query).all())
    matches = [c for c in candidates if hmac.compare_digest(c.code_hmac, digests.get(c.key_id, ""))]
    match = matches[0] if matches else None
    if match is not None:
        link = _consume(session, _consuming(None), {"link_id": match.id, "now": now})
        if link is not None:
            return LinkCheck(link)
        _log_refusal(Refusal.USED, match)
        return LinkCheck(match, Refusal.USED)
    burned = 0
    if candidates:
        ids = [c.id for c in candidates]
        quietly = {"synchronize_session": False}
        count = update(MagicLink).where(MagicLink.id.in_(ids)).values(code_attempts=MagicLink.code_attempts + 1)
        session.execute(count.execution_options(**quietly))
        limit = settings.code_max_attempts
        exhausted = (MagicLink.id.in_(ids), MagicLink.consumed_at.is_(None), MagicLink.code_attempts >= limit)
        burn = update(MagicLink).where(*exhausted).values(consumed_at=now, burned=True).returning(MagicLink.id)
        burned = len(session.scalars(burn.execution_options(**quietly)).all())
    _log_refusal(Refusal.WRONG_CODE, None)
    if burned:
        log.info("sign-in code: %d link(s) burned after %d wrong codes", burned, settings.code_max_attempts)
    return LinkCheck(None, Refusal.WRONG_CODE, burned=burned)
