"""The `wicket` command line (also `python -m gateway`).

Each command builds Settings, opens the database and calls the same service functions the
listener and portal use; nothing here holds business logic. This module is also the
composition root of `wicket serve`, the one place that starts the portal next to the
gateway (imported lazily, so the gateway package itself never depends on the portal).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from gateway.cli import support
from gateway.cli.content import mailbox_brand
from gateway.cli.supervisor import ROLES
from gateway.cli.support import WicketGroup

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy.orm import Session

    from gateway.cli.replay import Replayed
    from gateway.settings import Settings
    from gateway.storage.database import Database

# Every import of the domain, the database layer, Alembic or rich happens inside the command
# that needs it: `wicket --help` loads click and nothing else, and each command only what it
# runs (tests/cli/test_cli_imports.py holds it; bench/cli_bench.py times it). The command
# groups kept in modules of their own are loaded when one of them runs.
ELSEWHERE = {
    "accounts": ("gateway.cli.content", "accounts", "Company accounts: who belongs together, who shares tickets."),
    "agents": ("gateway.cli.team", "agents", "Support agents: who is notified and who may answer by email."),
    "articles": ("gateway.cli.content", "articles", "Help-center articles."),
    "dkim": ("gateway.cli.team", "dkim_group", "DKIM signing keys for outbound mail."),
    "reply": ("gateway.cli.team", "reply", "Answer ticket REF as an agent."),
    "routes": ("gateway.cli.routes", "routes", "Routes: which recipients make tickets, post to webhooks, or both."),
    "webhooks": ("gateway.cli.webhooks", "webhooks", "Webhook endpoints: signed POSTs of mail and ticket events."),
}
P = ParamSpec("P")
R = TypeVar("R")
DEMO_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "emails"
DEMO_CONTACT = "alice@customer.test"
DEMO_MAIL = ("new-request.eml", "reply-gmail.eml", "reply-outlook.eml", "same-subject-other-sender.eml",
             "html-only.eml", "inline-image.eml", "attachments-encoded-names.eml")
_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console()
    return _console


class Commands(WicketGroup):
    """`wicket`: its own commands, and the groups of `ELSEWHERE`, imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *ELSEWHERE])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in ELSEWHERE:
            module, attribute, _ = ELSEWHERE[name]
            return getattr(importlib.import_module(module), attribute)  # type: ignore[no-any-return]
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = [(name, ELSEWHERE[name][2] if name in ELSEWHERE else self.commands[name].get_short_help_str(limit))
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def run_async(func: Callable[P, Awaitable[R]]) -> Callable[P, R]:
    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        import asyncio

        return asyncio.run(func(*args, **kwargs))  # type: ignore[arg-type]

    return wrapper


_settings = support.settings
_node_settings = support.node_settings


async def _with_db(action: Callable[[Database], Awaitable[R]], settings: Settings | None = None) -> R:
    from gateway.storage.database import open_database

    db = open_database(settings or _settings())
    try:
        return await action(db)
    finally:
        await db.dispose()


@click.group(cls=Commands)
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
@click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    default=None,
    help="Log lines as JSON objects or text (default: WICKET_LOG_FORMAT, json).",
)
@click.pass_context
def main(context: click.Context, verbose: bool, log_format: str | None) -> None:
    """Wicket: email-to-ticket gateway with a passwordless customer portal."""
    # Kept for the processes `wicket serve` starts, which set up their own logging.
    from gateway.logs import configure_logging

    context.obj = (log_format or _settings().log_format, logging.DEBUG if verbose else logging.INFO)
    configure_logging(*context.obj)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@run_async
async def db_upgrade() -> None:
    """Apply all migrations."""
    from gateway.cli import migrate  # Alembic: only the `db` commands and the demo load it

    await _with_db(migrate.upgrade)
    console().print("database is up to date")


@main.group()
def mailbox() -> None:
    """Shared inboxes Wicket receives mail for."""


@mailbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON list instead of a table.")
@run_async
async def mailbox_list(as_json: bool) -> None:
    """The mailboxes Wicket receives mail for."""
    import json

    from gateway.directory.mailboxes import list_mailboxes
    from gateway.storage.database import orm

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
    from gateway.directory.mailboxes import MailboxError, add_mailbox

    async def action(database: Database) -> str:
        box = await database.write(lambda session: add_mailbox(session, address, name))
        return box.address

    try:
        console().print(f"mailbox {await _with_db(action)} is ready")
    except MailboxError as error:
        raise click.ClickException(str(error)) from error


@mailbox.command("digest")
@click.argument("address")
@click.option("--hour", type=click.IntRange(0, 23), required=True, help="Hour of the day (UTC) the digest goes out.")
def mailbox_digest(address: str, hour: int) -> None:
    """When the agents who want it get the mailbox's daily digest."""
    from gateway.cli.support import in_unit
    from gateway.directory.preferences import PreferenceError, set_digest_hour

    box = in_unit(lambda session, _settings: set_digest_hour(session, address, hour).address,
                  errors=(PreferenceError,))
    click.echo(f"{box}: daily digest at {hour:02d}:00 UTC for agents who want one "
               f"(`wicket agents set-notify EMAIL --digest`)")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--to", "recipients", multiple=True, help="Envelope recipient (default: To/Cc headers).")
@click.option("--failed", is_flag=True, help="Retry dead-lettered messages.")
@click.option("--send-mail", is_flag=True, help="Send acknowledgements and notifications (default: mail nobody; webhooks still fire).")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per message: outcome, ticket, rule.")
@run_async
async def replay(paths: tuple[Path, ...], recipients: tuple[str, ...], failed: bool, send_mail: bool, as_json: bool) -> None:
    """Feed .eml files, directories and mbox files through the production path."""
    import json

    from gateway.cli.replay import summary
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
    from rich.console import Console
    from rich.progress import Progress

    from gateway.cli.replay import Replayed, collect_messages, outcomes, requeue_failed, store_message
    from gateway.cli.runtime import Gateway

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
    from gateway.cli.links import OperatorLinkError, issue_operator_link

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
    from rich.table import Table
    from sqlalchemy import select

    from gateway.metrics import queue_depths
    from gateway.models import InboundEmail, InboundStatus
    from gateway.storage.database import orm

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
    console().print(table)
    for row in failed:
        retry = "dead-lettered" if row.next_attempt_at is None else f"retry at {row.next_attempt_at:%H:%M:%S}"
        console().print(
            f"#{row.id} from {row.mail_from or '<>'} ({row.attempts} attempts, {retry}): {row.last_error}",
            markup=False,
            highlight=False,
        )


@main.group()
def tickets() -> None:
    """Inspect tickets."""


_AGE = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# TicketStatus's values, written out so that `--help` need not import the models
# (tests/cli/test_cli_imports.py checks they agree).
TICKET_STATUSES = ("open", "pending", "resolved", "closed")


def _age(value: str | None) -> timedelta | None:
    """`3d`, `12h`, `90m`, `2w` as a timedelta."""
    if value is None:
        return None
    number, unit = value.strip()[:-1], value.strip()[-1:].lower()
    if unit not in _AGE or not number.isdigit():
        raise click.BadParameter(f"{value!r}: write an age like 90m, 12h, 3d or 2w", param_hint="--older-than")
    return timedelta(**{_AGE[unit]: int(number)})


@tickets.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True)
@click.option("--status", "statuses", multiple=True, type=click.Choice(TICKET_STATUSES),
              help="Only tickets with this status (repeatable).")
@click.option("--owner", default=None, help="Only tickets this agent owns (address or name).")
@click.option("--unassigned", is_flag=True, help="Only tickets nobody owns.")
@click.option("--older-than", default=None, help="Only tickets opened longer ago than this (90m, 12h, 3d, 2w).")
@run_async
async def tickets_list(
    as_json: bool, limit: int, statuses: tuple[str, ...], owner: str | None, unassigned: bool, older_than: str | None
) -> None:
    """Tickets, the most recently active first."""
    import json

    from rich.markup import escape
    from rich.table import Table

    from gateway.tickets.queries import TicketFilter, list_tickets

    if owner and unassigned:
        raise click.UsageError("--owner and --unassigned exclude each other; give one")
    wanted = TicketFilter(statuses, owner, unassigned, _age(older_than), limit)
    rows = await _with_db(lambda database: list_tickets(database, wanted))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("ref", "mailbox", "status", "owner", "priority", "tags", "requester", "subject", "messages",
                  "last activity")
    for row in rows:  # cells are rich markup: what mail put there is escaped
        table.add_row(
            str(row["ref"]), row["mailbox"], row["status"], row["owner"] or "-", row["priority"],
            " ".join(row["tags"]), escape(_requester_text(row)), escape(row["subject"]), str(row["messages"]),
            row["last_activity_at"],
        )
    console().print(table)


@tickets.command("show")
@click.argument("ref", type=int)
@click.option("--mailbox", "mailbox_address", default=None, help="Mailbox address (default: the first).")
@click.option("--json", "as_json", is_flag=True)
@run_async
async def tickets_show(ref: int, mailbox_address: str | None, as_json: bool) -> None:
    """One ticket: owner, priority, tags and every message, internal notes marked."""
    import json

    from rich.markup import escape

    from gateway.mail.verdicts import SenderVerdicts
    from gateway.tickets.queries import TicketNotFound, show_ticket

    try:
        ticket = await _with_db(lambda database: show_ticket(database, ref, mailbox_address))
    except TicketNotFound as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(json.dumps(ticket, indent=2))
        return
    flag = f", flagged {ticket['flag']}" if ticket["flag"] else ""
    console().print(f"[bold]#{ticket['ref']} {escape(ticket['subject'])}[/bold]  ({ticket['status']}{flag}, {ticket['mailbox']})")
    tags = " ".join(ticket["tags"]) or "-"
    console().print(f"owner: {ticket['owner'] or 'unassigned'} · priority: {ticket['priority']} · tags: {tags}",
                    markup=False, highlight=False)
    console().print(f"requester: {_requester_text(ticket)}", markup=False, highlight=False)
    if ticket["requester"] is None:
        console().print(f"nobody is mailed until a requester is named: wicket tickets requester {ticket['ref']} ADDRESS",
                        markup=False, highlight=False)
    if ticket["previous_ticket"]:
        console().print(f"continues #{ticket['previous_ticket']}", markup=False, highlight=False)
    for message in ticket["messages"]:
        kind = "INTERNAL NOTE · " if message["internal"] else ""
        author = message["from"] or ("sender unclear" if message["author_type"] == "customer" else "Wicket")
        console().rule(escape(f"{kind}{author} · {message['created_at']} · "
                              f"{message['classification']} · {message['thread_rule']}"))
        verdicts = SenderVerdicts.from_json(message["sender_verdicts"])
        if verdicts is not None:
            warning = "  (DMARC failed: the sender may not be who From says)" if verdicts.dmarc_failed else ""
            console().print(f"sender checks: {verdicts.summary()}{warning}", markup=False, highlight=False)
        console().print(message["reply_text"] or message["body_text"], markup=False, highlight=False)
        for file in message["attachments"]:
            console().print(
                f"  attached: {file['filename']} ({file['content_type']}, {file['size']} bytes, sha256 {file['sha256']})",
                markup=False, highlight=False,
            )
    for rating in ticket["ratings"]:
        comment = f": {rating['comment']}" if rating["comment"] else ""
        console().print(f"Rated {rating['rating']} by {rating['by']} at {rating['rated_at']}{comment}", markup=False)


def _requester_text(ticket: dict[str, Any]) -> str:
    """The requester, or what From said when the mail named no usable sender (escaped already)."""
    if ticket["requester"] is not None:
        return str(ticket["requester"])
    return f"none, sender unclear ({'From: ' + ticket['unclear_from'] if ticket['unclear_from'] else 'no From header'})"


@tickets.command("requester")
@click.argument("ref", type=int)
@click.argument("address")
@click.option("--name", default="", help="The requester's name, if the contact is new.")
@click.option("--mailbox", "mailbox_address", default=None, help="Mailbox address (default: the first).")
def tickets_requester(ref: int, address: str, name: str, mailbox_address: str | None) -> None:
    """Name ADDRESS as the requester of ticket REF, whose mail named no usable sender."""
    from gateway.cli.support import in_unit
    from gateway.outbound.notify import ticket_events
    from gateway.tickets.queries import TicketNotFound, ticket_by_ref
    from gateway.tickets.requester import RequesterError, set_requester

    def name_requester(session: Session, settings: Settings) -> str:
        _, ticket = ticket_by_ref(session, ref, mailbox_address)
        set_requester(session, ticket_events(settings), ticket, address, agent=None, name=name)
        return address.strip().lower()

    email = in_unit(name_requester, errors=(TicketNotFound, RequesterError))
    click.echo(f"#{ref}: {email} is the requester; replies now reach them")


def _start_portal(*args: Any, **kwargs: Any) -> Awaitable[Any]:
    from portal.app import start_portal  # the composition root is the only gateway code that knows the portal

    return start_portal(*args, **kwargs)


@main.command()
@click.option("--role", "roles", multiple=True, type=click.Choice(ROLES),
              help="Run only these roles (repeatable), in one process unless --workers says more.")
@click.option("--workers", default=None, type=click.IntRange(1, 64),
              help="N processes, each running the chosen roles, sharing the SMTP and HTTP ports "
                   "(SO_REUSEPORT). Default without --role: SMTP and portal in a process per core, "
                   "processing and outbox in processes of their own.")
@click.pass_obj
def serve(logging_setup: tuple[str, int], roles: tuple[str, ...], workers: int | None) -> None:
    """Run the SMTP listener, processor, outbox worker and portal."""
    import asyncio
    import os

    from gateway.cli.serve import serve as serve_roles
    from gateway.cli.serve import serve_node
    from gateway.cli.supervisor import node_layout, same_roles

    settings = _node_settings()
    if not roles and workers is None:
        slots = node_layout(ROLES, os.cpu_count() or 1, sqlite=settings.database_url.startswith("sqlite"))
    elif (workers or 1) > 1:
        slots = same_roles(roles or ROLES, workers or 1)
    else:
        asyncio.run(serve_roles(settings, roles or ROLES, start_portal=_start_portal))
        return
    log_format, log_level = logging_setup
    raise SystemExit(serve_node(settings, slots, start_portal=_start_portal, log_format=log_format,
                                log_level=log_level))


@main.command()
@click.pass_obj
def demo(logging_setup: tuple[str, int]) -> None:
    """`make run`: migrate, seed a demo mailbox and serve with the dev mail viewer."""
    import asyncio
    import os

    from gateway.cli import migrate
    from gateway.cli.links import issue_operator_link
    from gateway.cli.serve import serve_node
    from gateway.cli.supervisor import node_layout

    settings = _node_settings(dev=True)
    asyncio.run(_with_db(migrate.upgrade, settings))
    asyncio.run(_seed_demo(settings))
    link = asyncio.run(_with_db(lambda database: issue_operator_link(database, settings, DEMO_CONTACT, "1001"), settings))
    welcome = (
        f"\n[bold]Wicket demo is running[/bold]\n"
        f"  portal:          {settings.public_url}\n"
        f"  sent mail:       {settings.public_url}/_dev/mail\n"
        f"  send a mail:     swaks --server {settings.smtp_host}:{settings.smtp_port} --to support@example.test\n"
        f"  another link:    .venv/bin/wicket link issue {DEMO_CONTACT} --ticket 1001\n"
        f"  sign in as Alice (works once, expires in {settings.reply_link_ttl_minutes} minutes):\n    {link}\n"
    )
    slots = node_layout(ROLES, os.cpu_count() or 1, sqlite=settings.database_url.startswith("sqlite"))
    log_format, log_level = logging_setup
    raise SystemExit(serve_node(settings, slots, start_portal=_start_portal, log_format=log_format,
                                log_level=log_level, ready=lambda: console().print(welcome, highlight=False,
                                                                                 soft_wrap=True)))


async def _seed_demo(settings: Settings) -> None:
    from sqlalchemy import select

    from gateway.cli.demo import seed_demo_content
    from gateway.directory.mailboxes import add_mailbox
    from gateway.models import Ticket

    async def action(database: Database) -> bool:
        def seed(session: Session) -> bool:
            add_mailbox(session, "support@example.test", "Example Support")
            return session.scalar(select(Ticket.id).limit(1)) is None

        return await database.write(seed)

    if await _with_db(action, settings):
        await _replay(settings, [DEMO_FIXTURES / name for name in DEMO_MAIL], (), False, send_mail=True)
    await _with_db(lambda database: seed_demo_content(database, settings), settings)
    await _with_db(lambda database: _answer_and_send(database, settings), settings)


async def _answer_and_send(db: Database, settings: Settings) -> None:
    """Tom's answers, and every mail they queue sent now, so no delivery logs bury the banner."""
    from gateway.cli.demo import seed_demo_agent_answers
    from gateway.cli.runtime import Gateway

    gateway = Gateway(settings, db)
    await seed_demo_agent_answers(db, gateway.events)
    await gateway.outbox.drain()


mailbox.add_command(mailbox_brand)
