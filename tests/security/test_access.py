"""The security sweep: every route of the real portal app, attacked the way people attack
portals, with the URL table itself as the checklist — a route added later is swept too,
and a route with an id the sweep does not understand fails the sweep until taught.

Access (IDOR, CSRF, open redirects, session fixation, cookie flags, security headers) is
here; enumeration, secrets and the open-relay check are in `test_secrets.py`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.auth.tokens import LinkPurpose
from gateway.directory.accounts import add_account
from gateway.models import AuditEvent, ContactPassword
from gateway.settings import Settings
from gateway.storage.database import Database, orm
from portal.app import runner_options
from portal.passwords import hash_password
from tests.portal.helpers import add_contact, sent_signin_emails, with_settings
from tests.security.world import (
    OWNER,
    PORTAL_HOST,
    SSO_SECRET,
    STATE_CHANGING,
    Browser,
    NewBrowser,
    Route,
    Seen,
    World,
    fill,
    lands_on,
    routes_of,
)
from tests.support import portal_app

pytestmark = pytest.mark.timeout(180)

# `download` is an agent's signed file link: a stranger holds one signed for Sam, who does
# not work Alice's mailbox; the owner's call uses Tom's.
OBJECT_PARAMS = frozenset({"public_id", "ticket_id", "attachment_id", "message_id", "download", "route_id"})
NOT_OBJECT_IDS = {
    "token": "a magic-link token is itself the credential (tests/portal/test_links.py)",
    "slug": "help-center articles and categories are public",
}
API_BODIES: dict[str, dict[str, str]] = {
    "api_replies": {"text": "Not my ticket"},
    "api_notes": {"text": "Not my ticket"},
    "api_status": {"status": "closed"},
    "api_requester": {"email": "mallory@evil.test"},
}
COLLEAGUE = "colin@example.test"  # same company domain as Alice
FORM = {"message": "I am not who you think", "subject": "Hello", "email": OWNER, "action": "remove"}
PASSWORD = "correct horse battery staple"


async def signed_in(new_browser: NewBrowser, world: World, who: str) -> Browser:
    browser = await new_browser()
    await browser.sign_in(await world.link(world.alice if who == "alice" else world.mallory))
    return browser


async def call(browser: Browser, route: Route, path: str, api_key: str) -> Seen:
    """The request an ordinary client of that route would send, with valid CSRF/API credentials."""
    if route.is_api:
        body = API_BODIES.get(route.name or "", {}) if route.method in STATE_CHANGING else None
        return await browser.request(route.method, path, json=body, headers={"Authorization": f"Bearer {api_key}"})
    if route.method in STATE_CHANGING:
        return await browser.request(route.method, path, data={**FORM, "csrf_token": await browser.csrf_token("/tickets")})
    return await browser.request(route.method, path)


async def test_every_route_with_an_object_id_answers_404_to_another_contact_or_agent(
    world: World, new_browser: NewBrowser, db: Database
) -> None:
    app = portal_app(world.settings, db)
    await db.write(lambda session: add_account(session, "Example Inc", domains=["example.test"], share_tickets=False))
    colleague = await new_browser()
    await colleague.sign_in(await world.link(await add_contact(db, COLLEAGUE, "Colin")))
    alice, mallory = await signed_in(new_browser, world, "alice"), await signed_in(new_browser, world, "mallory")
    before = await world.ticket_state()
    swept: list[Route] = []
    for route in routes_of(app):
        unknown = [p for p in route.params if p not in OBJECT_PARAMS and p not in NOT_OBJECT_IDS]
        assert not unknown, f"{route.method} {route.pattern}: teach the sweep what {{{unknown[0]}}} names"
        if not OBJECT_PARAMS & set(route.params):
            continue
        for stranger in (mallory, colleague):
            theirs = await call(stranger, route, fill(route.pattern, world.owner_ids(agent="sam")), world.sam_key)
            nothing = await call(stranger, route, fill(route.pattern, {p: uuid.uuid4().hex for p in route.params}),
                                 world.sam_key)
            assert theirs.status == 404, f"{route.method} {route.pattern} let a stranger in: {theirs.status}"
            assert (theirs.status, theirs.body) == (nothing.status, nothing.body), "the 404 tells the id exists"
        swept.append(route)
    assert await world.ticket_state() == before, "a stranger changed Alice's ticket"
    for route in swept:  # the owner is let in, so each 404 above was about who asked
        mine = await call(alice, route, fill(route.pattern, world.owner_ids()), world.tom_key)
        assert mine.status != 404, f"{route.method} {route.pattern} refuses its owner too"
    assert {r.pattern for r in swept} >= {"/tickets/{public_id}", "/api/v1/tickets/{ticket_id}",
                                          "/agent/files/{download}",
                                          "/api/v1/tickets/{ticket_id}/attachments/{attachment_id}"}


async def test_every_state_changing_route_refuses_missing_forged_and_foreign_csrf_tokens(
    world: World, new_browser: NewBrowser, db: Database
) -> None:
    app = portal_app(world.settings, db)
    alice, mallory = await signed_in(new_browser, world, "alice"), await signed_in(new_browser, world, "mallory")
    stale_browser = await new_browser()
    stale = await stale_browser.csrf_token()  # a token from before the browser signed in
    await stale_browser.sign_in(await world.link(world.alice))
    unused = await world.link(world.alice)
    values = {**world.owner_ids(), "token": unused.token, "slug": "anything"}
    attacks: list[tuple[Browser, str, dict[str, str]]] = [
        (alice, "no token", {}),
        (alice, "a forged token", {"csrf_token": "A" * 43}),
        (alice, "another browser's token", {"csrf_token": await mallory.csrf_token("/tickets")}),
        (stale_browser, "the token it had before signing in", {"csrf_token": stale}),
    ]
    audited = await db.read(orm(lambda session: session.scalar(select(func.count(AuditEvent.id)))))
    before = await world.ticket_state()
    checked = 0
    for route in routes_of(app):
        if route.method not in STATE_CHANGING:
            continue
        path = fill(route.pattern, values)
        if getattr(route.handler, "csrf_exempt", False):
            assert route.is_api, f"{route.method} {route.pattern} is CSRF-exempt but is no bearer-key API route"
            cookie_only = await alice.request(route.method, path, json=API_BODIES.get(route.name or "", {}))
            assert cookie_only.status == 401, f"{route.pattern} accepts a session cookie instead of an API key"
            continue
        for browser, attack, extra in attacks:
            answer = await browser.request(route.method, path, data={**FORM, **extra})
            assert answer.status == 403, f"{route.method} {route.pattern} accepted {attack}: {answer.status}"
        header = await alice.request(route.method, path, data=FORM, headers={"X-CSRF-Token": "A" * 43})
        assert header.status == 403
        checked += 1
    assert checked >= 8

    def look(session: Session):
        assert session.scalar(select(func.count(AuditEvent.id))) == audited, "a refused request did something"

    await db.read(orm(look))
    assert await world.ticket_state() == before
    assert (await alice.get("/tickets")).status == 200, "a refused sign-out signed Alice out"
    assert (await (await new_browser()).sign_in(unused)).status == 303, "a refused exchange used the link up"


REDIRECT_CORPUS = [
    "//evil.test", "///evil.test", "////evil.test", "/\\evil.test", "\\\\evil.test", "\\/evil.test", "/\\/evil.test",
    "https://evil.test", "http://evil.test/tickets", "HTTPS://EVIL.TEST/", "https:evil.test", "https:/evil.test",
    "javascript:alert(1)", "JaVaScRiPt:alert(document.domain)", "data:text/html,<script>alert(1)</script>",
    "/%2F%2Fevil.test", "/%2f%2fevil.test", "/%5Cevil.test", "/%5c%5cevil.test", "%2F%2Fevil.test",
    "/%252F%252Fevil.test", "/%09/evil.test", "/\t/evil.test", "/%0a/evil.test", "/\r\n/evil.test",
    " //evil.test", "\x00//evil.test", "/ /evil.test", "//evil.test@portal.example.test",
    "//portal.example.test@evil.test", "http://portal.example.test@evil.test/", "//evil\u3002test",
    "\uff0f\uff0fevil.test", "/tickets/../..//evil.test", "/.//evil.test", "//%65vil.test",
    "/\u2215\u2215evil.test", "https://evil.test\\@portal.example.test", "/tickets\r\nLocation: https://evil.test",
]
Door = Callable[[World, NewBrowser, str], Awaitable[Seen]]


async def via_login_page(world: World, new_browser: NewBrowser, target: str) -> Seen:
    browser = await signed_in(new_browser, world, "alice")
    return await browser.request("GET", "/login", params={"next": target})


async def via_link(world: World, new_browser: NewBrowser, target: str) -> Seen:
    # Every caller validates before storing a return path; a NUL cannot even be stored on PostgreSQL.
    stored = target.replace("\x00", "")
    return await (await new_browser()).sign_in(await world.link(world.alice, return_path=stored))


async def via_login_form(world: World, new_browser: NewBrowser, target: str) -> Seen:
    browser = await new_browser()
    await browser.post_form("/login", {"email": OWNER, "next": target})
    return await browser.exchange((await sent_signin_emails(world.db, world.settings))[-1].token)


async def via_code(world: World, new_browser: NewBrowser, target: str) -> Seen:
    issued = await world.link(world.alice, purpose=LinkPurpose.SIGNIN)
    return await (await new_browser()).post_form("/code", {"email": OWNER, "code": issued.code, "next": target})


async def via_password(world: World, new_browser: NewBrowser, target: str) -> Seen:
    return await (await new_browser()).post_form("/login/password",
                                                 {"email": OWNER, "password": PASSWORD, "next": target})


async def via_sso(world: World, new_browser: NewBrowser, target: str) -> Seen:
    now = int(time.time())
    claims = {"email": OWNER, "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex, "return_to": target}
    return await (await new_browser()).get("/sso/jwt", params={"jwt": jwt.encode(claims, SSO_SECRET, "HS256")})


DOORS: dict[str, Door] = {
    "GET /login?next=": via_login_page, "a link's return path": via_link, "POST /login next": via_login_form,
    "POST /code next": via_code, "POST /login/password next": via_password, "SSO return_to": via_sso,
}


async def set_password(world: World) -> None:
    stored = ContactPassword(contact_id=world.alice.id, password_hash=await hash_password(PASSWORD))
    await world.db.write(lambda session: session.add(stored))


@pytest.mark.parametrize("door", DOORS)
async def test_no_redirect_parameter_sends_anyone_off_the_portal(
    world: World, new_browser: NewBrowser, door: str
) -> None:
    await set_password(world)
    for target in REDIRECT_CORPUS:
        answer = await DOORS[door](world, new_browser, target)
        assert answer.status in (302, 303), (target, answer.status)
        assert lands_on(answer.headers["Location"]) == PORTAL_HOST, (door, target, answer.headers["Location"])


async def test_no_page_redirects_off_the_portal_whatever_its_query_says(
    world: World, new_browser: NewBrowser, db: Database
) -> None:
    app = portal_app(world.settings, db)
    visitor, alice = await new_browser(), await signed_in(new_browser, world, "alice")
    values = {**world.owner_ids(), "token": (await world.link(world.alice)).token, "slug": "none"}
    names = ("next", "return_to", "return", "redirect", "redirect_uri", "url", "continue", "back", "to")
    for route in routes_of(app):
        if route.method != "GET":
            continue
        for browser in (visitor, alice):
            for target in ("//evil.test", "https://evil.test", "/\\evil.test"):
                answer = await browser.get(fill(route.pattern, values), params={name: target for name in names})
                if 300 <= answer.status < 400:
                    assert lands_on(answer.headers["Location"]) == PORTAL_HOST, (route.pattern, answer.headers)


FIXATION_DOORS = {
    "link": via_link, "code": via_code, "password": via_password, "SSO": via_sso,
}


@pytest.mark.parametrize("door", FIXATION_DOORS)
async def test_signing_in_never_keeps_a_session_id_planted_by_someone_else(
    world: World, new_browser: NewBrowser, door: str
) -> None:
    await set_password(world)
    mallory = await signed_in(new_browser, world, "mallory")
    for planted in ("attacker-chosen-session-id-0123456789abcdef", mallory.cookie("wicket")):
        assert planted
        victim_jar: list[Browser] = []

        async def planted_browser(
            _settings: Settings | None = None, planted: str = planted, jar: list[Browser] = victim_jar
        ) -> Browser:
            browser = await new_browser()
            browser.plant_cookie("wicket", planted)
            jar.append(browser)
            return browser

        answer = await FIXATION_DOORS[door](world, planted_browser, "/tickets")
        [victim] = victim_jar
        answer = await victim.agree_to_switch(answer)  # Mallory's own session is asked about first
        assert answer.status == 303
        assert victim.cookie("wicket") not in (None, planted), "the session id did not rotate at sign-in"
        assert (await victim.get("/tickets")).status == 200
        attacker = await new_browser()
        attacker.plant_cookie("wicket", planted)
        assert (await attacker.get("/tickets")).status == 302, "the planted id signs someone in"


async def secure_browser(aiohttp_client: Any, db: Database, settings: Settings, seen: list[Seen]) -> Browser:
    """A browser on an https-configured portal that, like a real one on https, sends Secure cookies."""
    server = TestServer(portal_app(settings, db))
    await server.start_server(**runner_options())
    jar = CookieJar(unsafe=True, treat_as_secure_origin=[str(server.make_url("/")).rstrip("/")])
    return Browser(await aiohttp_client(server, cookie_jar=jar), seen)


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_every_cookie_is_httponly_lax_host_only_and_over_https_secure_and_host_prefixed(
    world: World, aiohttp_client: Any, db: Database, seen: list[Seen], scheme: str
) -> None:
    settings = with_settings(world.settings, public_url=f"{scheme}://{PORTAL_HOST}")
    browser = await secure_browser(aiohttp_client, db, settings, seen)
    await browser.get("/login")
    await browser.post_form("/login", {"email": OWNER})
    await browser.post_form("/code", {"email": OWNER, "code": "WRONG-CODE"})
    await browser.sign_in(await world.link(world.alice))
    await browser.get("/tickets")
    await browser.post_form("/logout", {}, page="/tickets")
    await browser.get("/no-such-page")
    cookies = [header for answer in seen for header in answer.headers.getall("Set-Cookie", [])]
    names = {cookie.split("=", 1)[0] for cookie in cookies}
    assert names == ({"__Host-wicket", "__Host-wicket-csrf"} if scheme == "https" else {"wicket", "wicket-csrf"})
    for cookie in cookies:
        attributes = {part.strip().split("=", 1)[0].lower(): part.strip() for part in cookie.split(";")[1:]}
        assert "httponly" in attributes and attributes["samesite"].lower() == "samesite=lax", cookie
        assert attributes["path"] == "Path=/" and "domain" not in attributes, cookie
        assert ("secure" in attributes) == (scheme == "https"), cookie
        if "max-age" in attributes:
            assert int(attributes["max-age"].split("=")[1]) <= settings.session_absolute_days * 86_400


def assert_security_headers(answer: Seen, *, https: bool) -> None:
    where = f"{answer.method} {answer.path} ({answer.status})"
    headers = answer.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    if answer.path.startswith("/static/"):
        return
    policy = headers.get("Content-Security-Policy", "")
    scripts = next((d for d in policy.split(";") if d.strip().startswith(("script-src", "default-src"))), "")
    assert scripts and "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, (where, policy)
    assert "frame-ancestors 'none'" in policy or "sandbox" in policy, (where, policy)
    assert headers.get("X-Frame-Options") == "DENY", where
    secret_in_url = answer.path.startswith(("/l/", "/sso/"))
    expected = {"no-referrer"} if secret_in_url else {"no-referrer", "same-origin", "strict-origin"}
    assert headers.get("Referrer-Policy") in expected, (where, headers.get("Referrer-Policy"))
    cache = headers.get("Cache-Control", "")
    if answer.path != "/brand.css":  # the brand's colours are public and cacheable
        assert "no-store" in cache or "private" in cache, (where, cache)
    if https:
        assert headers.get("Strict-Transport-Security", "").startswith("max-age="), where


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_every_page_and_every_error_carries_the_security_headers(
    world: World, aiohttp_client: Any, db: Database, seen: list[Seen], scheme: str
) -> None:
    settings = with_settings(world.settings, public_url=f"{scheme}://{PORTAL_HOST}")
    visitor = await secure_browser(aiohttp_client, db, settings, seen)
    alice = await secure_browser(aiohttp_client, db, settings, seen)
    await alice.sign_in(await world.link(world.alice))
    values = {**world.owner_ids(), "token": (await world.link(world.alice)).token, "slug": "no-such-article"}
    for route in routes_of(portal_app(settings, db)):
        if route.method in ("GET", "HEAD"):
            for browser in (visitor, alice):
                await browser.request(route.method, fill(route.pattern, values))
    await visitor.get("/static/portal.css")
    await visitor.get("/no-such-page")
    await visitor.request("PUT", "/login")
    await visitor.request("POST", "/login", data={"email": OWNER})
    await visitor.get("/l/not-a-real-token")
    await visitor.request("POST", f"/l/{values['token']}", data={})
    await visitor.get("/sso/jwt", params={"jwt": "not.a.token"})
    statuses = {answer.status for answer in seen}
    assert {200, 302, 403, 404, 405} <= statuses, statuses
    for answer in seen:
        assert_security_headers(answer, https=scheme == "https")
