"""`wicket mailbox …`: the shared inboxes Wicket receives mail for, their brands and digests.

Each command runs one service function from gateway.directory.mailboxes, .branding or
.preferences in a transaction: the listener accepts mail for a mailbox as soon as it is
added, and the portal and customer mail wear its brand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gateway.cli.support import console, in_unit, json_list, on_database, print_list, run_async

if TYPE_CHECKING:
    from gateway.storage.database import Database

# The domain is imported inside each command, so that loading the command line stays cheap.


@click.group()
def mailbox() -> None:
    """Shared inboxes Wicket receives mail for."""


@mailbox.command("list")
@json_list
@run_async
async def mailbox_list(as_json: bool) -> None:
    """The mailboxes Wicket receives mail for."""
    from gateway.directory.mailboxes import list_mailboxes
    from gateway.storage.database import orm

    async def action(database: Database) -> list[dict[str, str]]:
        boxes = await database.read(orm(list_mailboxes))
        return [{"address": box.address, "name": box.name} for box in boxes]

    print_list(await on_database(action), as_json=as_json, line=lambda box: f"{box['address']}  {box['name']}",
               empty="no mailboxes yet; add one with `wicket mailbox add support@example.com --name NAME`")


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
        console().print(f"mailbox {await on_database(action)} is ready")
    except MailboxError as error:
        raise click.ClickException(str(error)) from error


@mailbox.command("digest")
@click.argument("address")
@click.option("--hour", type=click.IntRange(0, 23), required=True, help="Hour of the day (UTC) the digest goes out.")
def mailbox_digest(address: str, hour: int) -> None:
    """When the agents who want it get the mailbox's daily digest."""
    from gateway.directory.preferences import PreferenceError, set_digest_hour

    box = in_unit(lambda session, _settings: set_digest_hour(session, address, hour).address,
                  errors=(PreferenceError,))
    click.echo(f"{box}: daily digest at {hour:02d}:00 UTC for agents who want one "
               f"(`wicket agents set-notify EMAIL --digest`)")


def _footer_link(value: str) -> tuple[str, str]:
    label, separator, url = value.partition("=")
    if not separator:
        raise click.BadParameter("write a footer link as LABEL=URL")
    return label, url


@mailbox.command("brand")
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
