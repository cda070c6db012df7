"""The `wicket` command line (also `python -m gateway`).

Each command builds Settings, opens the database and calls the same service functions the
listener and portal use; nothing here holds business logic. This module is also the
composition root of `wicket serve`, the one place that starts the portal next to the
gateway (imported lazily, so the gateway package itself never depends on the portal).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cli import migrate, support
from gateway.cli.content import accounts, articles, mailbox_brand
from gateway.cli.demo import seed_demo_content
from gateway.cli.links import OperatorLinkError, issue_operator_link
from gateway.cli.replay import Replayed, collect_messages, outcomes, requeue_failed, store_message, summary
from gateway.cli.runtime import Gateway
from gateway.cli.serve import ROLES, serve_processes
from gateway.cli.serve import serve as serve_roles
from gateway.cli.support import WicketGroup
from gateway.cli.team import agents, dkim_group, reply
from gateway.directory.mailboxes import MailboxError, add_mailbox, list_mailboxes
from gateway.logs import configure_logging
from gateway.metrics import queue_depths
from gateway.models import InboundEmail, InboundStatus, Ticket
from gateway.settings import Settings
from gateway.storage.database import Database, open_database, orm
from gateway.tickets.queries import TicketNotFound, list_tickets, show_ticket

console = Console()
P = ParamSpec("P")
R = TypeVar("R")
DEMO_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "emails"
DEMO_CONTACT = "alice@customer.test"
DEMO_MAIL = ("new-request.eml", "reply-gmail.eml", "reply-outlook.eml", "same-subject-other-sender.eml",
             "html-only.eml", "inline-image.eml", "attachments-encoded-names.eml")


def run_async(func: Callable[P, Awaitable[R]]) -> Callable[P, R]:
    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return asyncio.run(func(*args, **kwargs))  # type: ignore[arg-type]

    return wrapper


_settings = support.settings
_node_settings = support.node_settings


async def _with_db(action: Callable[[Database], Awaitable[R]], settings: Settings | None = None) -> R:
    db = open_database(settings or _settings())
    try:
        return await action(db)
    finally:
        await db.dispose()


@click.group(cls=WicketGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
@click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    default=None,
    help="Log lines as JSON objects or text (default: WICKET_LOG_FORMAT, json).",
)
def main(verbose: bool, log_format: str | None) -> None:
    """Wicket: email-to-ticket gateway with a passwordless customer portal."""
    configure_logging(log_format or _settings().log_format, logging.DEBUG if verbose else logging.INFO)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@run_async
async def db_upgrade() -> None:
    """Apply all migrations."""
    await _with_db(migrate.upgrade)
    console.print("database is up to date")


@main.group()
def mailbox() -> None:
    """Shared inboxes Wicket receives mail for."""


@mailbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON list instead of a table.")
@run_async
async def mailbox_list(as_json: bool) -> None:
    """The mailboxes Wicket receives mail for."""

    async def action(database: Database) -> list[dict[str, str]]:
        boxes = await database.read(orm(list_mailboxes))
        return [{"address": box.address, "name": box.name} for box in boxes]

    boxes = await _with_db(action)
    if as_json:
        click.echo(json.dumps(boxes, indent=2))
    elif not boxes:
        click.echo("no mailboxes yet; add one with `wicket mailbox add support@example.com --name NAME`")
    for box in [] if as_json else boxes:
        click.echo(f"{box['address']}  {box['name']}")


@mailbox.command("add")
@click.argument("address")
@click.option("--name", default="", help="Display name, e.g. 'Example Support'.")
@run_async
async def mailbox_add(address: str, name: str) -> None:
    async def action(database: Database) -> str:
        box = await database.write(lambda session: add_mailbox(session, address, name))
        return box.address

    try:
        console.print(f"mailbox {await _with_db(action)} is ready")
    except MailboxError as error:
        raise click.ClickException(str(error)) from error


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--to", "recipients", multiple=True, help="Envelope recipient (default: To/Cc headers).")
@click.option("--failed", is_flag=True, help="Retry dead-lettered messages.")
@click.option("--send-mail", is_flag=True, help="Send acknowledgements and notifications (default: mail nobody).")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per message: outcome, ticket, rule.")
@run_async
async def replay(paths: tuple[Path, ...], recipients: tuple[str, ...], failed: bool, send_mail: bool, as_json: bool) -> None:
    """Feed .eml files, directories and mbox files through the production path."""
    if not paths and not failed:
        raise click.UsageError("give PATH... or --failed")
    replayed = await _replay(_node_settings(), list(paths), recipients, failed, send_mail)
    if as_json:
        for item in replayed:
            click.echo(json.dumps(item.as_json()))
    else:
        for line in summary(replayed, send_mail=send_mail):
            click.echo(line)
    if any(item.outcome in ("refused", "failed") for item in replayed):
        raise SystemExit(1)


async def _replay(
    settings: Settings, paths: list[Path], recipients: tuple[str, ...], failed: bool, send_mail: bool
) -> list[Replayed]:
    gateway = Gateway(settings)
    await gateway.start()
    try:
        stored = await requeue_failed(gateway) if failed else []
        refused: list[Replayed] = []
        messages = list(collect_messages(paths))
        with Progress(console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("storing", total=len(messages))
            for name, raw in messages:
                kept = await store_message(gateway, raw, recipients or None, send_mail=send_mail)
                if isinstance(kept, str):
                    refused.append(Replayed(name, "refused", error=kept))
                else:
                    stored.append((name, kept))
                progress.advance(task)
            progress.add_task("processing", total=None)
            await gateway.processor.drain()
        return await outcomes(gateway, stored) + refused
    finally:
        await gateway.stop()
        await gateway.db.dispose()


@main.group()
def link() -> None:
    """Portal sign-in links."""


@link.command("issue")
@click.argument("email")
@click.option("--ticket", "ticket_ref", help="Ticket number, e.g. 1001: the link opens that ticket.")
@run_async
async def link_issue(email: str, ticket_ref: str | None) -> None:
    """Print a single-use portal link for a contact (shown once, never logged)."""
    settings = _node_settings()
    try:
        url = await _with_db(lambda database: issue_operator_link(database, settings, email, ticket_ref), settings)
    except OperatorLinkError as error:
        raise click.ClickException(str(error)) from error
    click.echo(url)


@main.command()
@click.option("--errors", default=5, show_default=True, help="How many recent failures to show.")
@run_async
async def status(errors: int) -> None:
    """Backlog, failures and the last errors."""

    async def action(database: Database) -> tuple[dict[str, int], list[InboundEmail]]:
        depths = await queue_depths(database)
        recent = select(InboundEmail).where(InboundEmail.status == InboundStatus.FAILED)
        recent = recent.order_by(InboundEmail.id.desc()).limit(errors)
        failed = await database.read(orm(lambda session: list(session.scalars(recent))))
        return depths, failed

    depths, failed = await _with_db(action)
    table = Table("queue", "count")
    for name, count in depths.items():
        table.add_row(name.replace("_", " "), str(count))
    console.print(table)
    for row in failed:
        retry = "dead-lettered" if row.next_attempt_at is None else f"retry at {row.next_attempt_at:%H:%M:%S}"
        console.print(
            f"#{row.id} from {row.mail_from or '<>'} ({row.attempts} attempts, {retry}): {row.last_error}",
            markup=False,
            highlight=False,
        )


@main.group()
def tickets() -> None:
    """Inspect tickets."""


@tickets.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True)
@run_async
async def tickets_list(as_json: bool, limit: int) -> None:
    rows = await _with_db(lambda database: list_tickets(database, limit=limit))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("ref", "mailbox", "status", "flag", "requester", "subject", "messages", "last activity")
    for row in rows:
        table.add_row(
            str(row["ref"]), row["mailbox"], row["status"], row["flag"] or "", row["requester"],
            row["subject"], str(row["messages"]), row["last_activity_at"],
        )
    console.print(table)


@tickets.command("show")
@click.argument("ref", type=int)
@click.option("--mailbox", "mailbox_address", default=None, help="Mailbox address (default: the first).")
@click.option("--json", "as_json", is_flag=True)
@run_async
async def tickets_show(ref: int, mailbox_address: str | None, as_json: bool) -> None:
    try:
        ticket = await _with_db(lambda database: show_ticket(database, ref, mailbox_address))
    except TicketNotFound as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(json.dumps(ticket, indent=2))
        return
    console.print(f"[bold]#{ticket['ref']} {ticket['subject']}[/bold]  ({ticket['status']}, {ticket['mailbox']})")
    for message in ticket["messages"]:
        console.rule(f"{message['from']} · {message['created_at']} · {message['classification']} · {message['thread_rule']}")
        console.print(message["reply_text"] or message["body_text"], markup=False, highlight=False)
        for file in message["attachments"]:
            console.print(
                f"  attached: {file['filename']} ({file['content_type']}, {file['size']} bytes, sha256 {file['sha256']})",
                markup=False, highlight=False,
            )


def _start_portal(*args: Any, **kwargs: Any) -> Awaitable[Any]:
    from portal.app import start_portal  # the composition root is the only gateway code that knows the portal

    return start_portal(*args, **kwargs)


@main.command()
@click.option("--role", "roles", multiple=True, type=click.Choice(ROLES),
              help="Run only these roles (repeatable); default: all.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes sharing the SMTP and HTTP ports (SO_REUSEPORT).")
def serve(roles: tuple[str, ...], workers: int) -> None:
    """Run the SMTP listener, processor, outbox worker and portal."""
    settings = _node_settings()
    chosen = roles or ROLES
    if workers > 1:
        raise SystemExit(serve_processes(settings, chosen, workers, _start_portal))
    asyncio.run(serve_roles(settings, chosen, start_portal=_start_portal))


@main.command()
def demo() -> None:
    """`make run`: migrate, seed a demo mailbox and serve with the dev mail viewer."""
    settings = _node_settings(dev=True)
    asyncio.run(_with_db(migrate.upgrade, settings))
    asyncio.run(_seed_demo(settings))
    link = asyncio.run(_with_db(lambda database: issue_operator_link(database, settings, DEMO_CONTACT, "1001"), settings))
    welcome = (
        f"\n[bold]Wicket demo is running[/bold]\n"
        f"  portal:          {settings.public_url}\n"
        f"  sign in as Alice (single use, {settings.reply_link_ttl_minutes} minutes):\n    {link}\n"
        f"  sent mail:       {settings.public_url}/_dev/mail\n"
        f"  send a mail:     swaks --server {settings.smtp_host}:{settings.smtp_port} --to support@example.test\n"
    )
    asyncio.run(serve_roles(settings, ROLES, start_portal=_start_portal,
                            ready=lambda: console.print(welcome, highlight=False, soft_wrap=True)))


async def _seed_demo(settings: Settings) -> None:
    async def action(database: Database) -> bool:
        def seed(session: Session) -> bool:
            add_mailbox(session, "support@example.test", "Example Support")
            return session.scalar(select(Ticket.id).limit(1)) is None

        return await database.write(seed)

    if await _with_db(action, settings):
        await _replay(settings, [DEMO_FIXTURES / name for name in DEMO_MAIL], (), False)
    await _with_db(lambda database: seed_demo_content(database, settings), settings)


main.add_command(agents)
main.add_command(reply)
main.add_command(dkim_group)
main.add_command(articles)
main.add_command(accounts)
mailbox.add_command(mailbox_brand)
