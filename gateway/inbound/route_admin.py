"""Adding, listing and removing routes (the `mail_route` table), for the CLI and the agent API.

A route needs at least one action: a mailbox to make tickets in, a webhook endpoint to
post to, or both. A route for a mailbox's own address (exact or plus) makes tickets in
that mailbox unless told not to, so adding a webhook to a mailbox keeps its tickets.
Patterns are checked here, so a route that could never match, or one that would accept
mail for every domain, is refused with a sentence saying what to write instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from gateway.models import Mailbox, MailRoute, PayloadFormat, RouteMatch, WebhookEndpoint
from gateway.tickets.reply_address import split_plus


class RouteError(ValueError):
    """A route that cannot be added or found as given."""


class RouteNotFound(RouteError):
    """No such route (among those the caller may see), or no such webhook endpoint."""


class RouteRefused(RouteError):
    """A route the caller may not add (an agent reaching beyond their mailboxes)."""


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """What an operator asks for; `mailbox` None with `ticket` True means the pattern's own mailbox."""

    match: RouteMatch
    pattern: str = ""
    header_name: str | None = None
    header_contains: str | None = None
    mailbox: str | None = None
    ticket: bool = True
    webhook: str | None = None
    payload_format: PayloadFormat = PayloadFormat.JSON
    priority: int = 100
    stop: bool = False


@dataclass(frozen=True, slots=True)
class RouteView:
    id: str
    priority: int
    match: str
    pattern: str
    header: str | None
    mailbox: str | None
    webhook: str | None
    payload_format: str
    stop: bool


def _pattern(match: RouteMatch, pattern: str) -> str:
    pattern = pattern.strip().lower()
    if match == RouteMatch.CATCH_ALL:
        if pattern:
            raise RouteError("a catch-all route takes no pattern")
        return ""
    if match == RouteMatch.DOMAIN:
        domain = pattern.lstrip("@")
        if "@" in domain or "." not in domain:
            raise RouteError(f"{pattern!r} is not a domain like example.com")
        return domain
    local, at, domain = pattern.rpartition("@")
    if not at or not local or "." not in domain:
        raise RouteError(f"{pattern!r} is not an address like support@example.com")
    if match == RouteMatch.PLUS and split_plus(pattern)[1] is not None:
        raise RouteError("a plus route names the base address (support@example.com), which covers every +tag")
    return pattern


def add_route(session: Session, spec: RouteSpec) -> MailRoute:
    pattern = _pattern(spec.match, spec.pattern)
    if bool(spec.header_name) != (spec.header_contains is not None):
        raise RouteError("a header condition needs both the header's name and the text it contains")
    mailbox_id = _mailbox_id(session, spec, pattern)
    endpoint_id = None
    if spec.webhook:
        endpoint_id = session.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.public_id == spec.webhook))
        if endpoint_id is None:
            raise RouteNotFound(f"no webhook endpoint {spec.webhook!r}; add one with `wicket webhooks add URL`")
    if mailbox_id is None and endpoint_id is None:
        raise RouteError("a route needs an action: a mailbox to make tickets in (--mailbox) or a webhook (--webhook)")
    route = MailRoute(
        priority=spec.priority, match=spec.match, pattern=pattern, header_name=spec.header_name or None,
        header_contains=spec.header_contains, mailbox_id=mailbox_id, endpoint_id=endpoint_id,
        payload_format=spec.payload_format, stop=spec.stop,
    )  # fmt: skip
    session.add(route)
    session.flush()
    return route


def _mailbox_id(session: Session, spec: RouteSpec, pattern: str) -> int | None:
    if not spec.ticket:
        return None
    if spec.mailbox:
        found = session.scalar(select(Mailbox.id).where(Mailbox.address == spec.mailbox.strip().lower()))
        if found is None:
            raise RouteError(f"no mailbox {spec.mailbox!r}; `wicket mailbox list` shows them")
        return found
    if spec.match in (RouteMatch.EXACT, RouteMatch.PLUS):
        return session.scalar(select(Mailbox.id).where(Mailbox.address == split_plus(pattern)[0]))
    return None


def check_agent_route(session: Session, spec: RouteSpec, mailbox_ids: list[int]) -> None:
    """What an agent (the API) may route: addresses of their own mailbox's domain into that mailbox.

    Domain and catch-all routes, webhook-only routes and routes taking another mailbox's
    address would divert mail that other teams receive; the operator sets those up with
    `wicket routes add`.
    """
    if spec.match not in (RouteMatch.EXACT, RouteMatch.PLUS):
        raise RouteRefused("agents add exact and plus routes; domain and catch-all routes are the operator's")
    if not spec.ticket or not spec.mailbox:
        raise RouteRefused("name the mailbox the route makes tickets in (one of yours)")
    mailbox = session.scalar(select(Mailbox).where(Mailbox.address == spec.mailbox.strip().lower()))
    if mailbox is None or mailbox.id not in mailbox_ids:
        raise RouteRefused(f"{spec.mailbox!r} is not one of your mailboxes")
    base = split_plus(_pattern(spec.match, spec.pattern))[0]
    other = session.scalar(select(Mailbox.id).where(Mailbox.address == base))
    if base.rpartition("@")[2] != mailbox.domain or other not in (None, mailbox.id):
        raise RouteRefused(f"{spec.pattern!r} is not an address of your mailbox's domain that no other mailbox has")


def remove_route(session: Session, public_id: str, mailbox_ids: list[int] | None = None) -> None:
    """Remove a route; with `mailbox_ids`, only one making tickets in one of those mailboxes."""
    route = session.scalar(select(MailRoute).where(MailRoute.public_id == public_id.strip()))
    if route is None or (mailbox_ids is not None and route.mailbox_id not in mailbox_ids):
        raise RouteNotFound(f"no route {public_id!r}; `wicket routes list` shows them")
    session.delete(route)


def list_routes(connection: Connection, mailbox_ids: list[int] | None = None) -> list[RouteView]:
    """Every route in the order they run; with `mailbox_ids`, those making tickets in those mailboxes."""
    r = MailRoute
    query = (
        select(r.public_id, r.priority, r.match, r.pattern, r.header_name, r.header_contains, Mailbox.address,
               WebhookEndpoint.public_id, r.payload_format, r.stop)
        .outerjoin(Mailbox, Mailbox.id == r.mailbox_id)
        .outerjoin(WebhookEndpoint, WebhookEndpoint.id == r.endpoint_id)
        .order_by(r.priority, r.id)
    )  # fmt: skip
    if mailbox_ids is not None:
        query = query.where(r.mailbox_id.in_(mailbox_ids))
    return [
        RouteView(public_id, priority, match, pattern, f"{name} contains {text!r}" if name else None,
                  mailbox, webhook, payload_format, stop)
        for public_id, priority, match, pattern, name, text, mailbox, webhook, payload_format, stop
        in connection.execute(query)
    ]  # fmt: skip
