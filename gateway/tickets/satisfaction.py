"""Satisfaction ratings: "How did we do?" after a resolution, counted once, on POST only.

The mail that tells customers a ticket is resolved carries good and bad links
(`issue_rating_link`, called when the mail is rendered, like a magic link: the row keeps
the HMAC of a random token under a key id, never the token). Opening a link shows a page
with two buttons and a comment box; only its POST calls `rate`, so mail scanners that
fetch every URL rate nothing. A ticket has one rating per resolution (`resolved_at`,
unique with the ticket): the first POST wins, later ones are told it was already rated.
A rating is published as `TicketRated` (agents are notified) and written to the audit
trail, in the transaction that stores it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.audit import record
from gateway.auth.tokens import new_token, well_formed
from gateway.models import Contact, Mailbox, RatingLink, SatisfactionRating, Ticket, utcnow
from gateway.settings import SecretKey, Settings
from gateway.storage.upsert import insert_ignore
from gateway.tickets.events import EventBus, TicketRated

log = logging.getLogger(__name__)
RATING_LINK_TTL = timedelta(days=14)  # a verdict may come after a weekend away
MAX_COMMENT = 2_000


class RatingOutcome(StrEnum):
    RATED = "rated"
    ALREADY = "already rated"
    UNKNOWN = "unknown"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class RatingLinks:
    """The two links a resolved mail shows; `token` goes only into them."""

    token: str
    good_url: str
    bad_url: str


def rating_digest(key: SecretKey, token: str) -> str:
    return hmac.new(key.secret, b"wicket-rating|" + token.encode(), hashlib.sha256).hexdigest()


def issue_rating_link(session: Session, settings: Settings, ticket: Ticket, contact: Contact, portal: str) -> RatingLinks:
    """A fresh rating link for `contact` about the ticket's latest resolution."""
    assert ticket.resolved_at is not None, "only a resolved ticket is rated"
    key, token, now = settings.keys[0], new_token(), utcnow()
    session.add(RatingLink(ticket_id=ticket.id, contact_id=contact.id, resolved_at=ticket.resolved_at, key_id=key.kid,
                           token_hmac=rating_digest(key, token), created_at=now, expires_at=now + RATING_LINK_TTL))  # fmt: skip
    return RatingLinks(token, f"{portal}/rate/{token}?rating=good", f"{portal}/rate/{token}?rating=bad")


def find_rating_link(session: Session, settings: Settings, token: str) -> tuple[RatingLink | None, RatingOutcome | None]:
    """The link `token` names and why it cannot be used, if it cannot (None: it can)."""
    if not well_formed(token):
        return None, RatingOutcome.UNKNOWN
    digests = [rating_digest(key, token) for key in settings.keys]
    link = session.scalar(select(RatingLink).where(RatingLink.token_hmac.in_(digests)))
    if link is None:
        return None, RatingOutcome.UNKNOWN
    if link.expires_at <= utcnow():
        return link, RatingOutcome.EXPIRED
    rated = session.scalar(select(SatisfactionRating.id).where(
        SatisfactionRating.ticket_id == link.ticket_id, SatisfactionRating.resolved_at == link.resolved_at))  # fmt: skip
    return link, RatingOutcome.ALREADY if rated is not None else None


def rate(
    session: Session, settings: Settings, events: EventBus, token: str, *, good: bool, comment: str, **origin: str
) -> RatingOutcome:
    """Store the verdict the link `token` asks for, once per resolution; publish and audit it."""
    link, refusal = find_rating_link(session, settings, token)
    if refusal is not None or link is None:
        log.info("rating refused: %s (rating link %s)", refusal, link.id if link else None)
        return refusal or RatingOutcome.UNKNOWN
    values = {"ticket_id": link.ticket_id, "contact_id": link.contact_id, "resolved_at": link.resolved_at,
              "good": good, "comment": comment.strip()[:MAX_COMMENT], "created_at": utcnow()}  # fmt: skip
    dialect = session.get_bind().dialect.name
    stored = session.execute(insert_ignore(dialect, SatisfactionRating, values, ["ticket_id", "resolved_at"]))
    if not stored.rowcount:
        return RatingOutcome.ALREADY  # another POST of the same resolution won
    rating = session.scalars(select(SatisfactionRating).where(
        SatisfactionRating.ticket_id == link.ticket_id, SatisfactionRating.resolved_at == link.resolved_at)).one()  # fmt: skip
    ticket = session.get_one(Ticket, link.ticket_id)
    contact = session.get_one(Contact, link.contact_id)
    detail = {"rating": "good" if good else "bad", "comment": bool(rating.comment), "rating_link": link.id}
    record(session, "ticket.rated", contact_id=contact.id, ticket_id=ticket.id, detail=detail, **origin)
    events.publish(session, TicketRated(session.get_one(Mailbox, ticket.mailbox_id), ticket, contact, rating))
    return RatingOutcome.RATED


def ratings_of(session: Session, ticket_id: int) -> list[SatisfactionRating]:
    return list(session.scalars(
        select(SatisfactionRating).where(SatisfactionRating.ticket_id == ticket_id).order_by(SatisfactionRating.id)))
