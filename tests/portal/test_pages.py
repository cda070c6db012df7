"""What every page gets: security headers, the brand, CSRF tokens in forms, friendly errors."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web

from gateway.cli.runtime import Gateway
from gateway.settings import Settings
from gateway.storage.database import Database, open_database
from portal import keys
from portal.app import create_app
from tests.portal.helpers import Client, add_contact, issue, link_path, sign_in_with_link
from tests.support import portal_app

PAGES = ["/login", "/code", "/static/portal.css", "/brand.css", "/no-such-page", "/l/" + "x" * 43]


@pytest.mark.parametrize("path", PAGES)
async def test_every_response_carries_the_security_headers(client: Client, path: str) -> None:
    response = await client.get(path, allow_redirects=False)
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer")


async def test_pages_use_no_inline_script_or_style(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db)
    await sign_in_with_link(client, await issue(db, settings, alice))
    for path in ("/login", "/code", "/tickets", "/account/password", "/logout", "/no-such-page"):
        body = await (await client.get(path)).text()
        assert "<script" not in body and "<style" not in body and " style=" not in body, path


async def test_pages_are_drawn_in_the_brand(client: Client) -> None:
    body = await (await client.get("/login")).text()
    assert "<title>Sign in · Example Support</title>" in body
    assert 'href="/brand.css"' in body and "/static/portal.css?v=" in body
    css = await (await client.get("/brand.css")).text()
    assert "--brand: #2454d6" in css
    static = await client.get("/static/portal.css")
    assert static.status == 200 and "--brand" in await static.text()


async def test_every_form_carries_a_csrf_token(client: Client, db: Database, settings: Settings) -> None:
    alice = await add_contact(db)
    issued = await issue(db, settings, alice)
    pages = [await (await client.get(p)).text() for p in ("/login", "/code", link_path(issued.token))]
    await sign_in_with_link(client, issued)
    pages += [await (await client.get(p)).text() for p in ("/tickets", "/account/password", "/logout")]
    for body in pages:
        forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", body, re.S)
        assert forms
        assert all('name="csrf_token"' in form for form in forms)


async def test_unknown_page_gets_a_friendly_404(client: Client) -> None:
    response = await client.get("/no-such-page")
    assert response.status == 404
    body = await response.text()
    assert "Page not found" in body and "Example Support" in body


async def test_wrong_method_keeps_its_allow_header(client: Client) -> None:
    response = await client.put("/login")
    assert response.status == 405 and "POST" in response.headers["Allow"]


async def test_unexpected_errors_show_a_friendly_page_without_a_stack_trace(
    serve: Any, settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    app = portal_app(settings, db)

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("internal detail that must not leak")

    app.router.add_get("/broken", broken)
    client = await serve(app)
    response = await client.get("/broken")
    body = await response.text()
    assert response.status == 500
    assert "Something went wrong" in body
    assert "internal detail" not in body and "Traceback" not in body
    assert "unhandled error during GET /broken" in caplog.text


async def test_unreachable_database_gets_a_503_page(serve: Any, settings: Settings) -> None:
    unreachable = open_database(settings, "postgresql+asyncpg://nobody@127.0.0.1:9/nothing")
    client = await serve(portal_app(settings, unreachable))
    for path in ("/l/" + "x" * 43, "/tickets"):
        response = await client.get(path, headers={"Cookie": "wicket=some-session"}, allow_redirects=False)
        assert response.status == 503, path
        assert "briefly unavailable" in await response.text()
        assert response.headers["Retry-After"] == "30"
    await unreachable.dispose()


async def test_create_app_opens_its_own_database_when_none_is_given(
    serve: Any, settings: Settings, db: Database, gateway: Gateway
) -> None:
    app = create_app(settings, processor=gateway.processor)
    client = await serve(app)
    assert (await client.get("/login")).status == 200
    assert app[keys.DB] is not db and app[keys.DB].url.render_as_string() == settings.database_url


async def test_the_portal_has_a_favicon_so_no_page_asks_for_a_missing_one(client: Client) -> None:
    icon = await client.get("/favicon.ico")
    assert icon.status == 200 and icon.content_type == "image/svg+xml" and b"<svg" in await icon.read()
    page = await (await client.get("/login")).text()
    [href] = re.findall(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page)
    assert (await client.get(href)).status == 200


async def test_the_navigation_marks_the_current_page(client: Client, db: Database, settings: Settings) -> None:
    def current(body: str) -> list[str]:
        navigation = body.split('<nav class="nav"', 1)[1].split("</nav>", 1)[0]
        return re.findall(r'<a href="([^"]+)" aria-current="page"', navigation)

    assert current(await (await client.get("/help")).text()) == ["/help"]
    assert current(await (await client.get("/login")).text()) == ["/login"]
    await sign_in_with_link(client, await issue(db, settings, await add_contact(db)))
    assert current(await (await client.get("/tickets")).text()) == ["/tickets"]
    assert current(await (await client.get("/help/search?q=x")).text()) == ["/help"]
    assert current(await (await client.get("/account")).text()) == ["/account"]
    assert current(await (await client.get("/account/password")).text()) == ["/account"]
