"""Fixtures for the outbound tests: a scripted relay on a free port of 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiosmtpd.smtp import SMTP

from tests.outbound.relays import Relay


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    script = Relay()

    def protocol() -> SMTP:
        return SMTP(script, authenticator=script.authenticate, auth_require_tls=False)

    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", 0)
    script.port = server.sockets[0].getsockname()[1]
    yield script
    server.close()
    await server.wait_closed()
