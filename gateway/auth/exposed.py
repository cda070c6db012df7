"""Links and codes seen where they should not be: recognised, and burned at once.

Everything that arrives by mail is attacker-controlled, our own words quoted back
included (docs/architecture.md, "Rules the code relies on"). When inbound mail carries a
link or a code Wicket issued, whoever saw that mail could use it, so `burn_exposed` stops
it working whatever its state, and `issued_codes` tells which typed codes were Wicket's
(gateway/inbound/exposed_secrets.py replaces them in every text shown). `revoke_link`
burns the link an earlier attempt of a retried email carried. A burned link is refused
like a used one (gateway/auth/tokens.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from gateway.auth.link_secrets import code_digest, normalize_code, token_digest, well_formed
from gateway.models import MagicLink, utcnow
from gateway.settings import Settings

log = logging.getLogger(__name__)


def issued_codes(session: Session, settings: Settings, codes: Iterable[str]) -> dict[str, list[int]]:
    """Which of `codes` (as typed: any case, dashes allowed) Wicket issued, with their links' ids.

    In any state: a used or expired code is still a code, and is still removed from text
    Wicket shows. One indexed query over the codes' HMACs under every configured key.
    """
    by_digest: dict[str, str] = {}
    for typed in codes:
        code = normalize_code(typed)
        for key in settings.keys:
            by_digest[code_digest(key, code)] = code
    if not by_digest:
        return {}
    table = MagicLink.__table__
    rows = session.connection().execute(
        select(table.c.id, table.c.code_hmac).where(table.c.code_hmac.in_(list(by_digest)))
    )
    found: dict[str, list[int]] = {}
    for link_id, digest in rows:
        found.setdefault(by_digest[digest], []).append(link_id)
    return found


@dataclass(frozen=True, slots=True)
class BurnedLink:
    id: int
    contact_id: int
    ticket_id: int | None


def burn_exposed(
    session: Session,
    settings: Settings,
    *,
    tokens: Iterable[str] = (),
    link_ids: Iterable[int] = (),
    now: datetime | None = None,
) -> list[BurnedLink]:
    """Burn the links of `tokens` (by their HMAC under every key) and `link_ids`; return those burned now.

    For a link seen where it should not be (quoted back in mail, say): whoever saw it could
    use it, so it stops working at once, used or not. One UPDATE; unknown tokens burn nothing.
    """
    digests = [token_digest(key, token) for token in tokens if well_formed(token) for key in settings.keys]
    ids = list(link_ids)
    if not digests and not ids:
        return []
    table = MagicLink.__table__
    now = now or utcnow()
    exposed = or_(table.c.token_hmac.in_(digests), table.c.id.in_(ids))
    rows = session.connection().execute(
        update(table)
        .where(exposed, table.c.burned.is_(False))
        .values(burned=True, consumed_at=func.coalesce(table.c.consumed_at, now))
        .returning(table.c.id, table.c.contact_id, table.c.ticket_id)
    )
    burned = [BurnedLink(*row) for row in rows]
    for link in burned:
        log.info("magic link burned: it was exposed (link %d)", link.id)
    return burned


def revoke_link(session: Session, link_id: int, *, now: datetime | None = None) -> None:
    """Burn one link by id (a retried email replaces the link the earlier attempt carried)."""
    table = MagicLink.__table__
    session.connection().execute(
        update(table)
        .where(table.c.id == link_id, table.c.burned.is_(False))
        .values(burned=True, consumed_at=func.coalesce(table.c.consumed_at, now or utcnow()))
    )
