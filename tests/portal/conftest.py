"""Portal fixtures: the real app under pytest-aiohttp's test server.

`client` talks to `create_app(settings, db=db)` through the same runner options as
production (the redacting access logger); `make_client(settings)` opens another browser,
optionally on changed settings. Helpers live in tests/portal/helpers.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.models import Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database
from portal.app import create_app, runner_options
from tests.portal.helpers import Client, MakeClient


@pytest.fixture
def app(settings: Settings, db: Database, mailbox: Mailbox) -> web.Application:
    return create_app(settings, db=db)


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
        return await serve(create_app(settings, db=db))

    return make


@pytest.fixture
async def client(serve: Callable[[web.Application], Awaitable[Client]], app: web.Application) -> Client:
    return await serve(app)
