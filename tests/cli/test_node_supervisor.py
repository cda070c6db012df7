"""Plain `wicket serve` is a node of processes: a front process (SMTP and portal) per core
sharing the ports, a back process processing, woken by the doorbell; a child that dies is
started again, one that cannot start stops the node loudly, and SIGTERM or a `kill -9` of
the supervisor leaves no process behind.

The nodes are real `wicket serve` subprocesses over a database of the test's own.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import smtplib
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.cli.runtime import Gateway
from gateway.cli.supervisor import BACK_NICENESS, OUTBOX_NICENESS, RestartBudget, Slot, _child_main, node_layout
from gateway.models import Ticket
from gateway.settings import Settings
from gateway.storage.database import open_database, orm
from tests.reliability.nodes import Node, free_port, node_environment, prepare_database
from tests.support import SUPPORT


def test_the_default_layout_puts_a_front_process_on_every_core_and_processing_apart() -> None:
    roles = ("smtp", "worker", "outbox", "portal")
    assert node_layout(roles, 2, sqlite=True) == [
        Slot("front-1", ("smtp", "portal")), Slot("front-2", ("smtp", "portal")), Slot("back-1", ("worker",), BACK_NICENESS),
        Slot("outbox-1", ("outbox",), OUTBOX_NICENESS), Slot("outbox-2", ("outbox",), OUTBOX_NICENESS),
    ]
    assert [slot.name for slot in node_layout(roles, 8, sqlite=False)].count("back-1") == 1
    assert len([s for s in node_layout(roles, 8, sqlite=False) if s.name.startswith("back")]) == 4
    assert len([s for s in node_layout(roles, 8, sqlite=True) if s.name.startswith("back")]) == 1
    # Composing mail is the costliest step and holds no lock: one outbox process per core.
    assert len([s for s in node_layout(roles, 8, sqlite=True) if s.roles == ("outbox",)]) == 8
    assert node_layout(("smtp", "outbox"), 1, sqlite=True) == [
        Slot("front-1", ("smtp",)), Slot("outbox-1", ("outbox",), OUTBOX_NICENESS),
    ]


def test_outbox_processes_run_behind_the_listeners_and_the_processor() -> None:
    # Acknowledging first, then the ticket, then its mail: under load the kernel runs them so.
    assert 0 < BACK_NICENESS < OUTBOX_NICENESS
    context = multiprocessing.get_context("spawn")
    _, writer = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(os.getpid(), _exit_with_niceness, writer, (), OUTBOX_NICENESS))
    child.start()
    child.join(60)
    assert OUTBOX_NICENESS > 0 and child.exitcode == os.nice(0) + OUTBOX_NICENESS


def test_a_restart_budget_allows_five_restarts_a_minute_then_refuses() -> None:
    budget = RestartBudget()
    assert [budget.spend(float(n)) for n in range(6)] == [True] * 5 + [False]
    assert budget.spend(70.0)  # the first restarts have left the window


def expected_children(url: str) -> int:
    return len(node_layout(("smtp", "worker", "outbox", "portal"), os.cpu_count() or 1, sqlite=url.startswith("sqlite")))


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def fork_servers(pid: int) -> list[int]:
    """The supervisor's fork server (multiprocessing's resource tracker is another child)."""
    return [child for child in children(pid) if b"forkserver" in Path(f"/proc/{child}/cmdline").read_bytes()]


def role_processes(pid: int) -> list[int]:
    """The node's role processes: the children of the supervisor's fork server."""
    return [child for server in fork_servers(pid) for child in children(server)]


def descendants(pid: int) -> list[int]:
    """The fork server, every role process and every process they started (parse workers)."""
    found = []
    for server in fork_servers(pid) if pid else []:
        found += [server, *_below(server)]
    return found


def _below(pid: int) -> list[int]:
    try:
        direct = children(pid)
    except OSError:
        return []
    return [p for child in direct for p in (child, *_below(child))]


async def store_backlog(url: str, count: int) -> None:
    gateway = Gateway(Settings(database_url=url, secret_keys=["reliability-test-key"]))
    await gateway.start()
    try:
        for n in range(count):
            raw = f"From: b{n}@customer.test\r\nTo: {SUPPORT}\r\nSubject: Backlog {n}\r\n\r\nHello.\r\n".encode()
            await gateway.receive(raw, mail_from=f"b{n}@customer.test", rcpt_tos=(SUPPORT,))
    finally:
        await gateway.stop()
        await gateway.db.dispose()


def send(port: int, n: int) -> None:
    message = (f"From: c{n}@customer.test\r\nTo: {SUPPORT}\r\nSubject: Printer {n}\r\n"
               f"Message-ID: <node-{n}@customer.test>\r\n\r\nIt jams.\r\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail(f"c{n}@customer.test", [SUPPORT], message.encode())


async def tickets(url: str) -> int:
    db = open_database(Settings(database_url=url))
    try:
        def _look(session: Session):
            return int(session.scalar(select(func.count(Ticket.id))) or 0)

        return await db.read(orm(_look))
    finally:
        await db.dispose()


async def wait_for_tickets(url: str, count: int, seconds: float) -> float:
    started = time.monotonic()
    while (await tickets(url)) < count:
        assert time.monotonic() - started < seconds, f"fewer than {count} tickets after {seconds}s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def gone(pids: list[int], seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "Z"


@pytest.fixture
def node_env(shared_url: str, tmp_path: Path) -> dict[str, str]:
    smtp_port, http_port = free_port(), free_port()
    # The processor polls once a minute: a ticket made in seconds was woken by the doorbell.
    return node_environment(shared_url, tmp_path / "var", smtp_host="127.0.0.1", smtp_port=str(smtp_port),
                            http_host="127.0.0.1", http_port=str(http_port), process_poll_seconds="60")


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_plain_serve_runs_a_front_per_core_restarts_a_dead_child_and_stops_whole(
    shared_url: str, node_env: dict[str, str], tmp_path: Path
) -> None:
    await prepare_database(shared_url)
    port = int(node_env["WICKET_SMTP_PORT"])
    node = Node.start(node_env, tmp_path / "node.log")
    try:
        await node.wait_listening(port)
        await node.wait_listening(int(node_env["WICKET_HTTP_PORT"]))
        deadline = time.monotonic() + 60
        while len(role_processes(node.process.pid)) < expected_children(shared_url) and time.monotonic() < deadline:
            time.sleep(0.1)
        first = role_processes(node.process.pid)
        assert len(first) == expected_children(shared_url)

        send(port, 1)
        assert await wait_for_tickets(shared_url, 1, seconds=20) < 20
        # A child killed before it reported running is a node that cannot start (and stops it):
        # wait for the supervisor's word that every child is running, which a loaded machine delays.
        deadline = time.monotonic() + 60
        while "node running:" not in node.log.read_text():
            assert time.monotonic() < deadline, node.log.read_text()[-3000:]
            time.sleep(0.1)

        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while first[0] in role_processes(node.process.pid) or len(role_processes(node.process.pid)) < len(first):
            assert time.monotonic() < deadline, node.log.read_text()[-3000:]
            time.sleep(0.1)
        for n in range(2, 8):  # whichever front answers, mail is stored and processed
            send(port, n)
        await wait_for_tickets(shared_url, 7, seconds=30)
        assert "exited with status -9; starting it again" in node.log.read_text()

        last = role_processes(node.process.pid)
        node.process.send_signal(signal.SIGTERM)
        assert node.process.wait(timeout=40) == 0
        assert gone(last)
    finally:
        node.stop()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_child_that_cannot_start_stops_the_node_with_a_message(
    shared_url: str, node_env: dict[str, str], tmp_path: Path
) -> None:
    # No tables: every child fails as it starts, and starting them again would fail alike.
    node = Node.start(node_env, tmp_path / "node.log")
    try:
        assert node.process.wait(timeout=90) == 1
        text = node.log.read_text()
        assert "before it was running; stopping the node" in text
        assert "Traceback" not in text
    finally:
        node.stop()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_kill_9_of_the_supervisor_takes_every_child_and_parse_worker_with_it(
    shared_url: str, node_env: dict[str, str], tmp_path: Path
) -> None:
    await prepare_database(shared_url)
    await store_backlog(shared_url, 40)  # a backlog: the back process starts a parse worker for it
    node = Node.start(node_env, tmp_path / "node.log")
    try:
        await node.wait_listening(int(node_env["WICKET_SMTP_PORT"]))
        deadline = time.monotonic() + 60
        # The fork server, the role processes and a parse worker.
        while len(descendants(node.process.pid)) < 1 + expected_children(shared_url) + 1:
            assert time.monotonic() < deadline, "no parse worker was started"
            time.sleep(0.1)
        orphans = descendants(node.process.pid)
        node.kill()
        assert gone(orphans), "a child outlived its supervisor"
    finally:
        node.stop()



def _exit_with_niceness(*, ready: Callable[[], None]) -> None:
    raise SystemExit(os.nice(0))
