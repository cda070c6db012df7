"""The profile page: name, email, password link, signed-in devices and recent sign-ins."""

from __future__ import annotations

from gateway.settings import Settings
from gateway.storage.database import Database
from tests.portal.helpers import Client, MakeClient, add_contact, audit_events, live_sessions, post_form
from tests.portal.story import signed_in

ALICE = "alice@customer.test"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


async def test_the_profile_shows_devices_and_recent_sign_ins(
    make_client: MakeClient, client: Client, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db, ALICE, "Alice Doe")
    laptop = await make_client(settings)
    laptop.session.headers["User-Agent"] = FIREFOX
    await signed_in(laptop, db, settings, alice)
    await signed_in(client, db, settings, alice)

    body = await (await client.get("/account")).text()

    assert 'value="Alice Doe"' in body and f'value="{ALICE}" readonly' in body
    assert 'href="/account/password"' in body
    assert "Firefox on Windows" in body and "This device" in body
    assert body.count("<tr>") - 1 == 2 and "Email link" in body  # the header row, then two sign-ins
    assert 'action="/logout-everywhere"' in body


async def test_a_contact_changes_their_name(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db, ALICE, "Alice")
    await signed_in(client, db, settings, alice)

    response = await post_form(client, "/account", {"name": "  Alice   Doe-Smith "})
    too_long = await post_form(client, "/account", {"name": "x" * 201})

    assert response.status == 200 and "Your details are saved." in await response.text()
    assert 'value="Alice Doe-Smith"' in await (await client.get("/account")).text()
    assert too_long.status == 400 and "under 200 characters" in await too_long.text()
    [changed] = await audit_events(db, "profile.changed")
    assert changed.contact_id == alice.id


async def test_signing_out_everywhere_from_the_profile_ends_every_session(
    make_client: MakeClient, client: Client, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db, ALICE)
    other = await make_client(settings)
    await signed_in(other, db, settings, alice)
    await signed_in(client, db, settings, alice)

    response = await post_form(client, "/logout-everywhere", {}, page="/account")

    assert response.status == 303
    assert await live_sessions(db, alice) == []
    assert (await other.get("/account", allow_redirects=False)).status == 302
