"""`wicket articles …`, `wicket accounts …` and `wicket mailbox brand …`: portal content.

Each command runs one service function from gateway.i18n import LANGUAGES
from gateway.help.articles, gateway.directory.accounts or
gateway.directory.branding in a transaction; the portal reads what they write.
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
    """Company accounts: who belongs together and whether they share tickets."""


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


def _footer_link(value: str) -> tuple[str, str]:
    label, separator, url = value.partition("=")
    if not separator:
        raise click.BadParameter("write a footer link as LABEL=URL")
    return label, url


@click.command("brand")
@click.argument("address")
@click.option("--name")
@click.option("--logo", "logo_url")
@click.option("--primary", "primary_color")
@click.option("--accent", "accent_color")
@click.option("--domain", "custom_domain", help="The portal's own host name for this brand.")
@click.option("--footer-link", "links", multiple=True, help="LABEL=URL, repeatable; replaces the footer links.")
@click.option("--language", help="en, de, fr, es or ar: for customers who chose none and whose browser asks for none.")
def mailbox_brand(address: str, name: str | None, logo_url: str | None, primary_color: str | None,
                  accent_color: str | None, custom_domain: str | None, links: tuple[str, ...],
                  language: str | None) -> None:
    """Set a mailbox's brand: name, logo, colours, custom domain, footer links, default language."""
    from gateway.directory.branding import BrandError, set_brand

    footer = [_footer_link(link) for link in links] if links else None
    in_unit(lambda session, _settings: set_brand(
        session, address, name=name, logo_url=logo_url, primary_color=primary_color,
        accent_color=accent_color, custom_domain=custom_domain, links=footer, language=language,
    ), errors=(BrandError,))
    click.echo(f"brand of {address} updated")
