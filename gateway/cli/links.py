"""`wicket link issue EMAIL [--ticket REF]`: a portal sign-in URL for an operator to hand over.

The URL is returned to the caller (the command prints it) and is never logged. The contact
must already exist (they wrote in, or were copied on a ticket); with a ticket reference
the contact must take part in that ticket, and the link lands on it. Links from here live
as long as links in replies (`reply_link_ttl_minutes`), since they travel by hand.
"""

from __future__ import annotations

from datetime import timedelta

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.auth.audit import record
from gateway.cli.support import node_settings, on_database, run_async
from gateway.auth.tokens import LinkPurpose, issue_link
from gateway.directory.branding import portal_url
from gateway.models import Contact, Mailbox, Ticket
from gateway.settings import Settings
from gateway.storage.database import Database
from gateway.tickets.service import is_participant


class OperatorLinkError(ValueError):
    """The link cannot be issued; the message says why, for the command line."""


def parse_ticket_ref(text: str) -> int:
    cleaned = text.strip().lstrip("#")
    if not cleaned.isdigit():
        raise OperatorLinkError(f"{text!r} is not a ticket number like 1001 or #1001")
    return int(cleaned)


async def issue_operator_link(
    db: Database,
    settings: Settings,
    email: str,
    ticket_ref: str | int | None = None,
    *,
    mailbox_address: str | None = None,
) -> str:
    """Issue a link for the contact with `email` (optionally onto ticket `ticket_ref`); the URL."""
    address = email.strip().lower()

    def issue(session: Session) -> str:
        contact = session.scalar(select(Contact).where(Contact.email == address))
        if contact is None:
            raise OperatorLinkError(f"no contact with the address {address}; they must write in first")
        ticket: Ticket | None = None
        mailbox: Mailbox | None = None  # the ticket's: its link opens the portal in that brand
        if ticket_ref is not None:
            ref = parse_ticket_ref(str(ticket_ref))
            mailboxes = select(Mailbox).order_by(Mailbox.id)
            if mailbox_address:
                mailboxes = mailboxes.where(Mailbox.address == mailbox_address.strip().lower())
            mailbox = session.scalar(mailboxes.limit(1))
            if mailbox is not None:
                ticket = session.scalar(select(Ticket).where(Ticket.mailbox_id == mailbox.id, Ticket.ref == ref))
            if ticket is None:
                raise OperatorLinkError(f"no ticket #{ref}" + (f" in {mailbox_address}" if mailbox_address else ""))
            if not is_participant(session, ticket.id, contact.id):
                raise OperatorLinkError(f"{address} does not take part in ticket #{ref}")
        issued = issue_link(
            session,
            settings,
            contact,
            ticket=ticket,
            purpose=LinkPurpose.REPLY if ticket else LinkPurpose.SIGNIN,
            ttl=timedelta(minutes=settings.reply_link_ttl_minutes),
        )
        detail = {"link_id": issued.link.id}
        record(session, "link.operator_issued", contact=contact, ticket=ticket, detail=detail)
        return issued.url(portal_url(settings, mailbox))

    return await db.write(issue)


@click.group()
def link() -> None:
    """Portal sign-in links."""


@link.command("issue")
@click.argument("email")
@click.option("--ticket", "ticket_ref", help="Ticket number, e.g. 1001: the link opens that ticket.")
@run_async
async def link_issue(email: str, ticket_ref: str | None) -> None:
    """Print a single-use portal link for a contact (shown once, never logged)."""
    settings = node_settings()
    try:
        url = await on_database(lambda database: issue_operator_link(database, settings, email, ticket_ref), settings)
    except OperatorLinkError as error:
        raise click.ClickException(str(error)) from error
    click.echo(url)
