"""`wicket routes …`: the route table, which sends mail to tickets, webhooks or both.

The commands call gateway/inbound/route_admin.py, the same functions the agent API uses;
a running node picks up a change within a second (gateway/inbound/routing.py).
"""

from __future__ import annotations

import click

from gateway.cli.support import in_unit, json_list, print_list, remove_by_id, with_database
from gateway.inbound.route_admin import RouteError, RouteSpec, RouteView, add_route, list_routes, remove_route
from gateway.models import PayloadFormat, RouteMatch

MATCHES = [m.value for m in RouteMatch]


@click.group()
def routes() -> None:
    """Routes: which recipients make tickets, post to webhooks, or both."""


@routes.command("add")
@click.argument("match", type=click.Choice(MATCHES))
@click.argument("pattern", default="")
@click.option("--mailbox", help="Make tickets in this mailbox (default: the pattern's own mailbox, if it is one).")
@click.option("--no-ticket", is_flag=True, help="Make no ticket: only post to the webhook.")
@click.option("--webhook", help="Post the message to this endpoint (an id from `wicket webhooks list`).")
@click.option("--raw", is_flag=True, help="Post the raw message (message/rfc822) instead of JSON.")
@click.option("--header", nargs=2, metavar="NAME TEXT", help="Only mail whose header NAME contains TEXT.")
@click.option("--priority", default=100, show_default=True, help="Lower runs first.")
@click.option("--stop", is_flag=True, help="Later routes do not apply to a recipient this one matched.")
def routes_add(match: str, pattern: str, mailbox: str | None, no_ticket: bool, webhook: str | None, raw: bool,
               header: tuple[str, str] | None, priority: int, stop: bool) -> None:  # fmt: skip
    """Add a route: MATCH is exact, plus, domain or catch_all; PATTERN an address or domain."""
    spec = RouteSpec(
        RouteMatch(match), pattern, header[0] if header else None, header[1] if header else None, mailbox,
        not no_ticket, webhook, PayloadFormat.RAW if raw else PayloadFormat.JSON, priority, stop,
    )  # fmt: skip
    route_id = in_unit(lambda session, _settings: add_route(session, spec).public_id, errors=(RouteError,))
    click.echo(f"route {route_id} is ready")


@routes.command("list")
@json_list
def routes_list(as_json: bool) -> None:
    """Every route, in the order they run."""
    print_list(with_database(lambda db, _settings: db.read(list_routes)), as_json=as_json, line=_route_line,
               empty="no routes: mail to each mailbox address makes tickets; add one with `wicket routes add`")


def _route_line(r: RouteView) -> str:
    actions = [f"ticket in {r.mailbox}"] if r.mailbox else []
    actions += [f"webhook {r.webhook} ({r.payload_format})"] if r.webhook else []
    condition = f" if {r.header}" if r.header else ""
    stop = "  (stop)" if r.stop else ""
    return f"{r.id}  {r.priority:>4}  {r.match} {r.pattern or '*'}{condition} -> {', '.join(actions)}{stop}"


@routes.command("remove")
@click.argument("route_id")
def routes_remove(route_id: str) -> None:
    """Remove a route (its recipients are refused unless a mailbox or another route takes them)."""
    remove_by_id("route", route_id, remove_route, errors=(RouteError,))
