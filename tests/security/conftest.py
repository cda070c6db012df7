"""Fixtures of the security sweep: a populated world (two companies, their contacts,
tickets, attachments, agents and API keys) and fresh browsers on the real portal app that
record every request and response they see."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.cli.runtime import Gateway
from gateway.models import Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database
from portal.app import runner_options
from tests.portal.helpers import with_settings
from tests.security.world import SSO_SECRET, Browser, NewBrowser, Seen, World, build_world
from tests.support import portal_app


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_settings(
        settings, sso_jwt_algorithm="HS256", sso_jwt_secret=SSO_SECRET,
        rate_limit_mail_per_address=10_000, rate_limit_mail_per_ip=10_000,
        rate_limit_failures_per_address=10_000, rate_limit_failures_per_ip=10_000,
    )


@pytest.fixture
async def world(gateway: Gateway, db: Database, settings: Settings, mailbox: Mailbox) -> World:
    return await build_world(gateway, db, settings, mailbox)


@pytest.fixture
def seen() -> list[Seen]:
    return []


@pytest.fixture
def new_browser(aiohttp_client: Any, db: Database, settings: Settings, seen: list[Seen]) -> NewBrowser:
    """`await new_browser(settings, db)`: a fresh browser (own cookie jar) on the real app."""

    async def make(browser_settings: Settings | None = None, browser_db: Database | None = None) -> Browser:
        server = TestServer(portal_app(browser_settings or settings, browser_db or db))
        await server.start_server(**runner_options())
        return Browser(await aiohttp_client(server), seen)

    return make
