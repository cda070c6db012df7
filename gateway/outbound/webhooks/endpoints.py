"""Webhook endpoints: adding, listing, removing them, and their rotating signing secrets.

An endpoint's secret is never stored: it is an HMAC of the endpoint's public id and its
secret version under one of the server's keys (the row names the key), so a leaked
database signs nothing. `rotate_secret` moves to the next version and keeps the previous
one signing too for `webhook_secret_overlap_hours`: every request then carries both
signatures (the Standard Webhooks header takes several, space-separated), so a receiver
can switch secrets at any moment within the overlap. The secret is shown to the operator
when the endpoint is added or rotated, and again by `wicket webhooks secret`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.orm import Session

from gateway.models import MailRoute, WebhookEndpoint, WebhookEvent, WebhookStatus, utcnow
from gateway.settings import SecretKey, Settings

MESSAGE_RECEIVED = "message.received"
TICKET_EVENTS = ("ticket.created", "ticket.status_changed", "ticket.assigned", "message.sent", "delivery.failed")
EVENT_TYPES = (MESSAGE_RECEIVED, *TICKET_EVENTS)
TEST_EVENT = "webhook.test"


class EndpointError(ValueError):
    """An endpoint that cannot be added or found as given."""


@dataclass(frozen=True, slots=True)
class EndpointView:
    id: str
    url: str
    description: str
    events: list[str]
    active: bool
    pending: int
    dead: int


def secret_for(key: SecretKey, public_id: str, version: int) -> str:
    """The Standard Webhooks secret (`whsec_…`) of one endpoint at one version."""
    digest = hmac.new(key.secret, f"wicket-webhook:{public_id}:{version}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(digest).decode()


def signing_secrets(settings: Settings, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a request now: the current one, and the previous while it overlaps."""
    key = _key(settings, endpoint.key_id)
    secrets = [secret_for(key, endpoint.public_id, endpoint.secret_version)]
    if endpoint.previous_valid_until is not None and now < endpoint.previous_valid_until:
        secrets.append(secret_for(key, endpoint.public_id, endpoint.secret_version - 1))
    return secrets


def current_secret(settings: Settings, endpoint: WebhookEndpoint) -> str:
    return secret_for(_key(settings, endpoint.key_id), endpoint.public_id, endpoint.secret_version)


def _key(settings: Settings, key_id: str) -> SecretKey:
    for key in settings.keys:
        if key.kid == key_id:
            return key
    raise EndpointError(
        f"the server key {key_id} this endpoint's secret derives from is no longer configured; "
        "put it back in WICKET_SECRET_KEYS or run `wicket webhooks rotate-secret`"
    )


def check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointError(f"{url!r} is not an http:// or https:// URL")
    return url.strip()


def check_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(TICKET_EVENTS))
    if unknown:
        raise EndpointError(
            f"unknown event type(s) {', '.join(unknown)}: choose from {', '.join(TICKET_EVENTS)} "
            "(message.received comes through routes: `wicket routes add … --webhook ID`)"
        )
    return list(dict.fromkeys(events))


def add_endpoint(
    session: Session, settings: Settings, url: str, *, events: list[str], description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint; returns it with its secret (shown once to whoever added it)."""
    endpoint = WebhookEndpoint(
        url=check_url(url), events=check_events(events), description=description[:200], key_id=settings.keys[0].kid
    )
    session.add(endpoint)
    session.flush()
    return endpoint, current_secret(settings, endpoint)


def find_endpoint(session: Session, public_id: str) -> WebhookEndpoint:
    endpoint = session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.public_id == public_id.strip()))
    if endpoint is None:
        raise EndpointError(f"no webhook endpoint {public_id!r}; `wicket webhooks list` shows them")
    return endpoint


def rotate_secret(session: Session, settings: Settings, public_id: str) -> str:
    """Move to a new secret; the previous one keeps signing for the overlap. Returns the new one."""
    endpoint = find_endpoint(session, public_id)
    if endpoint.key_id != settings.keys[0].kid:
        # Rederive both from the newest key: the old version under the old key may be gone.
        endpoint.key_id, endpoint.secret_version, endpoint.previous_valid_until = settings.keys[0].kid, 1, None
    else:
        endpoint.secret_version += 1
        endpoint.previous_valid_until = utcnow() + timedelta(hours=settings.webhook_secret_overlap_hours)
    endpoint.active = True
    session.flush()
    return current_secret(settings, endpoint)


def remove_endpoint(session: Session, public_id: str) -> None:
    """Delete an endpoint with its events; routes that pushed to it must be removed first."""
    endpoint = find_endpoint(session, public_id)
    routes = session.scalar(select(func.count(MailRoute.id)).where(MailRoute.endpoint_id == endpoint.id))
    if routes:
        raise EndpointError(f"{routes} route(s) post to this endpoint; remove them first (`wicket routes list`)")
    session.execute(delete(WebhookEvent).where(WebhookEvent.endpoint_id == endpoint.id))
    session.delete(endpoint)


def list_endpoints(connection: Connection) -> list[EndpointView]:
    """Every endpoint with how many of its events wait and how many are dead letters."""
    waiting = [WebhookStatus.PENDING, WebhookStatus.SENDING, WebhookStatus.RETRYING]
    counts = connection.execute(
        select(WebhookEvent.endpoint_id, WebhookEvent.status.in_(waiting), func.count(WebhookEvent.id))
        .where(WebhookEvent.status != WebhookStatus.DELIVERED)
        .group_by(WebhookEvent.endpoint_id, WebhookEvent.status.in_(waiting))
    ).all()
    pending = {endpoint: n for endpoint, is_waiting, n in counts if is_waiting}
    dead = {endpoint: n for endpoint, is_waiting, n in counts if not is_waiting}
    e = WebhookEndpoint
    rows = connection.execute(select(e.id, e.public_id, e.url, e.description, e.events, e.active).order_by(e.id))
    return [
        EndpointView(public_id, url, description, list(events or TICKET_EVENTS), active,
                     pending.get(id_, 0), dead.get(id_, 0))
        for id_, public_id, url, description, events, active in rows
    ]  # fmt: skip


def redeliver(session: Session, event_ids: list[str], *, dead_of: str | None = None) -> int:
    """Queue events again from their first attempt (by webhook-id, or every dead one of an endpoint)."""
    where = WebhookEvent.public_id.in_(event_ids)
    if dead_of is not None:
        where = (WebhookEvent.endpoint_id == find_endpoint(session, dead_of).id) & (
            WebhookEvent.status == WebhookStatus.DEAD
        )
    result = session.execute(
        update(WebhookEvent)
        .where(where, WebhookEvent.status != WebhookStatus.SENDING)
        .values(status=WebhookStatus.PENDING, attempts=0, next_attempt_at=utcnow(), lease_expires_at=None)
        .returning(WebhookEvent.endpoint_id)
    )
    rows = result.all()
    endpoints = {endpoint_id for (endpoint_id,) in rows}
    if endpoints:  # asking for a redelivery undoes an endpoint's 410 Gone
        session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id.in_(endpoints)).values(active=True))
    return len(rows)
