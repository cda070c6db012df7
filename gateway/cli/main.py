"""The `wicket` command line (also `python -m gateway`): the root group and where each command lives.

The root group sets up logging and lists the commands; each command group is a module of
its own (`COMMANDS`), imported only when one of its commands runs. Commands build
Settings, open the database and call the same service functions the listener and portal
use; nothing here holds business logic.
"""

from __future__ import annotations

import importlib
import logging
import textwrap

import click

from gateway.cli import support
from gateway.cli.support import WicketGroup

# Every import of the domain, the database layer, Alembic or rich happens inside the command
# module that needs it: `wicket --help` loads click and nothing else, and each command only
# what it runs (tests/cli/test_cli_imports.py holds it; bench/cli_bench.py times it). So the
# listing's one line per command is written here, the command's own first sentence
# (tests/cli/test_cli_imports.py checks they agree).
COMMANDS = {
    "accounts": ("gateway.cli.content", "accounts", "Company accounts: who belongs together, who shares tickets."),
    "agents": ("gateway.cli.team", "agents", "Support agents: who is notified and who may answer by email."),
    "articles": ("gateway.cli.content", "articles", "Help-center articles."),
    "db": ("gateway.cli.migrate", "db", "Database schema."),
    "demo": ("gateway.cli.node", "demo",
             "`make run`: migrate, seed a demo mailbox and serve with the dev mail viewer."),
    "dkim": ("gateway.cli.team", "dkim_group", "DKIM signing keys for outbound mail."),
    "link": ("gateway.cli.links", "link", "Portal sign-in links."),
    "mailbox": ("gateway.cli.mailboxes", "mailbox", "Shared inboxes Wicket receives mail for."),
    "replay": ("gateway.cli.replay", "replay",
               "Feed .eml files, directories and mbox files through the production path."),
    "reply": ("gateway.cli.team", "reply", "Answer ticket REF as an agent."),
    "routes": ("gateway.cli.routes", "routes", "Routes: which recipients make tickets, post to webhooks, or both."),
    "serve": ("gateway.cli.node", "serve", "Run the SMTP listener, processor, outbox worker and portal."),
    "status": ("gateway.cli.status", "status", "Backlog, failures and the last errors."),
    "tickets": ("gateway.cli.tickets", "tickets", "Inspect tickets."),
    "webhooks": ("gateway.cli.webhooks", "webhooks", "Webhook endpoints: signed POSTs of mail and ticket events."),
}


class Commands(WicketGroup):
    """`wicket`: the groups of `COMMANDS`, each imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)  # type: ignore[no-any-return]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 4 - max(len(name) for name in COMMANDS)  # what write_dl leaves for one line
        rows = [(name, textwrap.shorten(COMMANDS[name][2], limit, placeholder="...")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


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

    context.obj = (log_format or support.settings().log_format, logging.DEBUG if verbose else logging.INFO)
    configure_logging(*context.obj)
