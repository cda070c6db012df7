"""When the database goes away, the SMTP listener answers 451 4.3.0 and stores nothing,
the portal answers a friendly 503, liveness stays green, and when the database returns
all of it works again without a restart: the same listener accepts, the same portal
signs people in, and the processor picks up where it left off.

On PostgreSQL, Wicket talks to the server through a TCP proxy that the test cuts (every
connection reset, new ones refused) and restores. On SQLite, another connection holds the
write lock, so every write times out as "database is locked" while reads go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from gateway.models import InboundEmail, InboundStatus, Mailbox
from gateway.settings import Settings
from gateway.storage.database import Database, open_database, orm
from tests.portal.helpers import ALICE, add_contact, form_token, with_settings
from tests.reliability.conftest import PortalOn
from tests.reliability.faults import SqliteWriteLock, TcpProxy
from tests.support import Server, send, simple_mail

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


@dataclass
class Outage:
    """The database Wicket uses, and how to take it away and give it back."""

    db: Database
    cut: Callable[[], Awaitable[None]]
    restore: Callable[[], Awaitable[None]]
    reads_survive: bool  # a held SQLite write lock still lets readers read


@pytest.fixture
async def outage(
    db: Database, settings: Settings, database_url: tuple[str, dict[str, object]]
) -> AsyncIterator[Outage]:
    if db.is_sqlite:
        path = make_url(settings.database_url).database
        assert path is not None
        lock = SqliteWriteLock(Path(path))

        async def hold() -> None:
            await asyncio.to_thread(lock.hold)

        async def release() -> None:
            await asyncio.to_thread(lock.release)

        yield Outage(db, hold, release, reads_survive=True)
        lock.close()
        return
    url = make_url(database_url[0])
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied = open_database(
        settings, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), **database_url[1]
    )
    yield Outage(proxied, proxy.cut, proxy.restore, reads_survive=False)
    await proxied.dispose()
    await proxy.close()


async def statuses(db: Database) -> list[str]:
    def look(session: Session):
        return list(session.scalars(select(InboundEmail.status).order_by(InboundEmail.id)).all())

    return await db.read(orm(look))


@contextlib.asynccontextmanager
async def phase(name: str, seconds: float) -> AsyncIterator[None]:
    """Fail with the phase's name, not the whole test's timeout, when a phase hangs."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        pytest.fail(f"{name} took more than {seconds:.0f}s")


async def wait_for(check: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return await check()


async def test_while_the_database_is_away_smtp_says_451_the_portal_503_and_both_recover_by_themselves(
    outage: Outage, db: Database, settings: Settings, mailbox: Mailbox, portal_on: PortalOn
) -> None:
    await add_contact(db)
    gateway = Gateway(with_settings(settings, process_poll_seconds=0.2), outage.db, resolver=FixedResolver())
    await gateway.start()
    listener = await gateway.serve_smtp(host="127.0.0.1", port=0)
    smtp: Server = listener.sockets[0].getsockname()[:2]
    gateway.run_processor()
    browser = await portal_on(outage.db)
    token = await form_token(browser, "/login")
    try:
        assert (await send(smtp, simple_mail("before the outage")))[0] == 250

        async with phase("the outage", 50):
            await outage.cut()
            (code, reply), login = await asyncio.gather(
                send(smtp, simple_mail("during the outage")),
                browser.post("/login", data={"email": ALICE, "csrf_token": token}),
            )
            assert (code, reply[:5]) == (451, b"4.3.0")
            page = await login.text()
            assert login.status == 503 and login.headers["Retry-After"]
            assert login.content_type == "text/html" and "Back in a moment" in page
            assert "Traceback" not in page and "Error" not in page and "sqlalchemy" not in page.lower()
            assert (await browser.get("/healthz")).status == 200
            ready = await browser.get("/readyz")
            assert ready.status == (200 if outage.reads_survive else 503)

        async with phase("the recovery", 25):
            await outage.restore()
            assert (await send(smtp, simple_mail("after the outage")))[0] == 250
            login = await browser.post("/login", data={"email": ALICE, "csrf_token": token})
            assert login.status == 200 and "Check your email" in await login.text()
            ready = await browser.get("/readyz")
            assert ready.status == 200 and (await ready.json())["database"] == "ok"

        async def both_delivered() -> bool:
            return await statuses(db) == [InboundStatus.DELIVERED, InboundStatus.DELIVERED]

        assert await wait_for(both_delivered, seconds=30), await statuses(db)

        def look(session: Session):
            during = session.scalar(
                select(func.count(InboundEmail.id)).where(InboundEmail.raw.contains(b"during the outage"))
            )
            return during

        during = await db.read(orm(look))
        assert during == 0  # refused means not stored, not even half
    finally:
        async with phase("stopping the gateway", 15):
            await gateway.stop()
