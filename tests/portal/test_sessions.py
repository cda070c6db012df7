"""Portal sessions: the cookie, rotation at sign-in, timeouts, sign-out and sign-out everywhere."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.models import PortalSession, utcnow
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from tests.portal.helpers import (
    Client,
    MakeClient,
    add_contact,
    audit_events,
    issue,
    link_path,
    live_sessions,
    post_form,
    sign_in_with_link,
    with_settings,
)


def _set_cookie(response: object, name: str) -> str:
    headers = response.headers.getall("Set-Cookie", [])  # type: ignore[attr-defined]
    [found] = [h for h in headers if h.startswith(f"{name}=")]
    return found


async def test_session_cookie_is_httponly_lax_and_host_wide_on_plain_http(
    client: Client, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    response = await sign_in_with_link(client, await issue(db, settings, alice))
    cookie = _set_cookie(response, "wicket")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie and "Domain" not in cookie


async def test_session_cookie_is_host_prefixed_and_secure_over_https(
    make_client: MakeClient, db: Database, settings: Settings
) -> None:
    https = with_settings(settings, public_url="https://portal.example.test")
    client = await make_client(https)
    alice = await add_contact(db)
    issued = await issue(db, https, alice)
    page = await client.get(link_path(issued.token))
    csrf_cookie = _set_cookie(page, "__Host-wicket-csrf")
    assert "Secure" in csrf_cookie and "HttpOnly" in csrf_cookie and "Path=/" in csrf_cookie
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")

    # The test client speaks plain http, so it holds back Secure cookies: send it by hand.
    seed = csrf_cookie.split(";")[0]
    token = (await page.text()).split('name="csrf_token" value="')[1].split('"')[0]
    response = await client.post(
        link_path(issued.token), data={"csrf_token": token}, headers={"Cookie": seed}, allow_redirects=False
    )
    assert response.status == 303
    cookie = _set_cookie(response, "__Host-wicket")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie


async def test_session_id_is_stored_only_as_a_hash(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db)
    response = await sign_in_with_link(client, await issue(db, settings, alice))
    session_id = _set_cookie(response, "wicket").split(";")[0].split("=", 1)[1]
    [row] = await live_sessions(db, alice)
    assert row.id_hash == hashlib.sha256(session_id.encode()).hexdigest()
    assert session_id not in str([getattr(row, c.key) for c in PortalSession.__table__.columns])


async def test_signing_in_again_rotates_the_session(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db)
    first = await sign_in_with_link(client, await issue(db, settings, alice))
    second = await sign_in_with_link(client, await issue(db, settings, alice))
    assert _set_cookie(first, "wicket") != _set_cookie(second, "wicket")
    rows = await db.read(orm(lambda session: session.scalars(select(PortalSession).order_by(PortalSession.id)).all()))
    assert [r.revoked_at is not None for r in rows] == [True, False]


async def test_require_contact_sends_visitors_to_login_and_back(client: Client) -> None:
    response = await client.get("/tickets", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/login?next=/tickets"
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/login"


async def test_idle_session_expires(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db)
    await sign_in_with_link(client, await issue(db, settings, alice))
    assert (await client.get("/tickets", allow_redirects=False)).status == 200

    def change(session: Session):
        idle = utcnow() - timedelta(minutes=settings.session_idle_minutes + 1)
        session.execute(update(PortalSession).values(last_seen_at=idle))

    await db.write(change)
    response = await client.get("/tickets", allow_redirects=False)
    assert response.status == 302
    assert "wicket=;" in _set_cookie(response, "wicket") or "Max-Age=0" in _set_cookie(response, "wicket")


async def _last_seen(db: Database) -> datetime:
    [row] = await live_sessions(db)
    return row.last_seen_at


async def _seen(db: Database, moment: datetime) -> None:
    await db.write(lambda session: session.execute(update(PortalSession).values(last_seen_at=moment)))


async def test_pages_touch_the_session_at_most_once_a_minute_and_the_idle_timeout_still_holds(
    client: Client, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    await sign_in_with_link(client, await issue(db, settings, alice))
    recently = utcnow() - timedelta(seconds=30)
    await _seen(db, recently)
    assert (await client.get("/tickets", allow_redirects=False)).status == 200
    assert await _last_seen(db) == recently  # a view within the minute writes nothing

    await _seen(db, utcnow() - timedelta(minutes=2))
    before = utcnow()
    assert (await client.get("/tickets", allow_redirects=False)).status == 200
    assert await _last_seen(db) >= before  # an older touch is renewed

    idle = timedelta(minutes=settings.session_idle_minutes)
    await _seen(db, utcnow() - idle + timedelta(seconds=30))
    assert (await client.get("/tickets", allow_redirects=False)).status == 200  # still inside the idle window
    await _seen(db, utcnow() - idle - timedelta(seconds=1))
    assert (await client.get("/tickets", allow_redirects=False)).status == 302


async def test_session_ends_at_the_absolute_timeout_however_active(
    client: Client, db: Database, settings: Settings
) -> None:
    alice = await add_contact(db)
    await sign_in_with_link(client, await issue(db, settings, alice))

    def change(session: Session):
        session.execute(update(PortalSession).values(expires_at=utcnow() - timedelta(seconds=1)))

    await db.write(change)
    assert (await client.get("/tickets", allow_redirects=False)).status == 302


async def test_sign_out_revokes_the_session(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db)
    await sign_in_with_link(client, await issue(db, settings, alice))
    confirm = await client.get("/logout")
    assert "Sign out?" in await confirm.text()

    response = await post_form(client, "/logout", {})

    assert response.status == 303 and response.headers["Location"] == "/login?signed_out=1"
    assert await live_sessions(db) == []
    assert (await client.get("/tickets", allow_redirects=False)).status == 302
    [ended] = await audit_events(db, "session.ended")
    assert ended.detail["scope"] == "this" and ended.contact_id == alice.id


async def test_sign_out_everywhere_ends_every_device(
    client: Client, make_client: MakeClient, db: Database, settings: Settings
) -> None:
    alice, bob = await add_contact(db), await add_contact(db, "bob@example.test", "Bob")
    laptop, phone, bobs = client, await make_client(settings), await make_client(settings)
    for browser, contact in ((laptop, alice), (phone, alice), (bobs, bob)):
        await sign_in_with_link(browser, await issue(db, settings, contact))

    response = await post_form(laptop, "/logout-everywhere", {}, page="/account/password")

    assert response.status == 303
    assert (await phone.get("/tickets", allow_redirects=False)).status == 302
    assert (await laptop.get("/tickets", allow_redirects=False)).status == 302
    assert (await bobs.get("/tickets", allow_redirects=False)).status == 200
    assert await live_sessions(db, alice) == []
    [ended] = await audit_events(db, "session.ended")
    assert ended.detail == {"scope": "everywhere", "sessions": 2} and ended.contact_id == alice.id


async def test_sign_out_needs_the_form_token(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db)
    await sign_in_with_link(client, await issue(db, settings, alice))
    response = await client.post("/logout", data={}, allow_redirects=False)
    assert response.status == 403
    assert len(await live_sessions(db, alice)) == 1


async def test_form_token_changes_when_someone_signs_in(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db)
    before = await client.get("/login")
    await sign_in_with_link(client, await issue(db, settings, alice))
    old_token = (await before.text()).split('name="csrf_token" value="')[1].split('"')[0]
    response = await client.post("/logout", data={"csrf_token": old_token}, allow_redirects=False)
    assert response.status == 403
