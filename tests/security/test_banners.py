"""What Wicket tells a stranger about itself: no software versions, no commands it lacks.

The portal's `Server` header names no framework or version, on any route, on any error,
and on a request so malformed that no route sees it. The SMTP listener's `HELP` lists only
commands it offers: it offers no AUTH, so HELP does not list it, and EHLO does not either.
"""

from __future__ import annotations

import asyncio
import re
import smtplib

from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from gateway.settings import Settings
from gateway.storage.database import Database
from portal.app import start_portal
from tests.security.world import NewBrowser, Seen, World, fill, routes_of
from tests.support import portal_app

SOFTWARE = re.compile(r"aiohttp|python|\d", re.IGNORECASE)


async def test_no_portal_answer_names_the_server_software(
    world: World, new_browser: NewBrowser, db: Database, seen: list[Seen]
) -> None:
    visitor, alice = await new_browser(), await new_browser()
    await alice.sign_in(await world.link(world.alice))
    values = {**world.owner_ids(), "token": (await world.link(world.alice)).token, "slug": "no-such-article"}
    for route in routes_of(portal_app(world.settings, db)):
        for browser in (visitor, alice):
            await browser.request(route.method, fill(route.pattern, values))
    await visitor.get("/static/portal.css")
    await visitor.get("/no-such-page")
    await visitor.request("OPTIONS", "/login")
    statuses = {answer.status for answer in seen}
    assert {200, 302, 403, 404, 405} <= statuses, statuses
    for answer in seen:
        assert not SOFTWARE.search(answer.headers.get("Server", "")), (answer.method, answer.path, answer.headers)


async def raw_http(host: str, port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


async def test_a_request_no_route_sees_gets_no_version_either(settings: Settings, db: Database) -> None:
    runner = await start_portal(settings, db, processor=Gateway(settings, db, resolver=FixedResolver()).processor, host="127.0.0.1", port=0)
    try:
        host, port = runner.addresses[0][:2]
        for request in (
            b"GET / HTTP/1.1\r\nHost: portal.example.test\r\nNo colon here\r\n\r\n",
            b"GET /\x00 HTTP/1.1\r\nHost: portal.example.test\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS to the plain port
        ):
            answer = await raw_http(host, port, request)
            head = answer.split(b"\r\n\r\n")[0].decode("latin-1")
            assert re.match(r"HTTP/1\.[01] 4\d\d ", head), head
            servers = [line for line in head.split("\r\n") if line.lower().startswith("server:")]
            assert not any(SOFTWARE.search(line.partition(":")[2]) for line in servers), head
    finally:
        await runner.cleanup()


def smtp_conversation(server: tuple[str, int]) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP(*server, timeout=10) as client:
        answers = {"HELP before EHLO": client.docmd("HELP")}
        client.ehlo("client.test")
        answers["EHLO features"] = (250, " ".join(client.esmtp_features).encode())
        answers["HELP"] = client.docmd("HELP")
        answers["HELP AUTH"] = client.docmd("HELP", "AUTH")
        answers["AUTH PLAIN"] = client.docmd("AUTH", "PLAIN AGFsaWNlAHNlY3JldA==")
        return answers


async def test_smtp_help_and_ehlo_do_not_offer_auth(smtp_server: tuple[str, int]) -> None:
    answers = await asyncio.to_thread(smtp_conversation, smtp_server)
    assert answers["HELP"][0] == 214 or answers["HELP"][0] == 250, answers
    assert b"MAIL" in answers["HELP"][1] and b"RCPT" in answers["HELP"][1], answers
    for name in ("HELP before EHLO", "EHLO features", "HELP"):
        assert b"AUTH" not in answers[name][1].upper(), (name, answers[name])
    assert answers["HELP AUTH"][0] == 501, answers["HELP AUTH"]
    assert answers["AUTH PLAIN"][0] in (500, 502), answers["AUTH PLAIN"]
