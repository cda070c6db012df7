"""Fixtures for the fault tests: a portal client on any `Database`, and a database that
separate `wicket serve` processes can open by URL (a file on SQLite; on PostgreSQL a
database of its own, dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.db import Database
from gateway.settings import Settings
from portal.app import create_app, runner_options
from tests.portal.helpers import Client

PortalOn = Callable[[Database], Awaitable[Client]]


@pytest.fixture
def portal_on(aiohttp_client: Any, settings: Settings) -> PortalOn:
    """`await portal_on(db)`: a browser on the real portal app, run like production's."""

    async def start(db: Database) -> Client:
        server = TestServer(create_app(settings, db=db))
        await server.start_server(**runner_options())
        client: Client = await aiohttp_client(server)
        return client

    return start


@pytest.fixture
async def shared_url(tmp_path: Path) -> AsyncIterator[str]:
    """A database URL other processes can open with nothing but the URL."""
    base = os.environ.get("WICKET_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
        return
    name = f"wicket_rel_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()
