"""Company accounts: colleagues see each other's tickets only where their account shares them."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from gateway.directory.accounts import (
    AccountError,
    AccountSummary,
    add_account,
    add_member,
    is_free_mail,
    list_accounts,
    remove_member,
)
from gateway.models import Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.portal.helpers import Client, MakeClient, add_contact, add_ticket, audit_events, post_form
from tests.portal.story import TICKET_LINK, signed_in

ALICE, CAROL = "alice@customer.test", "carol@customer.test"


async def account(db: Database, name: str = "Customer Ltd", **options: object) -> None:
    await db.write(lambda session: add_account(session, name, **options))


async def member(db: Database, email: str, name: str = "Customer Ltd") -> None:
    await db.write(lambda session: add_member(session, name, email))


async def test_a_colleague_without_account_sharing_gets_a_404(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    await account(db, domains=["customer.test"], share_tickets=False)
    alice, carol = await add_contact(db, ALICE), await add_contact(db, CAROL, "Carol")
    ticket = await add_ticket(db, mailbox, alice, "Budget printer")
    await signed_in(client, db, settings, carol)

    assert (await client.get(f"/tickets/{ticket.public_id}")).status == 404
    assert "Budget printer" not in await (await client.get("/tickets")).text()


async def test_a_colleague_with_account_sharing_sees_the_ticket_and_the_view_is_audited(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    await account(db, domains=["customer.test"], share_tickets=True)
    alice, carol = await add_contact(db, ALICE, "Alice Doe"), await add_contact(db, CAROL, "Carol")
    ticket = await add_ticket(db, mailbox, alice, "Budget printer")
    await signed_in(client, db, settings, carol)

    response = await client.get(f"/tickets/{ticket.public_id}")
    listing = await (await client.get("/tickets")).text()

    assert response.status == 200
    assert "shared with you through Customer Ltd" in await response.text()
    assert "Close this ticket" not in await response.text()
    [view] = await audit_events(db, "ticket.viewed")
    assert view.contact_id == carol.id and view.ticket_id == ticket.id and view.detail["shared"] is True
    shared_section = listing[listing.index("Shared with Customer Ltd") :]
    assert TICKET_LINK.findall(shared_section) == [ticket.public_id]
    assert "opened by Alice Doe" in shared_section


async def test_explicit_members_share_too_but_strangers_never(
    make_client: MakeClient, client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    await account(db, "Partners", share_tickets=True)
    await member(db, "dana@partner.test", "Partners")
    await member(db, "erik@elsewhere.test", "Partners")
    dana = await add_contact(db, "dana@partner.test")
    ticket = await add_ticket(db, mailbox, dana, "Contract renewal")
    erik = await add_contact(db, "erik@elsewhere.test")
    stranger = await add_contact(db, "sam@partner.test")

    await signed_in(client, db, settings, erik)
    assert (await client.get(f"/tickets/{ticket.public_id}")).status == 200
    other = await make_client(settings)
    await signed_in(other, db, settings, stranger)
    assert (await other.get(f"/tickets/{ticket.public_id}")).status == 404


async def test_the_list_names_every_sharing_account_once_in_order_of_name(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    await account(db, "Zeta Group", domains=["customer.test"], share_tickets=True)
    await account(db, "Alpha Partners", share_tickets=True)
    await account(db, "Quiet Ltd", share_tickets=False)
    for name in ("Alpha Partners", "Quiet Ltd", "Zeta Group"):  # Zeta also by domain: still named once
        await member(db, CAROL, name)
    await signed_in(client, db, settings, await add_contact(db, CAROL))

    assert "Shared with Alpha Partners, Zeta Group</h2>" in await (await client.get("/tickets")).text()


async def test_an_address_belongs_to_the_domain_after_its_last_at_sign(
    make_client: MakeClient, client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    await account(db, domains=["customer.test"], share_tickets=True)
    ticket = await add_ticket(db, mailbox, await add_contact(db, ALICE), "Budget printer")
    quoted = await add_contact(db, '"carol@home"@customer.test')
    lookalike = await add_contact(db, "mallory@customer.test.evil.test")

    await signed_in(client, db, settings, quoted)
    assert (await client.get(f"/tickets/{ticket.public_id}")).status == 200
    assert "Shared with Customer Ltd" in await (await client.get("/tickets")).text()
    other = await make_client(settings)
    await signed_in(other, db, settings, lookalike)
    assert (await other.get(f"/tickets/{ticket.public_id}")).status == 404
    assert "Shared with" not in await (await other.get("/tickets")).text()


async def test_a_shared_viewer_who_replies_becomes_a_participant(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    await account(db, domains=["customer.test"], share_tickets=True)
    alice, carol = await add_contact(db, ALICE), await add_contact(db, CAROL)
    ticket = await add_ticket(db, mailbox, alice)
    await signed_in(client, db, settings, carol)
    page = f"/tickets/{ticket.public_id}"
    response = await post_form(client, f"{page}/reply", {"message": "Same problem on floor 2."}, page=page)

    assert response.status == 303
    [replied] = await audit_events(db, "ticket.replied")
    assert replied.detail["shared"] is True
    listing = await (await client.get("/tickets")).text()
    assert TICKET_LINK.findall(listing[: listing.index("Shared with")]) == [ticket.public_id]


@pytest.mark.parametrize(
    "domain", ["gmail.com", "GMX.de", "gmx.net", "outlook.com", "yahoo.co.uk", "web.de", "proton.me"]
)
async def test_free_mail_domains_are_never_attached(db: Database, domain: str) -> None:
    assert is_free_mail(domain.lower())
    with pytest.raises(AccountError, match="free-mail"):
        await account(db, domains=[domain])


@pytest.mark.parametrize("domain", ["not a domain", "-bad.test", "x", "customer..test"])
async def test_malformed_domains_are_refused(db: Database, domain: str) -> None:
    with pytest.raises(AccountError, match="not a domain"):
        await account(db, domains=[domain])


async def test_a_domain_belongs_to_one_account_only(db: Database) -> None:
    await account(db, "First", domains=["@Customer.TEST"])
    with pytest.raises(AccountError, match="another account"):
        await account(db, "Second", domains=["customer.test"])


async def test_operators_list_accounts_with_domains_members_and_sharing(db: Database) -> None:
    await account(db, domains=["customer.test"], share_tickets=False)
    await member(db, "ALICE@customer.test")
    await account(db, share_tickets=True)  # an existing account: only the setting changes

    [summary] = await list_accounts_in(db)

    assert summary.name == "Customer Ltd" and summary.share_tickets is True
    assert summary.domains == ("customer.test",) and summary.members == ("alice@customer.test",)

    def change(session: Session):
        assert remove_member(session, "Customer Ltd", "alice@customer.test") is True
        assert remove_member(session, "Customer Ltd", "alice@customer.test") is False
        with pytest.raises(AccountError, match="no account"):
            add_member(session, "Nobody Inc", "x@y.test")

    await db.write(change)


async def list_accounts_in(db: Database) -> list[AccountSummary]:
    return await db.read(orm(lambda session: list_accounts(session)))
