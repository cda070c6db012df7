"""The audit trail: one event per sign-in, view, reply or credential change.

Every door of the portal (and the agent API) writes its events in the caller's
transaction, so an event exists exactly when the change it describes committed:
`record(session, ...)`, inside the caller's unit of work (`Database.write`), inserts it
at once with one Core statement, without the ORM's flush.
Events are dotted names (`link.issued`, `link.exchanged`, `link.refused`, `code.attempt`,
`session.started`, `session.ended`, `sso.signin`, `password.changed`, …) with the
contact, the ticket, the client IP and user agent, and a small JSON `detail`. Never put
a token, a code, a password or a JWT in `detail`: keys that name one are refused outright.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from gateway.models import AuditEvent, Contact, Ticket, utcnow
from gateway.storage import statements

log = logging.getLogger(__name__)

FORBIDDEN_DETAIL_KEYS = frozenset({"token", "code", "password", "jwt", "secret", "url", "link_url"})
_INSERT = statements.prepare("audit.insert", insert(AuditEvent.__table__))


def _event_values(
    event: str,
    *,
    contact: Contact | None = None,
    ticket: Ticket | None = None,
    request_ip: str | None = None,
    user_agent: str | None = None,
    detail: dict[str, Any] | None = None,
    contact_id: int | None = None,
    ticket_id: int | None = None,
) -> dict[str, Any]:
    """The columns of a new audit event (checked and logged)."""
    detail = dict(detail or {})
    forbidden = FORBIDDEN_DETAIL_KEYS.intersection(k.lower() for k in detail)
    if forbidden:
        raise ValueError(f"audit detail must not carry secrets ({', '.join(sorted(forbidden))})")
    values = {
        "event": event,
        "contact_id": contact.id if contact is not None else contact_id,
        "ticket_id": ticket.id if ticket is not None else ticket_id,
        "request_ip": (request_ip or None) and request_ip[:64],
        "user_agent": (user_agent or None) and user_agent[:300],
        "detail": detail,
        "created_at": utcnow(),
    }
    log.info("audit %s contact=%s ticket=%s %s", event, values["contact_id"], values["ticket_id"], detail or "")
    return values


def record(session: Session, event: str, **details: Any) -> None:
    """Insert an audit event now, in `session`'s transaction (one Core statement, no ORM flush)."""
    statements.rows(_INSERT, session.connection(), _event_values(event, **details))
