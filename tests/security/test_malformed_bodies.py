"""A broken request body gets the friendly 400 page on every route that takes one.

The sweep walks the URL table (a route added later is swept too): every POST, PUT and
PATCH route gets broken multipart/form-data bodies (a boundary that never appears, a body
cut off mid-part, a Content-Type without a boundary) from a signed-in browser with a valid
CSRF token in the header (and, for the agent API, a valid key), so the only thing wrong is
the body. Each must answer 400, never 500, and no answer may show a traceback.
"""

from __future__ import annotations

import pytest

from tests.security.world import STATE_CHANGING, NewBrowser, World, fill, routes_of
from tests.support import portal_app

pytestmark = pytest.mark.timeout(180)

BOUNDARY = "wicketboundary"
BROKEN_BODIES: dict[str, tuple[str, bytes]] = {
    "a boundary that never appears": (
        f"multipart/form-data; boundary={BOUNDARY}",
        b"--someotherboundary\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nvalue\r\n--someotherboundary--\r\n",
    ),
    "a body cut off mid-part": (
        f"multipart/form-data; boundary={BOUNDARY}",
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nhalf a mess".encode(),
    ),
    "a part without headers": (
        f"multipart/form-data; boundary={BOUNDARY}",
        f"--{BOUNDARY}\r\nno headers here at all\r\n--{BOUNDARY}--\r\n".encode(),
    ),
    "no boundary at all": ("multipart/form-data", b"--x\r\n\r\nvalue\r\n--x--\r\n"),
    "a part without a name": (
        f"multipart/form-data; boundary={BOUNDARY}",
        f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nvalue\r\n--{BOUNDARY}--\r\n".encode(),
    ),
    "an unknown charset": (
        f"multipart/form-data; boundary={BOUNDARY}",
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"message\"\r\n"
        f"Content-Type: text/plain; charset=no-such-charset\r\n\r\nvalue\r\n--{BOUNDARY}--\r\n".encode(),
    ),
}


async def test_every_state_changing_route_answers_a_broken_multipart_body_with_400(
    world: World, new_browser: NewBrowser
) -> None:
    app = portal_app(world.settings, world.db)
    browser = await new_browser()
    await browser.sign_in(await world.link(world.alice))
    csrf = await browser.csrf_token("/tickets")
    unused = await world.link(world.alice)
    values = {**world.owner_ids(), "token": unused.token, "slug": "anything"}
    failures = []
    swept = set()
    for route in routes_of(app):
        if route.method not in STATE_CHANGING - {"DELETE"}:
            continue
        path = fill(route.pattern, values)
        for name, (content_type, body) in BROKEN_BODIES.items():
            headers = {"Content-Type": content_type, "X-CSRF-Token": csrf}
            if route.is_api:
                headers["Authorization"] = f"Bearer {world.tom_key}"
            answer = await browser.request(route.method, path, data=body, headers=headers)
            if answer.status != 400 or "Traceback" in answer.body or 'File "' in answer.body:
                failures.append(f"{route.method} {route.pattern} with {name}: {answer.status}")
        swept.add(f"{route.method} {route.pattern}")
    assert not failures, "\n".join(failures)
    assert {"POST /account/password", "POST /code", "POST /requests/new", "POST /l/{token}"} <= swept
    assert (await browser.get("/tickets")).status == 200, "a broken body changed who is signed in"
