"""`wicket serve` as a user runs it, for the benchmarks that measure the whole node.

`fresh_node_database(kind)` makes an empty database the way the README says (a new SQLite
file, or a new PostgreSQL database dropped afterwards), then `wicket db upgrade`,
`wicket mailbox add` and `wicket agents add`/`key` through the installed `wicket` command.
`Node` starts `wicket serve [ARGS]` in a subprocess with only `WICKET_*` settings in its
environment, waits until it listens (and, for a node of several processes, until the
supervisor says every child runs), stops it with SIGTERM, and counts what the database
holds. Each node's output goes to a log file under bench/out/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import case, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.databases import AGENT, PG_URL, SUPPORT
from bench.procs import OUT
from gateway.models import InboundEmail, InboundStatus, OutboxMessage, Ticket

WICKET = Path(sys.executable).with_name("wicket")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class NodeDatabase:
    url: str
    env: dict[str, str]
    api_key: str


def wicket(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(WICKET), *args], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(f"wicket {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def node_env(url: str, workdir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WICKET_")}
    return env | {
        "WICKET_DATABASE_URL": url,
        "WICKET_VAR_DIR": str(workdir / "var"),
        "WICKET_SECRET_KEYS": '["bench-secret-key"]',
        "WICKET_PUBLIC_URL": "http://portal.example.test",
        "WICKET_SMTP_HOSTNAME": "mx.example.test",
        "WICKET_LOOP_TOKEN": "example.test",
        "WICKET_SMTP_PORT": str(free_port()),
        "WICKET_HTTP_PORT": str(free_port()),
        "WICKET_LOG_FORMAT": "json",
    }


@contextlib.contextmanager
def fresh_node_database(kind: str, workdir: Path) -> Iterator[NodeDatabase]:
    """An empty, migrated database with the support mailbox and an agent with an API key."""
    workdir.mkdir(parents=True, exist_ok=True)
    name = None
    if kind == "sqlite":
        for leftover in workdir.glob("wicket.db*"):
            leftover.unlink()
        url = f"sqlite+aiosqlite:///{workdir / 'wicket.db'}"
    else:
        name = f"wicket_bench_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        env = node_env(url, workdir)
        wicket(env, "db", "upgrade")
        wicket(env, "mailbox", "add", SUPPORT, "--name", "Example Support")
        wicket(env, "agents", "add", AGENT, "--name", "Tom Agent")
        key = wicket(env, "agents", "key", AGENT).strip().splitlines()[-1]
        yield NodeDatabase(url, env, key)
    finally:
        if name is not None:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(statement: str) -> None:
    engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


# Inbound rows still to be processed: a failed row waiting for its retry ("retrying" in
# `counts`) is not done, or a drain would end before its retries and overstate the rate.
UNFINISHED = ("pending", "processing", "retrying")


def finished(seen: dict[str, object]) -> int:
    """How many inbound rows of `counts` are done: delivered, ignored, bounced or dead."""
    inbound = seen["inbound"]
    assert isinstance(inbound, dict)
    return sum(n for status, n in inbound.items() if status not in UNFINISHED)


def drained(seen: dict[str, object], count: int) -> bool:
    """Whether `count` inbound rows are finished and the outbox has nothing left to send."""
    outbox = seen["outbox"]
    assert isinstance(outbox, dict)
    return finished(seen) >= count and not outbox.get("queued", 0) and not outbox.get("sending", 0)


async def counts(database: NodeDatabase) -> dict[str, object]:
    """What the database holds: inbound rows by status, tickets, outbox rows by status.

    Inbound rows that failed and wait for another attempt are counted as "retrying".
    """
    engine = create_async_engine(database.url)
    try:
        async with engine.connect() as connection:
            retrying = (InboundEmail.status == InboundStatus.FAILED) & InboundEmail.next_attempt_at.is_not(None)
            status = case((retrying, "retrying"), else_=InboundEmail.status)
            by_status = select(status, func.count()).group_by(status)
            inbound = dict((await connection.execute(by_status)).all())
            by_status = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            outbox = dict((await connection.execute(by_status)).all())
            tickets = await connection.scalar(select(func.count()).select_from(Ticket))
    finally:
        await engine.dispose()
    return {"inbound": {str(k): v for k, v in inbound.items()}, "outbox": {str(k): v for k, v in outbox.items()},
            "tickets": tickets}


class Node:
    """One `wicket serve` subprocess; a context manager that always stops it."""

    def __init__(self, database: NodeDatabase, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        self.env = {**database.env, **(env or {})}
        self.smtp_port = int(self.env["WICKET_SMTP_PORT"])
        self.http_port = int(self.env["WICKET_HTTP_PORT"])
        self.log_path = OUT / f"node-{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen([str(WICKET), "serve", *args], env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        self.several = not args or "--workers" in args

    def wait_ready(self, seconds: float = 120.0, *, port: int | None = None) -> None:
        """Until the port answers and, for a supervised node, every child runs."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"wicket serve exited with {self.process.returncode}; see {self.log_path}")
            if self._listening(port) and (not self.several or b"node running" in self.log_path.read_bytes()):
                return
            time.sleep(0.1)
        raise RuntimeError(f"wicket serve was not ready within {seconds:.0f}s; see {self.log_path}")

    def _listening(self, port: int | None) -> bool:
        if port is None:
            return True
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        return False

    def cpu_seconds(self) -> float:
        """CPU time of the node's processes (the supervisor and everything below it) so far."""
        return sum(_cpu(pid) for pid in _tree(self.process.pid))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _tree(pid: int) -> list[int]:
    found = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += _tree(int(child))
    return found


def postgres_cpu_seconds() -> float:
    """CPU time so far of the PostgreSQL server's processes on this machine (0 where there are none)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    total += _cpu(int(entry.name))
    return total


def machine_busy() -> float:
    """Seconds of CPU the whole machine has spent busy (all cores, not idle or waiting on IO) since boot."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_processed(database: NodeDatabase, expected: int, seconds: float) -> dict[str, object]:
    """Poll until `expected` inbound rows are finished (`finished`)."""
    deadline = time.monotonic() + seconds
    seen = await counts(database)
    while time.monotonic() < deadline:
        if finished(seen) >= expected:
            break
        await asyncio.sleep(0.5)
        seen = await counts(database)
    return seen


def summary(seen: dict[str, object]) -> str:
    return json.dumps(seen, sort_keys=True)
