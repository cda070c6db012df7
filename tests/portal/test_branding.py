"""Per-mailbox brands chosen by the Host header, and templates an operator overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from gateway.cli.demo import seed_demo_content
from gateway.cli.runtime import Gateway
from gateway.directory.accounts import list_accounts
from gateway.directory.branding import BrandError, set_brand
from gateway.directory.mailboxes import add_mailbox
from gateway.models import Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.mailflow import ALICE, build_mail, settle, text_of
from tests.portal.helpers import Client, MakeClient, add_contact, post_form, sent_signin_emails, with_settings
from tests.portal.story import post_multipart, signed_in, tickets_of


async def brand(db: Database, address: str, **changes: object) -> None:
    await db.write(lambda session: set_brand(session, address, **changes))


@pytest.fixture
async def acme(db: Database, mailbox: Mailbox) -> None:
    """A second mailbox with its own brand on help.acme.test."""
    await db.write(lambda session: add_mailbox(session, "help@acme.test", "Acme"))
    await brand(
        db, "help@acme.test", name="Acme Help", primary_color="#AA3300", accent_color="#112233",
        custom_domain="Help.Acme.Test", logo_url="https://cdn.acme.test/logo.png",
        links=[("Status", "https://status.acme.test"), ("Privacy", "https://acme.test/privacy")],
    )  # fmt: skip


@pytest.mark.usefixtures("acme")
async def test_the_host_header_selects_the_mailbox_brand(client: Client) -> None:
    page = await (await client.get("/help", headers={"Host": "help.acme.test"})).text()
    css = await (await client.get("/brand.css", headers={"Host": "help.acme.test:443"})).text()

    assert "<title>Help center · Acme Help</title>" in page
    assert '<img class="brand-logo" src="https://cdn.acme.test/logo.png"' in page
    assert '<a href="https://status.acme.test" rel="noopener">Status</a>' in page
    assert "mailto:help@acme.test" in page
    assert "--brand: #aa3300; --accent: #112233;" in css


@pytest.mark.usefixtures("acme")
async def test_unknown_hosts_get_the_default_brand(client: Client) -> None:
    page = await (await client.get("/help", headers={"Host": "anything.example"})).text()
    css = await (await client.get("/brand.css")).text()

    assert "<title>Help center · Example Support</title>" in page and "Acme" not in page
    assert "--brand: #2454d6" in css


@pytest.mark.usefixtures("acme")
async def test_a_new_request_on_a_brand_domain_goes_to_that_mailbox(
    client: Client, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db, "alice@customer.test")
    await signed_in(client, db, settings, alice)
    client.session.headers["Host"] = "help.acme.test"

    response = await post_multipart(client, "/requests/new", {"subject": "Acme widget", "message": "Broken"})

    assert response.status == 303
    [ticket] = await tickets_of(db, alice)

    def look(session: Session):
        assert (session.get_one(Mailbox, ticket.mailbox_id)).address == "help@acme.test"

    await db.read(orm(look))


@pytest.mark.usefixtures("acme")
async def test_a_sign_in_link_asked_for_on_a_brand_domain_opens_that_domain(
    client: Client, db: Database, settings: Settings
) -> None:
    contact = await add_contact(db)
    client.session.headers["Host"] = "help.acme.test"

    assert (await post_form(client, "/login", {"email": contact.email})).status == 200

    [sent] = await sent_signin_emails(db, settings)
    assert sent.message["From"] == "Acme Help <help@acme.test>" and "Acme Help" in sent.message["Subject"]
    assert f"http://help.acme.test/l/{sent.token}" in sent.text and "http://help.acme.test/code" in sent.text
    assert "portal.example.test" not in sent.text + sent.html


@pytest.mark.usefixtures("acme")
async def test_ticket_mail_of_a_branded_mailbox_links_to_its_domain_and_others_to_the_public_url(
    gateway: Gateway,
) -> None:
    await gateway.router.reload()  # the routing table learns help@acme.test
    for to in ("help@acme.test", "support@example.test"):
        raw = build_mail(sender=ALICE, to=to, subject=f"Question for {to}", body="Hello")
        await gateway.receive(raw, mail_from=ALICE, rcpt_tos=(to,))

    sender = await settle(gateway)

    acknowledgements = {mail.message["From"]: text_of(mail) for mail in sender.sent if mail.rcpt_tos == [ALICE]}
    assert "http://help.acme.test/l/" in acknowledgements["Acme Help <help@acme.test>"]
    assert "http://help.acme.test/code" in acknowledgements["Acme Help <help@acme.test>"]
    assert "http://portal.example.test/l/" in acknowledgements["Example Support <support@example.test>"]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"primary_color": "red"}, "not a colour"),
        ({"accent_color": "#12345"}, "not a colour"),
        ({"logo_url": "javascript:alert(1)"}, "https://"),
        ({"logo_url": "http://cdn.example/logo.png"}, "https://"),
        ({"custom_domain": "gmail.com"}, "free-mail"),
        ({"links": [("Home", "javascript:alert(1)")]}, "footer link"),
    ],
)
async def test_brand_settings_are_checked_before_they_are_stored(
    db: Database, mailbox: Mailbox, changes: dict[str, object], problem: str
) -> None:
    with pytest.raises(BrandError, match=problem):
        await brand(db, mailbox.address, **changes)


async def test_templates_can_be_overridden_from_a_directory(
    make_client: MakeClient, settings: Settings, tmp_path: Path
) -> None:
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "help_index.html").write_text(
        '{% extends "base.html" %}{% block content %}<p class="custom">Our own help page</p>{% endblock %}'
    )
    client = await make_client(with_settings(settings, template_dir=overrides))

    page = await (await client.get("/help")).text()
    login = await (await client.get("/login")).text()

    assert "Our own help page" in page and 'class="brand"' in page
    assert "Sign in" in login  # templates not overridden still come from the package


async def test_the_demo_seed_brands_the_mailbox_loads_articles_and_an_account_once(
    db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    first = await seed_demo_content(db, settings)
    again = await seed_demo_content(db, settings)

    assert len(first.created) == 5 and again.created == again.updated == []

    def look(session: Session):
        branded = session.get_one(Mailbox, mailbox.id)
        [account] = list_accounts(session)
        return branded, account

    branded, account = await db.read(orm(look))
    assert branded.primary_color == "#3b5bdb"
    assert branded.footer_links[0] == {"label": "Help center", "url": "http://portal.example.test/help"}
    assert account.domains == ("customer.test",) and account.share_tickets
