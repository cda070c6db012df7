"""`wicket tickets …`: the ticket list with its filters, and one ticket with every message.

Both commands print what gateway/tickets/queries.py returns, the same rows the agent API
and `--json` give, as a table or as text. The domain and rich are imported inside each
command: `wicket tickets list` loads the tables and its query, and no listener, parser or
portal (tests/cli/test_cli_imports.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from gateway.cli.support import console, on_database, run_async

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gateway.settings import Settings

_AGE = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# TicketStatus's values, written out so that `--help` need not import the models
# (tests/cli/test_cli_imports.py checks they agree).
TICKET_STATUSES = ("open", "pending", "resolved", "closed")


@click.group()
def tickets() -> None:
    """Inspect tickets."""


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
    rows = await on_database(lambda database: list_tickets(database, wanted))
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
        ticket = await on_database(lambda database: show_ticket(database, ref, mailbox_address))
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
