"""Several Wicket processes on one database: workers share a backlog, a killed worker's
rows are reclaimed, and SMTP-only nodes feed the same queue.

The processes are real `wicket serve --role …` subprocesses; the database is a file of
its own on SQLite, or a database of its own on PostgreSQL, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.inbound.dns import FixedResolver
from gateway.directory.mailboxes import add_mailbox
from gateway.models import InboundEmail, InboundStatus, Message, Ticket
from gateway.settings import Settings
from gateway.storage.database import Database, open_database, orm
from tests.portal.helpers import add_contact
from tests.portal.story import post_multipart, signed_in
from tests.support import SUPPORT, create_schema

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

THREADS, PER_THREAD = 200, 5
BACKLOG = THREADS * PER_THREAD


@pytest.fixture
async def node_env(shared_url: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    env = {
        **os.environ,
        "WICKET_DATABASE_URL": shared_url,
        "WICKET_VAR_DIR": str(tmp_path / "var"),
        "WICKET_SECRET_KEYS": '["nodes-test-key"]',
        "WICKET_SENDER_CHECKS": "false",  # no DNS from tests (the checks have tests/inbound/test_sender_verdicts.py)
        "WICKET_PROCESS_POLL_SECONDS": "0.1",
        "WICKET_PROCESS_LEASE_SECONDS": "3",
        "WICKET_OUTBOUND_SENDER": "memory",
    }
    settings = Settings(database_url=shared_url, secret_keys=["nodes-test-key"], var_dir=tmp_path / "var")
    db = open_database(settings)
    await create_schema(db)
    await db.write(lambda session: add_mailbox(session, SUPPORT, "Example Support"))
    await db.dispose()
    yield env


@pytest.fixture
def nodes(node_env: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def start_node(nodes: list[subprocess.Popen[bytes]], env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    with node_log(env, len(nodes)).open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "gateway", "serve", *args], env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
    nodes.append(process)
    return process


def node_log(env: dict[str, str], index: int) -> Path:
    return Path(env["WICKET_VAR_DIR"]).parent / f"node-{index}.log"


def thread_message(thread: int, index: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"customer{thread}@customer.test"
    message["To"] = SUPPORT
    message["Subject"] = f"Thread {thread}" if index == 0 else f"Re: Thread {thread}"
    message["Message-ID"] = f"<t{thread}-m{index}@customer.test>"
    if index:
        message["In-Reply-To"] = f"<t{thread}-m{index - 1}@customer.test>"
        message["References"] = " ".join(f"<t{thread}-m{i}@customer.test>" for i in range(index))
    message.set_content(f"Message {index} of thread {thread}.")
    return message.as_bytes()


async def store_backlog(url: str) -> None:
    settings = Settings(database_url=url, secret_keys=["nodes-test-key"])
    gateway = Gateway(settings, resolver=FixedResolver())
    await gateway.start()
    try:
        # Interleave threads so every batch mixes originals and replies.
        for index in range(PER_THREAD):
            await asyncio.gather(*(
                gateway.receive(thread_message(t, index), mail_from=f"customer{t}@customer.test", rcpt_tos=(SUPPORT,))
                for t in range(THREADS)
            ))
    finally:
        await gateway.stop()
        await gateway.db.dispose()


async def counts(db: Database) -> dict[str, int]:
    def look(session: Session):
        rows = session.execute(select(InboundEmail.status, func.count()).group_by(InboundEmail.status))
        return {status: n for status, n in rows}

    return await db.read(orm(look))


async def wait_until_delivered(db: Database, expected: int, *, seconds: float = 360) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen = await counts(db)
        if seen.get(InboundStatus.DELIVERED, 0) >= expected:
            return seen
        await asyncio.sleep(0.2)
    return await counts(db)


async def assert_each_message_once_and_threaded(db: Database) -> None:
    def look(session: Session):
        messages = session.scalar(select(func.count(Message.id)))
        distinct_inbound = session.scalar(select(func.count(Message.inbound_email_id.distinct())))
        per_ticket = session.execute(
            select(func.count(Message.id)).group_by(Message.ticket_id)
        ).scalars().all()
        tickets = session.scalar(select(func.count(Ticket.id)))
        return messages, distinct_inbound, per_ticket, tickets

    messages, distinct_inbound, per_ticket, tickets = await db.read(orm(look))
    assert messages == distinct_inbound == BACKLOG
    assert tickets == THREADS
    assert set(per_ticket) == {PER_THREAD}


async def test_two_workers_share_a_backlog_and_thread_it_like_one(
    shared_url: str, node_env: dict[str, str], nodes: list[subprocess.Popen[bytes]]
) -> None:
    await store_backlog(shared_url)
    start_node(nodes, node_env, "--role", "worker")
    start_node(nodes, node_env, "--role", "worker")
    db = open_database(Settings(database_url=shared_url))
    try:
        seen = await wait_until_delivered(db, BACKLOG)
        assert seen == {InboundStatus.DELIVERED: BACKLOG}
        await assert_each_message_once_and_threaded(db)
    finally:
        await db.dispose()


async def test_a_killed_worker_leaves_nothing_behind(
    shared_url: str, node_env: dict[str, str], nodes: list[subprocess.Popen[bytes]]
) -> None:
    await store_backlog(shared_url)
    victim = start_node(nodes, node_env, "--role", "worker")
    db = open_database(Settings(database_url=shared_url))
    try:
        deadline = time.monotonic() + 60
        while (await counts(db)).get(InboundStatus.DELIVERED, 0) < 50 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        assert (await counts(db)).get(InboundStatus.DELIVERED, 0) < BACKLOG
        start_node(nodes, node_env, "--role", "worker")
        seen = await wait_until_delivered(db, BACKLOG)
        assert seen == {InboundStatus.DELIVERED: BACKLOG}
        await assert_each_message_once_and_threaded(db)
    finally:
        await db.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"node exited; its log says:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


async def test_two_smtp_nodes_feed_one_worker(
    shared_url: str, node_env: dict[str, str], nodes: list[subprocess.Popen[bytes]]
) -> None:
    ports = [free_port(), free_port()]
    for port in ports:
        node = start_node(nodes, {**node_env, "WICKET_SMTP_PORT": str(port)}, "--role", "smtp")
        await asyncio.to_thread(wait_for_port, port, node, node_log(node_env, len(nodes) - 1))
    start_node(nodes, node_env, "--role", "worker")

    def send_all() -> list[int]:
        codes = []
        for n in range(20):
            with smtplib.SMTP("127.0.0.1", ports[n % 2], timeout=30) as client:
                codes.append(client.sendmail(f"c{n}@customer.test", [SUPPORT], thread_message(1000 + n, 0)) or 250)
        return codes

    assert await asyncio.to_thread(send_all) == [250] * 20
    db = open_database(Settings(database_url=shared_url))
    try:
        seen = await wait_until_delivered(db, 20, seconds=60)
        assert seen == {InboundStatus.DELIVERED: 20}
        peers = await db.read(orm(lambda session: session.execute(select(InboundEmail.peer)).scalars().all()))
        assert all(peer.startswith("127.0.0.1:") for peer in peers)
    finally:
        await db.dispose()


async def test_workers_share_one_smtp_port_and_stop_together(
    shared_url: str, node_env: dict[str, str], nodes: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    parent = start_node(nodes, {**node_env, "WICKET_SMTP_PORT": str(port)}, "--role", "smtp", "--workers", "2")
    await asyncio.to_thread(wait_for_port, port, parent, node_log(node_env, 0))

    def send_all() -> int:
        for n in range(10):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.sendmail(f"c{n}@customer.test", [SUPPORT], thread_message(2000 + n, 0))
        return n + 1

    assert await asyncio.to_thread(send_all) == 10
    db = open_database(Settings(database_url=shared_url))
    try:
        assert (await counts(db)) == {InboundStatus.PENDING: 10}
    finally:
        await db.dispose()
    parent.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(parent.wait, 30) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


async def test_a_portal_only_node_processes_a_portal_request_at_once(
    shared_url: str, node_env: dict[str, str], nodes: list[subprocess.Popen[bytes]]
) -> None:
    """`--role portal` runs no background worker: the request is a ticket because the
    portal processed it at once, through the node's one Processor."""
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    env = {**node_env, "WICKET_HTTP_HOST": "127.0.0.1", "WICKET_HTTP_PORT": str(port), "WICKET_PUBLIC_URL": public_url}
    node = start_node(nodes, env, "--role", "portal")
    await asyncio.to_thread(wait_for_port, port, node, node_log(env, len(nodes) - 1))
    settings = Settings(database_url=shared_url, secret_keys=["nodes-test-key"], public_url=public_url)
    db = open_database(settings)
    try:
        alice = await add_contact(db, "alice@customer.test", "Alice Doe")
        async with aiohttp.ClientSession(base_url=public_url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            await signed_in(browser, db, settings, alice)
            fields = {"subject": "Scanner sends empty PDFs", "message": "Since Monday."}
            response = await post_multipart(browser, "/requests/new", fields)
            assert response.status == 303 and response.headers["Location"].endswith("?notice=created")
        assert await counts(db) == {InboundStatus.DELIVERED: 1}

        def look(session: Session):
            assert session.scalar(select(func.count(Ticket.id))) == 1

        await db.read(orm(look))
    finally:
        await db.dispose()
