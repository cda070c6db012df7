"""Per-IP limits behind a real reverse proxy.

A small aiohttp reverse proxy runs on 127.0.0.1 in front of the portal, as nginx or Caddy
would: it passes every request on and appends the client's address to `X-Forwarded-For`
(or writes a `Forwarded` header), taking that address from what each test browser says it
is. With `WICKET_TRUSTED_PROXIES` naming the proxy, limits count each real client;
without it every client shares the proxy's address, and the portal says so in its log.
Whatever the limits, a valid magic link always signs its holder in.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import jwt
import pytest
from aiohttp import ClientSession, DummyCookieJar, web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from gateway.models import Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database
from portal.app import runner_options
from tests.portal.helpers import add_contact, issue, with_settings
from tests.security.world import SSO_SECRET, Browser, Seen
from tests.support import portal_app

CLIENT_ADDRESS = "X-Test-Client-Address"  # what the test browser says its address is; the proxy strips it
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
                        "host", "upgrade", "te", "trailer", "proxy-connection"})  # fmt: skip
A, B = "203.0.113.7", "198.51.100.4"
LIMIT = 3

Proxied = Callable[[str], Awaitable[Browser]]
UPSTREAM = web.AppKey("upstream", ClientSession)


def reverse_proxy(upstream: str, style: str) -> web.Application:
    """nginx's `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for` (or, with style
    "forwarded", `Forwarded: for=...` appended the same way), with the client's address taken
    from the test browser's own header."""
    app = web.Application()

    async def upstream_session(app: web.Application) -> AsyncIterator[None]:
        app[UPSTREAM] = ClientSession(cookie_jar=DummyCookieJar(), auto_decompress=False)
        yield
        await app[UPSTREAM].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        client = request.headers.get(CLIENT_ADDRESS, request.remote or "")
        headers = CIMultiDict((k, v) for k, v in request.headers.items()
                              if k.lower() not in HOP_BY_HOP and k != CLIENT_ADDRESS)  # fmt: skip
        headers["Host"] = request.host
        if style == "x-forwarded-for":
            previous = request.headers.get("X-Forwarded-For")
            headers["X-Forwarded-For"] = f"{previous}, {client}" if previous else client
        else:
            node = f'"[{client}]"' if ":" in client else client
            previous = request.headers.get("Forwarded")
            headers["Forwarded"] = f"{previous}, for={node};proto=http" if previous else f"for={node};proto=http"
        async with app[UPSTREAM].request(
            request.method, upstream + request.path_qs, headers=headers, data=await request.read(),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            kept = CIMultiDict((k, v) for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP)
            return web.Response(status=answer.status, headers=kept, body=body)

    app.cleanup_ctx.append(upstream_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


@pytest.fixture
def limits(settings: Settings) -> Settings:
    return with_settings(
        settings, rate_limit_mail_per_ip=LIMIT, rate_limit_failures_per_ip=LIMIT,
        rate_limit_mail_per_address=1000, rate_limit_failures_per_address=1000,
    )  # fmt: skip


@pytest.fixture
def behind_proxy(aiohttp_client: Any, db: Database, mailbox: Mailbox, seen: list[Seen]) -> Callable[..., Proxied]:
    """`browser = await (await behind_proxy(settings))(address)`: a browser at `address`
    that reaches the real portal (run on `settings`) only through the proxy."""

    async def start(portal_settings: Settings, style: str = "x-forwarded-for") -> Proxied:
        portal = TestServer(portal_app(portal_settings, db), host="127.0.0.1")
        await portal.start_server(**runner_options())
        proxy = TestServer(reverse_proxy(str(portal.make_url("")).rstrip("/"), style), host="127.0.0.1")
        await proxy.start_server()

        async def browser(address: str) -> Browser:
            return Browser(await aiohttp_client(proxy, headers={CLIENT_ADDRESS: address}), seen)

        return browser

    return start


async def junk_logins(browser: Browser, count: int) -> list[int]:
    return [(await browser.post_form("/login", {"email": f"junk{n}@example.test"}, page="/login")).status
            for n in range(count)]  # fmt: skip


async def wrong_codes(browser: Browser, count: int) -> list[int]:
    return [(await browser.post_form("/code", {"email": f"junk{n}@example.test", "code": "ABCD-EFGH"})).status
            for n in range(count)]  # fmt: skip


async def test_behind_a_trusted_proxy_one_clients_junk_does_not_lock_out_another(
    behind_proxy: Callable[..., Proxied], limits: Settings
) -> None:
    at = await behind_proxy(with_settings(limits, trusted_proxies=["127.0.0.1/32"]))
    mallory, bob = await at(A), await at(B)
    assert await junk_logins(mallory, LIMIT + 1) == [200] * LIMIT + [429]
    assert await wrong_codes(mallory, LIMIT + 1) == [400] * LIMIT + [429]
    assert await junk_logins(bob, 1) == [200]
    assert await wrong_codes(bob, 1) == [400]


async def test_a_client_cannot_pick_its_own_address_by_sending_forwarding_headers(
    behind_proxy: Callable[..., Proxied], limits: Settings
) -> None:
    at = await behind_proxy(with_settings(limits, trusted_proxies=["127.0.0.1/32"]))
    mallory = await at(A)
    statuses = []
    for n in range(LIMIT + 1):  # a new made-up address each time, in front of the proxy's hop
        token = await mallory.csrf_token("/login")
        answer = await mallory.request("POST", "/login", data={"email": f"junk{n}@example.test", "csrf_token": token},
                                       headers={"X-Forwarded-For": f"192.0.2.{n + 1}"})
        statuses.append(answer.status)
    assert statuses == [200] * LIMIT + [429]


async def test_the_forwarded_header_is_read_when_the_proxy_sends_that(
    behind_proxy: Callable[..., Proxied], limits: Settings
) -> None:
    at = await behind_proxy(
        with_settings(limits, trusted_proxies=["127.0.0.0/8"], trusted_proxy_header="Forwarded"), "forwarded"
    )
    mallory, bob, carol = await at(A), await at(B), await at("2001:db8::17")
    assert await junk_logins(mallory, LIMIT + 1) == [200] * LIMIT + [429]
    assert await junk_logins(bob, 1) == [200]
    assert await junk_logins(carol, 1) == [200]


@pytest.mark.parametrize("trusted", [[], ["127.0.0.1/32"]], ids=["proxy not trusted", "proxy trusted"])
async def test_a_valid_link_signs_its_holder_in_while_their_address_is_limited(
    behind_proxy: Callable[..., Proxied], limits: Settings, db: Database, trusted: list[str]
) -> None:
    at = await behind_proxy(with_settings(limits, trusted_proxies=trusted))
    mallory, alice = await at(A), await at(A)  # the same address (or the same proxy) as the junk
    assert (await wrong_codes(mallory, LIMIT + 1))[-1] == 429
    issued = await issue(db, limits, await add_contact(db))
    answer = await alice.exchange(issued.token)
    assert answer.status == 303 and answer.headers["Location"].startswith("/tickets")
    assert (await alice.get("/tickets")).status == 200
    # unknown tokens still count, and are still refused while the address is limited
    refused = await mallory.post_form("/l/" + "x" * 43, {}, page="/login")
    assert refused.status == 429


async def test_forwarding_headers_from_an_untrusted_peer_are_reported_once(
    behind_proxy: Callable[..., Proxied], limits: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    at = await behind_proxy(limits)
    with caplog.at_level(logging.WARNING):
        browser = await at(A)
        await browser.get("/login")
        await browser.get("/code")
        await junk_logins(browser, 2)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "WICKET_TRUSTED_PROXIES" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert "X-Forwarded-For" in warnings[0].getMessage() and "127.0.0.1" in warnings[0].getMessage()


async def test_no_warning_without_forwarding_headers_or_from_a_trusted_proxy(
    behind_proxy: Callable[..., Proxied], limits: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    at = await behind_proxy(with_settings(limits, trusted_proxies=["127.0.0.1/32"]))
    with caplog.at_level(logging.WARNING):
        await (await at(A)).get("/login")
    assert not [r for r in caplog.records if "WICKET_TRUSTED_PROXIES" in r.getMessage()]


async def test_an_ipv6_client_cannot_escape_the_limit_by_moving_within_its_network(
    behind_proxy: Callable[..., Proxied], limits: Settings
) -> None:
    """An IPv6 subscriber gets a whole /64 and may use any address in it: it counts as one."""
    at = await behind_proxy(with_settings(limits, trusted_proxies=["127.0.0.1/32"]))
    statuses = []
    for n in range(LIMIT + 1):
        statuses += await junk_logins(await at(f"2001:db8:5:6::{n + 1:x}"), 1)
    assert statuses == [200] * LIMIT + [429]
    assert await junk_logins(await at("2001:db8:5:7::1"), 1) == [200]  # the next /64 is someone else
    assert await junk_logins(await at("::ffff:203.0.113.7"), LIMIT) == [200] * LIMIT
    assert await junk_logins(await at("203.0.113.7"), 1) == [429]  # the same IPv4 client


async def test_a_valid_sso_handoff_signs_its_holder_in_while_their_address_is_limited(
    behind_proxy: Callable[..., Proxied], limits: Settings
) -> None:
    sso = with_settings(limits, sso_jwt_algorithm="HS256", sso_jwt_secret=SSO_SECRET)
    at = await behind_proxy(sso)
    mallory, carol = await at(A), await at(A)
    assert (await wrong_codes(mallory, LIMIT + 1))[-1] == 429
    now = int(time.time())
    claims = {"email": "carol@example.test", "name": "Carol", "iat": now, "exp": now + 120, "jti": uuid.uuid4().hex}
    answer = await carol.get("/sso/jwt", params={"jwt": jwt.encode(claims, SSO_SECRET, algorithm="HS256")})
    assert answer.status == 303 and answer.headers["Location"] == "/tickets"
    forged = await mallory.get("/sso/jwt", params={"jwt": jwt.encode(claims, "x" * 40, algorithm="HS256")})
    assert forged.status == 429
