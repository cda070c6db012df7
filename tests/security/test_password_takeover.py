"""Setting a password takes a recent sign-in, tells the owner, and signs out other devices.

A session that was signed in a while ago (or one a quoted link opened for someone else) must
not be able to plant a password the owner does not know about: over real HTTP, a session
signed in 11 minutes ago is refused with a page that asks for the current password or
offers a fresh sign-in link; a fresh sign-in (or the current password) can set it; the
owner is mailed a notice holding no link or code; every other browser of the owner is
signed out.
"""

from __future__ import annotations

import email
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.models import ContactPassword, OutboxMessage, PortalSession, utcnow
from gateway.storage.database import orm
from portal.sessions import cookie_name, hash_session_id
from tests.portal.helpers import CODE_IN_MAIL, TOKEN_FIELD
from tests.security.world import OWNER, Browser, NewBrowser, World

pytestmark = pytest.mark.timeout(120)

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a different long passphrase"


async def signed_in_at(world: World, browser: Browser, minutes_ago: int) -> None:
    """Move this browser's sign-in time back, as if it had signed in `minutes_ago`."""
    session_id = browser.cookie(cookie_name(world.settings))
    assert session_id
    moment = utcnow() - timedelta(minutes=minutes_ago)

    def change(session: Session):
        session.execute(
            update(PortalSession)
            .where(PortalSession.id_hash == hash_session_id(session_id))
            .values(created_at=moment)
        )

    await world.db.write(change)


async def set_password(browser: Browser, password: str, **extra: str) -> tuple[int, str]:
    form = {"action": "set", "password": password, "confirm": password, **extra}
    answer = await browser.post_form("/account/password", form, page="/account/password")
    return answer.status, answer.body


async def stored_hash(world: World) -> str | None:
    def look(session: Session):
        return session.scalar(
            select(ContactPassword.password_hash).where(ContactPassword.contact_id == world.alice.id)
        )

    return await world.db.read(orm(look))


async def notices(world: World) -> list[OutboxMessage]:
    def look(session: Session):
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        return rows

    rows = await world.db.read(orm(look))
    return [row for row in rows if row.kind == "password-notice"]


async def is_signed_in(browser: Browser) -> bool:
    return (await browser.get("/tickets")).status == 200


async def test_a_stale_session_cannot_set_a_password_a_fresh_one_can_and_the_owner_is_told(
    world: World, new_browser: NewBrowser
) -> None:
    laptop, phone = await new_browser(), await new_browser()
    await laptop.sign_in(await world.link(world.alice))
    await phone.sign_in(await world.link(world.alice))
    await signed_in_at(world, laptop, 11)

    page = await laptop.get("/account/password")
    status, body = await set_password(laptop, PASSWORD)

    assert page.status == 200 and "Email me a sign-in link" in page.body
    assert status == 403, body
    assert "sign in again" in body.lower() and "Traceback" not in body
    assert await stored_hash(world) is None
    assert await notices(world) == []
    assert await is_signed_in(phone)

    await laptop.sign_in(await world.link(world.alice))  # a fresh link: a fresh sign-in
    status, body = await set_password(laptop, PASSWORD)

    assert status == 200 and "Your password is set" in body
    assert (await stored_hash(world) or "").startswith("$argon2id$")
    [notice] = await notices(world)
    assert notice.rcpt_tos == [OWNER]
    message = email.message_from_bytes(notice.raw)
    text = "".join(
        part.get_payload(decode=True).decode() for part in message.walk() if part.get_content_maintype() == "text"
    )
    assert "password" in text.lower() and "/l/" not in text and not CODE_IN_MAIL.search(text)
    assert not re.search(r"https?://", text), "the notice carries no link at all"
    assert await is_signed_in(laptop)
    assert not await is_signed_in(phone), "the other browser is still signed in"


async def test_the_current_password_stands_in_for_a_fresh_sign_in(world: World, new_browser: NewBrowser) -> None:
    laptop, phone = await new_browser(), await new_browser()
    await laptop.sign_in(await world.link(world.alice))
    assert (await set_password(laptop, PASSWORD))[0] == 200
    await phone.sign_in(await world.link(world.alice))
    await signed_in_at(world, laptop, 30)
    before = await stored_hash(world)

    page = await laptop.get("/account/password")
    wrong = await set_password(laptop, NEW_PASSWORD, current_password="not my password at all")
    assert await stored_hash(world) == before
    right = await set_password(laptop, NEW_PASSWORD, current_password=PASSWORD)

    assert 'name="current_password"' in page.body
    assert wrong[0] == 403 and "Traceback" not in wrong[1]
    assert right[0] == 200, right[1]
    assert await stored_hash(world) != before
    assert len(await notices(world)) == 2
    assert await is_signed_in(laptop) and not await is_signed_in(phone)


async def test_a_stale_session_can_ask_for_a_fresh_link_from_the_password_page(
    world: World, new_browser: NewBrowser
) -> None:
    laptop = await new_browser()
    await laptop.sign_in(await world.link(world.alice))
    await signed_in_at(world, laptop, 11)
    page = await laptop.get("/account/password")
    form = re.search(r'<form method="post" action="(/login)"[^>]*>(.*?)</form>', page.body, re.S)
    assert form, "the page offers a fresh sign-in link"
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(2)))
    token = TOKEN_FIELD.search(form.group(2))
    assert token and fields.get("email") == OWNER and fields.get("next") == "/account/password"

    sent = await laptop.request("POST", "/login", data=fields)

    assert sent.status == 200 and "Check your email" in sent.body
