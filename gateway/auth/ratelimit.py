"""Rate limits kept in the database, so they hold across processes and restarts.

A rule names a door ("signin-mail" for everything that sends a sign-in email, "portal-post"
for the portal's new requests and replies, which mail the agents and acknowledge, "secret"
for everything that checks a code, password, link or SSO token), a scope (an address, a
contact or a client IP), a limit and a window. Hits are counted per fixed window in one row per
(HMAC of door + scope + subject, window start), incremented by an atomic upsert, so the
stored keys reveal neither addresses nor IPs. Doors that send mail count every request
(`hit`); doors that check a secret count failures only (`check` before, a read for
`Database.read`; `hit(enforce=False)` after a failure, in the caller's write transaction),
so a person who signs in often is never locked out by their successes. A check of a
guessable secret (a code, a password) must hold its limit under a burst of parallel
requests too, where every request could pass `check` before any had counted: such a door
`hit`s first (the counting upsert, which also refuses past the limit, in one statement:
on PostgreSQL concurrent requests queue on the counter's row lock, on SQLite writes take
turns) and `give_back` returns the attempt when the secret was right.
Exceeding a limit raises `RateLimited`, which the portal turns into a "try again in N
minutes" page.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gateway.models import RateLimitCounter, utcnow
from gateway.settings import Settings

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEEP = timedelta(days=1)
_HITS = select(RateLimitCounter.hits).where(
    RateLimitCounter.key_hash == bindparam("key_hash"), RateLimitCounter.window_start == bindparam("window_start")
)


@dataclass(frozen=True, slots=True)
class Rule:
    door: str
    scope: str
    limit: int
    window: timedelta


class RateLimited(Exception):
    """Too many attempts; `retry_after` says how long until the window ends."""

    def __init__(self, rule: Rule, retry_after: timedelta) -> None:
        super().__init__(f"rate limited at {rule.door}/{rule.scope}")
        self.rule = rule
        self.retry_after = retry_after

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after.total_seconds() / 60))


def mail_rules(settings: Settings) -> tuple[Rule, Rule]:
    """(per address, per IP) limits on sending sign-in emails."""
    window = timedelta(minutes=settings.rate_limit_window_minutes)
    return (
        Rule("signin-mail", "address", settings.rate_limit_mail_per_address, window),
        Rule("signin-mail", "ip", settings.rate_limit_mail_per_ip, window),
    )


def portal_post_rule(settings: Settings) -> Rule:
    """The limit on a signed-in contact's new requests and replies (each one mails the agents)."""
    window = timedelta(minutes=settings.rate_limit_window_minutes)
    return Rule("portal-post", "contact", settings.rate_limit_portal_posts_per_contact, window)


def failure_rules(settings: Settings) -> tuple[Rule, Rule]:
    """(per address, per IP) limits on failed secrets: codes, passwords, links, SSO tokens."""
    window = timedelta(minutes=settings.rate_limit_window_minutes)
    return (
        Rule("secret", "address", settings.rate_limit_failures_per_address, window),
        Rule("secret", "ip", settings.rate_limit_failures_per_ip, window),
    )


def window_start(now: datetime, window: timedelta) -> datetime:
    return _EPOCH + ((now - _EPOCH) // window) * window


def client_key(address: str) -> str:
    """What a per-IP limit counts for a client address: an IPv6 client by its /64, since a
    subscriber gets the whole /64 and may use any address in it; an IPv4 one as itself."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip().lower()
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def key_hash(settings: Settings, rule: Rule, subject: str) -> str:
    subject = client_key(subject) if rule.scope == "ip" else subject.strip().lower()
    message = f"ratelimit|{rule.door}|{rule.scope}|{subject}".encode()
    return hmac.new(settings.keys[0].secret, message, hashlib.sha256).hexdigest()


def _retry_after(rule: Rule, now: datetime) -> timedelta:
    return window_start(now, rule.window) + rule.window - now


def hit(
    session: Session,
    settings: Settings,
    rule: Rule,
    subject: str,
    *,
    now: datetime | None = None,
    enforce: bool = True,
) -> int:
    """Count one hit for `subject`; with `enforce`, raise RateLimited once over the limit."""
    now = now or utcnow()
    start = window_start(now, rule.window)
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        module.insert(RateLimitCounter)
        .values(key_hash=key_hash(settings, rule, subject), window_start=start, hits=1)
        .on_conflict_do_update(
            index_elements=["key_hash", "window_start"],
            set_={"hits": RateLimitCounter.__table__.c.hits + 1},
        )
        .returning(RateLimitCounter.hits)
    )
    hits = int(session.execute(statement).scalar_one())
    if hits == 1:
        session.execute(delete(RateLimitCounter).where(RateLimitCounter.window_start < now - _KEEP))
    if enforce and hits > rule.limit:
        log.info("rate limit reached at %s per %s", rule.door, rule.scope)
        raise RateLimited(rule, _retry_after(rule, now))
    return hits


def give_back(session: Session, settings: Settings, rule: Rule, subject: str, *, now: datetime) -> None:
    """Return an attempt counted by `hit` at `now` whose secret was right (successes never count)."""
    table = RateLimitCounter.__table__
    session.execute(
        update(table)
        .where(
            table.c.key_hash == key_hash(settings, rule, subject),
            table.c.window_start == window_start(now, rule.window),
            table.c.hits > 0,
        )
        .values(hits=table.c.hits - 1)
    )


def check(connection: Connection, settings: Settings, rule: Rule, subject: str, *, now: datetime | None = None) -> None:
    """Raise RateLimited when `subject` already used up this window (a read: nothing is counted)."""
    now = now or utcnow()
    key = {"key_hash": key_hash(settings, rule, subject), "window_start": window_start(now, rule.window)}
    hits = connection.scalar(_HITS, key)
    if hits is not None and hits >= rule.limit:
        log.info("rate limit reached at %s per %s", rule.door, rule.scope)
        raise RateLimited(rule, _retry_after(rule, now))
