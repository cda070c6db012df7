"""The Continue page says whose sign-in it is, and never switches accounts unasked.

An attacker can send a victim the attacker's own link (or code, or SSO handoff); pressing
Continue would sign the victim into the attacker's account, where whatever they type next
is the attacker's to read. So the page names the account, masked ("Continue as
a•••@example.test"), and when another contact is signed in on this browser it says so and
asks first: a POST without the explicit confirm field shows the question again and uses
up nothing. GET still never uses anything up (mail scanners fetch links).
"""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from sqlalchemy import select

from gateway.auth.tokens import LinkPurpose
from gateway.models import MagicLink, UsedSsoToken
from gateway.storage.database import orm
from tests.portal.helpers import link_path
from tests.security.world import OWNER, SSO_SECRET, STRANGER, Browser, NewBrowser, World

pytestmark = pytest.mark.timeout(120)

ALICE_MASKED = "a•••@example.test"
MALLORY_MASKED = "m•••@attacker.test"


async def who(browser: Browser) -> str:
    """The address the ticket list shows this browser as signed in with ('' for a visitor)."""
    page = await browser.get("/tickets")
    if page.status != 200:
        return ""
    return OWNER if OWNER in page.body else STRANGER if STRANGER in page.body else "?"


async def link_used(world: World, link_id: int) -> bool:
    return await world.db.read(orm(lambda session: (session.get_one(MagicLink, link_id)).consumed_at is not None))


async def test_the_continue_page_names_the_account_masked(world: World, new_browser: NewBrowser) -> None:
    issued = await world.link(world.alice)
    page = await (await new_browser()).get(link_path(issued.token))
    assert page.status == 200
    assert f"Continue as {ALICE_MASKED}" in page.body
    assert OWNER not in page.body
    assert not await link_used(world, issued.link.id)


async def test_a_link_for_someone_else_asks_before_switching_and_uses_nothing_unasked(
    world: World, new_browser: NewBrowser
) -> None:
    victim = await new_browser()
    await victim.sign_in(await world.link(world.mallory))
    issued = await world.link(world.alice)

    page = await victim.get(link_path(issued.token))
    unasked = await victim.post_form(link_path(issued.token), {}, page=link_path(issued.token))

    for answer in (page, unasked):
        assert answer.status == 200, answer
        assert MALLORY_MASKED in answer.body and ALICE_MASKED in answer.body
        assert 'name="switch"' in answer.body
    assert not await link_used(world, issued.link.id)
    assert await who(victim) == STRANGER

    switched = await victim.post_form(link_path(issued.token), {"switch": "yes"}, page=link_path(issued.token))

    assert switched.status == 303
    assert await link_used(world, issued.link.id)
    assert await who(victim) == OWNER


async def test_the_same_contact_continues_without_a_question(world: World, new_browser: NewBrowser) -> None:
    browser = await new_browser()
    await browser.sign_in(await world.link(world.alice))
    issued = await world.link(world.alice)
    page = await browser.get(link_path(issued.token))
    assert 'name="switch"' not in page.body
    assert (await browser.post_form(link_path(issued.token), {}, page=link_path(issued.token))).status == 303


async def test_a_code_for_someone_else_asks_before_switching(world: World, new_browser: NewBrowser) -> None:
    victim = await new_browser()
    await victim.sign_in(await world.link(world.mallory))
    issued = await world.link(world.alice, purpose=LinkPurpose.SIGNIN)
    form = {"email": OWNER, "code": issued.code}

    unasked = await victim.post_form("/code", form)

    assert unasked.status == 200, unasked
    assert MALLORY_MASKED in unasked.body and ALICE_MASKED in unasked.body and 'name="switch"' in unasked.body
    assert not await link_used(world, issued.link.id)
    assert await who(victim) == STRANGER

    switched = await victim.post_form("/code", {**form, "switch": "yes"})

    assert switched.status == 303
    assert await who(victim) == OWNER


def sso_token(address: str) -> str:
    now = int(time.time())
    claims = {"email": address, "name": "Alice", "iat": now, "exp": now + 120, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, SSO_SECRET, "HS256")


async def used_sso_tokens(world: World) -> int:
    return await world.db.read(orm(lambda session: len(session.scalars(select(UsedSsoToken.id)).all())))


async def test_an_sso_handoff_for_someone_else_asks_before_switching(world: World, new_browser: NewBrowser) -> None:
    victim = await new_browser()
    await victim.sign_in(await world.link(world.mallory))
    token = sso_token(OWNER)

    page = await victim.get("/sso/jwt", params={"jwt": token})
    unasked = await victim.post_form("/sso/jwt", {"jwt": token}, page="/tickets")

    for answer in (page, unasked):
        assert answer.status == 200, answer
        assert MALLORY_MASKED in answer.body and ALICE_MASKED in answer.body and 'name="switch"' in answer.body
    assert await used_sso_tokens(world) == 0
    assert await who(victim) == STRANGER

    switched = await victim.post_form("/sso/jwt", {"jwt": token, "switch": "yes"}, page="/tickets")

    assert switched.status == 303
    assert await who(victim) == OWNER
    assert await used_sso_tokens(world) == 1
