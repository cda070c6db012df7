"""Portal fixtures: the real app under pytest-aiohttp's test server.

`client` talks to the app `wicket serve` would build: `create_app` on the `gateway`
fixture's database and its one Processor, through the same runner options as production
(the redacting access logger); `make_client(settings)` opens another browser, optionally
on changed settings (`tests.support.portal_app`). Helpers live in tests/portal/helpers.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.cli.runtime import Gateway
from gateway.models import Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database
from portal.app import create_app, runner_options
from tests.portal.helpers import Client, MakeClient
from tests.support import portal_app


@pytest.fixture
def app(settings: Settings, gateway: Gateway) -> web.Application:
    return create_app(settings, gateway.db, processor=gateway.processor)


@pytest.fixture
def serve(aiohttp_client: Any) -> Callable[[web.Application], Awaitable[Client]]:
    """`await serve(app)`: a client for `app` on a test server run like production's."""

    async def start(app: web.Application) -> Client:
        server = TestServer(app)
        await server.start_server(**runner_options())
        client: Client = await aiohttp_client(server)
        return client

    return start


@pytest.fixture
def make_client(serve: Callable[[web.Application], Awaitable[Client]], db: Database, mailbox: Mailbox) -> MakeClient:
    """`await make_client(settings)`: another browser, optionally on other settings."""

    async def make(settings: Settings) -> Client:
        return await serve(portal_app(settings, db))

    return make


@pytest.fixture
async def client(serve: Callable[[web.Application], Awaitable[Client]], app: web.Application) -> Client:
    return await serve(app)
