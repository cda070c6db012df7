"""`wicket articles …` and `wicket accounts …`: what the portal shows and who sees what.

Each command runs one service function from gateway.help.articles or
gateway.directory.accounts in a transaction; the portal reads what they write. A
mailbox's brand is set with the mailbox (`wicket mailbox brand`, gateway/cli/mailboxes.py).
"""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.support import in_unit

# The domain is imported inside each command, so that loading the command line stays cheap.


@click.group()
def articles() -> None:
    """Help-center articles."""


@articles.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def articles_import(directory: Path) -> None:
    """Load every Markdown article (with front matter) under DIRECTORY."""
    from gateway.help.articles import ArticleError, import_articles

    summary = in_unit(lambda session, _settings: import_articles(session, directory), errors=(ArticleError,))
    click.echo(f"created {len(summary.created)}, updated {len(summary.updated)}, unchanged {len(summary.unchanged)}")


@click.group()
def accounts() -> None:
    """Company accounts: who belongs together, who shares tickets."""


@accounts.command("add")
@click.argument("name")
@click.option("--domain", "domains", multiple=True, help="An email domain whose addresses belong to the account.")
@click.option("--share/--no-share", default=None, help="Members see each other's tickets.")
def accounts_add(name: str, domains: tuple[str, ...], share: bool | None) -> None:
    from gateway.directory.accounts import AccountError, add_account

    in_unit(lambda session, _settings: add_account(session, name, domains=domains, share_tickets=share),
                   errors=(AccountError,))
    click.echo(f"account {name} is ready")


@accounts.group("member")
def accounts_member() -> None:
    """Explicit account members."""


@accounts_member.command("add")
@click.argument("account")
@click.argument("email")
def accounts_member_add(account: str, email: str) -> None:
    from gateway.directory.accounts import AccountError, add_member

    in_unit(lambda session, _settings: add_member(session, account, email), errors=(AccountError,))
    click.echo(f"{email} is a member of {account}")


@accounts_member.command("remove")
@click.argument("account")
@click.argument("email")
def accounts_member_remove(account: str, email: str) -> None:
    from gateway.directory.accounts import AccountError, remove_member

    removed = in_unit(lambda session, _settings: remove_member(session, account, email), errors=(AccountError,))
    click.echo("removed" if removed else f"{email} was not an explicit member")


@accounts.command("list")
def accounts_list() -> None:
    from gateway.directory.accounts import list_accounts

    for summary in in_unit(lambda session, _settings: list_accounts(session)):
        sharing = "shares tickets" if summary.share_tickets else "private tickets"
        click.echo(f"{summary.name}  ({sharing})  domains: {', '.join(summary.domains) or '-'}  "
                   f"members: {', '.join(summary.members) or '-'}")
