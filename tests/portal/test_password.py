"""The optional password: set from the account page, then accepted by /login."""

from __future__ import annotations

import re

from sqlalchemy import select

from gateway.models import ContactPassword
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.portal.helpers import (
    ALICE,
    Client,
    MakeClient,
    add_contact,
    audit_events,
    issue,
    live_sessions,
    post_form,
    sign_in_with_link,
    with_settings,
)

PASSWORD = "correct horse battery"


async def _set_password(client: Client, password: str = PASSWORD, confirm: str | None = None) -> object:
    data = {"action": "set", "password": password, "confirm": password if confirm is None else confirm}
    return await post_form(client, "/account/password", data)


async def test_a_contact_sets_a_password_and_signs_in_with_it_elsewhere(
    client: Client, make_client: MakeClient, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    await sign_in_with_link(client, await issue(db, settings, alice))

    response = await _set_password(client)

    assert response.status == 200  # type: ignore[attr-defined]
    assert "Your password is set" in await response.text()  # type: ignore[attr-defined]
    stored = await db.read(orm(lambda session: session.scalar(select(ContactPassword.password_hash))))
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored
    other = await make_client(settings)
    signed_in = await post_form(other, "/login/password", {"email": ALICE, "password": PASSWORD}, page="/login")
    assert signed_in.status == 303 and signed_in.headers["Location"] == "/tickets"
    [changed] = await audit_events(db, "password.changed")
    assert changed.detail["action"] == "set"
    assert [s.method for s in await live_sessions(db, alice)] == ["link", "password"]


async def test_wrong_password_and_unknown_address_get_the_same_answer(
    client: Client, make_client: MakeClient, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    await sign_in_with_link(client, await issue(db, settings, alice))
    await _set_password(client)
    await add_contact(db, "nopassword@example.test")
    visitor = await make_client(settings)

    answers = []
    attempts = [(ALICE, "wrong password!"), ("stranger@example.test", PASSWORD), ("nopassword@example.test", PASSWORD)]
    for email, password in attempts:
        response = await post_form(visitor, "/login/password", {"email": email, "password": password}, page="/login")
        assert response.status == 400
        body = re.sub(r'value="[A-Za-z0-9_-]{43}"', "", await response.text()).replace(email, "EMAIL")
        answers.append(body)
    assert answers[0] == answers[1] == answers[2]
    assert "do not match" in answers[0]


async def test_setting_a_password_signs_out_other_devices(
    client: Client, make_client: MakeClient, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    phone = await make_client(settings)
    await sign_in_with_link(client, await issue(db, settings, alice))
    await sign_in_with_link(phone, await issue(db, settings, alice))
    await _set_password(client)
    assert (await phone.get("/tickets", allow_redirects=False)).status == 302
    assert (await client.get("/tickets", allow_redirects=False)).status == 200


async def test_too_short_or_mismatched_passwords_are_explained(
    client: Client, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    await sign_in_with_link(client, await issue(db, settings, alice))
    short = await _set_password(client, "short")
    mismatch = await _set_password(client, PASSWORD, PASSWORD + "!")
    assert short.status == mismatch.status == 400  # type: ignore[attr-defined]
    assert "at least" in await short.text()  # type: ignore[attr-defined]
    assert "do not match" in await mismatch.text()  # type: ignore[attr-defined]


async def test_removing_the_password_stops_password_sign_in(
    client: Client, make_client: MakeClient, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    await sign_in_with_link(client, await issue(db, settings, alice))
    await _set_password(client)
    removed = await post_form(client, "/account/password", {"action": "remove"})
    assert "Your password is removed" in await removed.text()
    other = await make_client(settings)
    response = await post_form(other, "/login/password", {"email": ALICE, "password": PASSWORD}, page="/login")
    assert response.status == 400


async def test_the_account_page_needs_a_signed_in_contact(client: Client) -> None:
    response = await client.get("/account/password", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"].startswith("/login?next=")


async def test_password_guessing_is_rate_limited_per_address(
    make_client: MakeClient, db: Database, settings: Settings
) -> None:
    client = await make_client(with_settings(settings, rate_limit_failures_per_address=3))
    await add_contact(db)
    statuses = []
    for _ in range(3 + 1):
        response = await post_form(client, "/login/password", {"email": ALICE, "password": "guess"}, page="/login")
        statuses.append(response.status)
    assert statuses[-1] == 429 and set(statuses[:-1]) == {400}
