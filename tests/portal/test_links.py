"""Magic-link exchange through the real portal: once, on POST only, onto the ticket."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import MagicLink, Mailbox, PortalSession, utcnow
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.portal.helpers import (
    Client,
    MakeClient,
    add_contact,
    add_ticket,
    audit_events,
    form_token,
    issue,
    link_path,
    live_sessions,
    post_form,
    post_to_link,
    sent_signin_emails,
    sign_in_with_link,
    with_settings,
)

LINK_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}


async def test_exchange_signs_the_contact_in_and_lands_on_the_ticket(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db)
    ticket = await add_ticket(db, mailbox, alice)
    issued = await issue(db, settings, alice, ticket=ticket)

    response = await sign_in_with_link(client, issued)

    assert response.status == 303
    assert response.headers["Location"] == f"/tickets/{ticket.public_id}"
    page = await client.get(response.headers["Location"])
    assert page.status == 200
    assert "Printer jams" in await page.text()
    [session] = await live_sessions(db, alice)
    assert session.method == "link"
    assert [e.event for e in await audit_events(db, "link.exchanged")] == ["link.exchanged"]


async def test_link_without_ticket_lands_on_the_ticket_list(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db)
    response = await sign_in_with_link(client, await issue(db, settings, alice))
    assert response.headers["Location"] == "/tickets"
    landing = await client.get("/tickets")
    assert "Signed in as" in await landing.text() and "alice@example.test" in await landing.text()


async def test_get_shows_a_continue_button_and_never_consumes(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db)
    issued = await issue(db, settings, alice)

    for _ in range(3):
        page = await client.get(link_path(issued.token))
        assert page.status == 200
        assert "Continue" in await page.text()
    head = await client.head(link_path(issued.token))
    assert head.status == 200

    link = await db.read(orm(lambda session: session.get_one(MagicLink, issued.link.id)))
    assert link.consumed_at is None
    assert await live_sessions(db) == []
    assert (await sign_in_with_link(client, issued)).status == 303


async def test_head_answers_200_even_for_unknown_and_used_links(
    client: Client, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    issued = await issue(db, settings, alice)
    await sign_in_with_link(client, issued)
    assert (await client.head(link_path(issued.token))).status == 200
    assert (await client.head(link_path("x" * 43))).status == 200


async def test_link_pages_are_not_cached_indexed_or_referred(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db)
    issued = await issue(db, settings, alice)
    responses = [
        await client.get(link_path(issued.token)),
        await client.head(link_path(issued.token)),
        await sign_in_with_link(client, issued),
        await sign_in_with_link(client, issued),
    ]
    for response in responses:
        for name, value in LINK_HEADERS.items():
            assert response.headers[name] == value, (response.status, name)


async def test_second_use_of_link_shows_friendly_page_with_resend_button(
    client: Client, make_client: MakeClient, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    issued = await issue(db, settings, alice)
    assert (await sign_in_with_link(client, issued)).status == 303

    other_browser = await make_client(settings)
    second = await sign_in_with_link(other_browser, issued)

    assert second.status == 410
    body = await second.text()
    assert "This link has already been used" in body
    assert "Email me a new link" in body and f"/l/{issued.token}/resend" in body
    assert "Traceback" not in body
    assert len(await live_sessions(db, alice)) == 1
    [refused] = await audit_events(db, "link.refused")
    assert refused.detail["reason"] == "used" and refused.contact_id == alice.id


async def test_second_click_from_the_browser_it_signed_in_just_continues(
    client: Client, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    issued = await issue(db, settings, alice)
    await sign_in_with_link(client, issued)
    again = await sign_in_with_link(client, issued)
    assert again.status == 303 and again.headers["Location"] == "/tickets"
    assert len(await live_sessions(db, alice)) == 1


async def test_expired_link_shows_friendly_page(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db)
    issued = await issue(db, settings, alice, now=utcnow() - timedelta(minutes=61))

    page = await client.get(link_path(issued.token))
    assert page.status == 410
    assert "This link has expired" in await page.text()
    posted = await sign_in_with_link(client, issued)
    assert posted.status == 410
    assert "Email me a new link" in await posted.text()
    assert await live_sessions(db) == []
    [refused] = await audit_events(db, "link.refused")
    assert refused.detail["reason"] == "expired"


def _tampered(token: str) -> str:
    flipped = "A" if token[10] != "A" else "B"
    return token[:10] + flipped + token[11:]


async def test_tampered_link_is_refused_with_friendly_page(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db)
    issued = await issue(db, settings, alice)
    for token in (_tampered(issued.token), issued.token[:-1], issued.token + "x", "not-a-token"):
        page = await client.get(link_path(token))
        assert page.status == 404
        assert "This link does not work" in await page.text()
        assert "Email me a new link" in await page.text()
        posted = await post_to_link(client, token)
        assert posted.status == 404 and "This link does not work" in await posted.text()
    assert await live_sessions(db) == []

    def look(session: Session):
        assert (session.get_one(MagicLink, issued.link.id)).consumed_at is None

    await db.read(orm(look))


async def test_link_signed_with_another_installations_key_is_refused(
    client: Client, make_client: MakeClient, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    foreign = with_settings(settings, secret_keys=["some-other-installation"])
    issued = await issue(db, foreign, alice)
    response = await post_to_link(client, issued.token)
    assert response.status == 404
    assert "This link does not work" in await response.text()
    assert await live_sessions(db) == []


async def test_rotated_key_keeps_old_links_working_until_the_key_is_removed(
    make_client: MakeClient, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    before_rotation = with_settings(settings, secret_keys=["key-one"])
    first, second = await issue(db, before_rotation, alice), await issue(db, before_rotation, alice)

    rotated = await make_client(with_settings(settings, secret_keys=["key-two", "key-one"]))
    assert (await sign_in_with_link(rotated, first)).status == 303

    removed = await make_client(with_settings(settings, secret_keys=["key-two"]))
    refused = await post_to_link(removed, second.token)
    assert refused.status == 404
    assert "This link does not work" in await refused.text()


async def test_fifty_concurrent_exchanges_give_exactly_one_session(
    client: Client, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    issued = await issue(db, settings, alice)
    token = await form_token(client, link_path(issued.token))

    responses = await asyncio.gather(
        *(
            client.post(link_path(issued.token), data={"csrf_token": token}, allow_redirects=False)
            for _ in range(50)
        )
    )

    statuses = sorted(r.status for r in responses)
    assert statuses.count(303) == 1, statuses
    assert set(statuses) == {303, 410}
    sessions = await db.read(orm(lambda session: session.scalars(select(PortalSession)).all()))
    assert len(sessions) == 1
    assert len(await audit_events(db, "link.exchanged")) == 1


async def test_post_without_csrf_token_is_refused_and_consumes_nothing(
    client: Client, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    issued = await issue(db, settings, alice)
    await client.get(link_path(issued.token))

    missing = await client.post(link_path(issued.token), data={}, allow_redirects=False)
    forged = await client.post(link_path(issued.token), data={"csrf_token": "forged"}, allow_redirects=False)

    for response in (missing, forged):
        assert response.status == 403
        assert "This form has expired" in await response.text()

    def look(session: Session):
        assert (session.get_one(MagicLink, issued.link.id)).consumed_at is None

    await db.read(orm(look))


async def test_resend_mails_a_fresh_link_only_to_the_address_on_file(
    client: Client, db: Database, settings: Settings, mailbox: Mailbox
) -> None:
    alice = await add_contact(db)
    ticket = await add_ticket(db, mailbox, alice)
    issued = await issue(db, settings, alice, ticket=ticket, now=utcnow() - timedelta(hours=2))

    response = await post_form(
        client,
        f"/l/{issued.token}/resend",
        {"email": "mallory@evil.test", "to": "mallory@evil.test"},
        page=link_path(issued.token),
    )

    assert response.status == 200
    assert "a•••@example.test" in await response.text()
    [sent] = await sent_signin_emails(db, settings)
    assert sent.row.rcpt_tos == ["alice@example.test"]
    assert "mallory" not in sent.row.raw.decode()
    fresh = await sign_in_with_link(client, type(issued)(sent.token, "", issued.link))
    assert fresh.headers["Location"] == f"/tickets/{ticket.public_id}"


async def test_resend_for_a_link_that_still_works_sends_nothing(
    client: Client, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    issued = await issue(db, settings, alice)
    response = await post_form(client, f"/l/{issued.token}/resend", {}, page=link_path(issued.token))
    assert response.status == 303 and response.headers["Location"] == link_path(issued.token)
    assert await sent_signin_emails(db, settings) == []


async def test_resend_is_rate_limited_per_address(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db)
    issued = await issue(db, settings, alice, now=utcnow() - timedelta(hours=2))
    statuses = []
    for _ in range(settings.rate_limit_mail_per_address + 1):
        response = await post_form(client, f"/l/{issued.token}/resend", {}, page=link_path(issued.token))
        statuses.append(response.status)
    assert statuses[:-1] == [200] * settings.rate_limit_mail_per_address
    assert statuses[-1] == 429
    assert "try again in" in await response.text()
    assert len(await sent_signin_emails(db, settings)) == settings.rate_limit_mail_per_address
