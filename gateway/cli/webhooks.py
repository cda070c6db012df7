"""`wicket webhooks …`: endpoints, their secrets, test events, dead letters and redelivery.

The commands call gateway/outbound/webhooks/endpoints.py. `test` writes a `webhook.test`
event and delivers what is due at once, through the same worker `wicket serve` runs, so
it shows the endpoint's real answer.
"""

from __future__ import annotations

import click
from sqlalchemy import Connection, select

from gateway.cli.support import in_unit, json_list, print_list, remove_by_id, with_database
from gateway.models import WebhookEndpoint, WebhookEvent
from gateway.outbound.webhooks.endpoints import (
    TICKET_EVENTS,
    EndpointError,
    EndpointView,
    add_endpoint,
    current_secret,
    find_endpoint,
    list_endpoints,
    redeliver,
    remove_endpoint,
    rotate_secret,
)
from gateway.outbound.webhooks.recorder import record_test_event
from gateway.outbound.webhooks.worker import WebhookWorker
from gateway.settings import Settings
from gateway.storage.database import Database

ERRORS = (EndpointError,)


@click.group()
def webhooks() -> None:
    """Webhook endpoints: signed POSTs of mail and ticket events."""


@webhooks.command("add")
@click.argument("url")
@click.option("--event", "events", multiple=True, type=click.Choice(TICKET_EVENTS),
              help="Ticket and delivery events to send (repeatable; default: all).")
@click.option("--description", default="")
def webhooks_add(url: str, events: tuple[str, ...], description: str) -> None:
    """Add an endpoint; prints its id and its signing secret."""
    endpoint_id, secret = in_unit(lambda session, settings: _added(session, settings, url, list(events), description),
                                  errors=ERRORS, signing=True)  # fmt: skip
    click.echo(f"endpoint {endpoint_id} is ready\nsigning secret: {secret}")
    click.echo(f"post received mail to it with `wicket routes add exact support@example.com --webhook {endpoint_id}`")


def _added(session, settings: Settings, url: str, events: list[str], description: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    endpoint, secret = add_endpoint(session, settings, url, events=events, description=description)
    return endpoint.public_id, secret


@webhooks.command("list")
@json_list
def webhooks_list(as_json: bool) -> None:
    """Endpoints, the events they get, and how many events wait or are dead letters."""
    print_list(with_database(lambda db, _settings: db.read(list_endpoints)), as_json=as_json, line=_endpoint_line,
               empty="no webhook endpoints; add one with `wicket webhooks add URL`")


def _endpoint_line(e: EndpointView) -> str:
    state = "" if e.active else "  (off: it answered 410 Gone; `wicket webhooks redeliver` turns it on)"
    return f"{e.id}  {e.url}  {', '.join(e.events)}  waiting {e.pending}, dead {e.dead}{state}"


@webhooks.command("remove")
@click.argument("endpoint_id")
def webhooks_remove(endpoint_id: str) -> None:
    """Remove an endpoint and its events."""
    remove_by_id("endpoint", endpoint_id, remove_endpoint, errors=ERRORS)


@webhooks.command("rotate-secret")
@click.argument("endpoint_id")
def webhooks_rotate(endpoint_id: str) -> None:
    """A new signing secret; the old one keeps signing too for WICKET_WEBHOOK_SECRET_OVERLAP_HOURS."""
    secret = in_unit(lambda session, settings: rotate_secret(session, settings, endpoint_id), errors=ERRORS,
                     signing=True)  # fmt: skip
    click.echo(f"new signing secret: {secret}")


@webhooks.command("secret")
@click.argument("endpoint_id")
def webhooks_secret(endpoint_id: str) -> None:
    """Print an endpoint's current signing secret."""
    secret = in_unit(lambda session, settings: current_secret(settings, find_endpoint(session, endpoint_id)),
                     errors=ERRORS, signing=True)  # fmt: skip
    click.echo(secret)


@webhooks.command("test")
@click.argument("endpoint_id")
def webhooks_test(endpoint_id: str) -> None:
    """Send a signed `webhook.test` event now and show the endpoint's answer."""
    event_id = in_unit(lambda session, _s: record_test_event(session, find_endpoint(session, endpoint_id)), errors=ERRORS)
    status, answer = with_database(lambda db, settings: _deliver(db, settings, event_id), errors=ERRORS, signing=True)
    click.echo(f"event {event_id}: {status}" + (f" ({answer})" if answer else ""))
    if status != "delivered":
        raise click.ClickException("the endpoint did not accept the test event; it is retried like any other")


async def _deliver(db: Database, settings: Settings, event_id: str) -> tuple[str, str | None]:
    worker = WebhookWorker(db, settings)
    try:
        await worker.deliver_batch()
    finally:
        await worker.close()

    def read(connection: Connection) -> tuple[str, str | None]:
        row = connection.execute(select(WebhookEvent.status, WebhookEvent.last_error)
                                 .where(WebhookEvent.public_id == event_id)).one()  # fmt: skip
        return row.status, row.last_error

    return await db.read(read)


@webhooks.command("events")
@click.option("--status", type=click.Choice(["pending", "sending", "retrying", "delivered", "dead"]))
@click.option("--limit", default=20, show_default=True)
def webhooks_events(status: str | None, limit: int) -> None:
    """The latest events: webhook-id, endpoint, type, status, attempts and the last error."""
    def read(connection: Connection) -> list[tuple[object, ...]]:
        query = (select(WebhookEvent.public_id, WebhookEndpoint.public_id, WebhookEvent.event_type, WebhookEvent.status,
                        WebhookEvent.attempts, WebhookEvent.last_error)
                 .join(WebhookEndpoint, WebhookEndpoint.id == WebhookEvent.endpoint_id)
                 .order_by(WebhookEvent.id.desc()).limit(limit))  # fmt: skip
        if status:
            query = query.where(WebhookEvent.status == status)
        return [tuple(row) for row in connection.execute(query)]

    for event_id, endpoint_id, event_type, state, attempts, error in with_database(lambda db, _s: db.read(read)):
        click.echo(f"{event_id}  {endpoint_id}  {event_type}  {state} after {attempts}" + (f": {error}" if error else ""))


@webhooks.command("redeliver")
@click.argument("event_ids", nargs=-1)
@click.option("--dead", "dead_of", metavar="ENDPOINT_ID", help="Every dead letter of this endpoint.")
def webhooks_redeliver(event_ids: tuple[str, ...], dead_of: str | None) -> None:
    """Queue events again from their first attempt (by webhook-id, or all dead letters of an endpoint)."""
    if not event_ids and not dead_of:
        raise click.UsageError("give webhook ids (`wicket webhooks events --status dead`) or --dead ENDPOINT_ID")
    count = in_unit(lambda session, _s: redeliver(session, list(event_ids), dead_of=dead_of), errors=ERRORS)
    click.echo(f"{count} event(s) queued again")
