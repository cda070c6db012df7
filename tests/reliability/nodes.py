"""Real `wicket serve` processes for the fault tests: start one on given ports, wait until
it listens, kill it with SIGKILL or stop it with SIGTERM, read its log.

`prepare_database` creates the schema and the support mailbox in a database that the
processes then open by URL alone, as production nodes do.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session

from gateway.directory.mailboxes import add_mailbox
from gateway.models import Mailbox
from gateway.settings import Settings
from gateway.storage.database import open_database
from tests.support import SUPPORT, create_schema

SECRET = "reliability-test-key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def prepare_database(url: str, *, acknowledge: bool = True) -> None:
    db = open_database(Settings(database_url=url, secret_keys=[SECRET]))
    try:
        await create_schema(db)

        def change(session: Session):
            box = add_mailbox(session, SUPPORT, "Example Support")
            session.execute(update(Mailbox).where(Mailbox.id == box.id).values(auto_acknowledge=acknowledge))

        await db.write(change)
    finally:
        await db.dispose()


def node_environment(url: str, var_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a node: the shared database, its own ports, quick leases."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WICKET_")}
    env |= {
        "WICKET_DATABASE_URL": url,
        "WICKET_VAR_DIR": str(var_dir),
        "WICKET_SECRET_KEYS": f'["{SECRET}"]',
        "WICKET_OUTBOUND_SENDER": "memory",
        "WICKET_LOG_FORMAT": "json",
        "WICKET_SENDER_CHECKS": "false",  # no DNS from tests (the checks have their own tests)
    }
    env |= {f"WICKET_{name.upper()}": value for name, value in settings.items()}
    return env


@dataclass
class Node:
    """One `wicket serve` process."""

    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, env: dict[str, str], log: Path, *args: str) -> Node:
        with log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", *args], env=env, stdout=output, stderr=subprocess.STDOUT
            )
        return cls(process, log)

    async def wait_listening(self, port: int, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"node exited with {self.process.returncode}:\n{self.log.read_text()[-4000:]}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise AssertionError(f"nothing listens on {port} after {seconds}s")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut or the OOM killer."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
