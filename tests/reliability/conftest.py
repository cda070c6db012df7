"""Fixtures for the fault tests: a portal client on any `Database` (the database that
separate `wicket serve` processes open by URL is the root conftest's `shared_url`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.settings import Settings
from gateway.storage.database import Database
from portal.app import runner_options
from tests.portal.helpers import Client
from tests.support import portal_app

PortalOn = Callable[[Database], Awaitable[Client]]


@pytest.fixture
def portal_on(aiohttp_client: Any, settings: Settings) -> PortalOn:
    """`await portal_on(db)`: a browser on the real portal app, run like production's."""

    async def start(db: Database) -> Client:
        server = TestServer(portal_app(settings, db))
        await server.start_server(**runner_options())
        client: Client = await aiohttp_client(server)
        return client

    return start


