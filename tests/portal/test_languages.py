"""Portal pages in the contact's language: profile choice, else Accept-Language (remembered), else the mailbox's."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.storage.database import orm

from email.header import decode_header, make_header

from sqlalchemy import select, update

from gateway.models import Contact, Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database
from portal import keys
from tests.portal.helpers import Client, add_contact, post_form, sent_signin_emails
from tests.portal.story import signed_in

ALICE = "alice@customer.test"


async def language_of(db: Database, address: str) -> tuple[str | None, str | None]:
    def _look(session: Session):
        contact = session.scalar(select(Contact).where(Contact.email == address))
        assert contact is not None
        return contact.language, contact.time_zone
    return await db.read(orm(_look))


async def test_a_contact_whose_profile_says_german_gets_german_pages(
    client: Client, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db, ALICE, "Alice Doe")
    await signed_in(client, db, settings, alice)

    saved = await post_form(client, "/account", {"name": "Alice Doe", "language": "de", "time_zone": "Europe/Berlin"})
    page = await (await client.get("/tickets", headers={"Accept-Language": "en-US,en;q=0.9"})).text()

    assert saved.status == 200 and "Ihre Angaben sind gespeichert." in await saved.text()
    assert '<html lang="de" dir="ltr">' in page and "<h1>Ihre Tickets</h1>" in page and "Abmelden" in page
    assert await language_of(db, ALICE) == ("de", "Europe/Berlin")


async def test_a_profile_rejects_a_time_zone_not_on_the_list(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db, ALICE, "Alice Doe")
    await signed_in(client, db, settings, alice)
    refused = await post_form(client, "/account", {"name": "Alice", "language": "fr", "time_zone": "Mars/Olympus"})
    assert refused.status == 400 and await language_of(db, ALICE) == (None, None)


async def test_accept_language_picks_the_language_of_a_new_contact_and_is_remembered(
    client: Client, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db, ALICE, "Alice Doe")
    client.session.headers["Accept-Language"] = "fr-CH, fr;q=0.9, en;q=0.5"
    await signed_in(client, db, settings, alice)

    first = await (await client.get("/tickets")).text()
    later = await (await client.get("/tickets", headers={"Accept-Language": "es"})).text()

    assert '<html lang="fr" dir="ltr">' in first and "Vos tickets" in first
    assert await language_of(db, ALICE) == ("fr", None)
    assert '<html lang="fr"' in later  # remembered: a later browser's preference does not change it


async def test_a_visitor_asking_for_arabic_gets_a_right_to_left_page(client: Client) -> None:
    page = await (await client.get("/login", headers={"Accept-Language": "ar-EG,ar;q=0.9"})).text()
    assert '<html lang="ar" dir="rtl">' in page and "تسجيل الدخول" in page


async def test_without_a_choice_or_a_known_browser_language_the_mailbox_default_speaks(
    client: Client, db: Database, mailbox: Mailbox
) -> None:
    await db.write(lambda session: session.execute(update(Mailbox).values(language="es")))
    client.app[keys.BRANDS].by_host.clear()  # the brand was cached before the change
    page = await (await client.get("/login", headers={"Accept-Language": "ja"})).text()
    assert '<html lang="es" dir="ltr">' in page and "Acceder" in page


async def test_the_sign_in_mail_speaks_the_contacts_language(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db, ALICE, "Alice Doe")
    await db.write(lambda session: session.execute(update(Contact).values(language="de")))
    await post_form(client, "/login", {"email": alice.email})
    [mail] = await sent_signin_emails(db, settings)
    assert str(make_header(decode_header(mail.message["Subject"]))).startswith("Ihr Anmeldelink für") and "Hier ist Ihr Link zur Anmeldung" in mail.text


async def test_error_pages_speak_the_browsers_language(client: Client) -> None:
    response = await client.get("/no/such/page", headers={"Accept-Language": "de"})
    page = await response.text()
    assert response.status == 404 and "Seite nicht gefunden" in page and '<html lang="de"' in page
