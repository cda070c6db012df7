"""On SQLite, a background writer waits while an SMTP listener commits (or waits to), so
processing never starves the 250s; a writer that finds another's transaction open waits
at the gate, woken when it ends, rather than in SQLite's sleeping busy handler."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gateway.storage.sqlite import ListenersFirst, SqliteWriter


def test_a_listener_waiting_for_its_turn_goes_before_a_background_writer_that_came_first(tmp_path: Path) -> None:
    url = make_url(f"sqlite:///{tmp_path / 'wicket.db'}")
    processing, listener, more_processing = ListenersFirst(url), ListenersFirst(url), ListenersFirst(url)
    order: list[str] = []

    def turn(name: str, gate: Any) -> None:
        with gate:
            order.append(name)

    try:
        with processing.background():  # a processing transaction is open
            waiting_background = threading.Thread(target=turn, args=("processing", more_processing.background()))
            waiting_background.start()
            time.sleep(0.1)  # the second background writer asks first
            waiting_listener = threading.Thread(target=turn, args=("listener", listener.listening()))
            waiting_listener.start()
            time.sleep(0.2)
            assert order == [], "a writer entered while a transaction was open"
        waiting_listener.join(5)
        waiting_background.join(5)
        assert order == ["listener", "processing"]
    finally:
        for gate in (processing, listener, more_processing):
            gate.close()


def test_a_database_in_memory_has_no_gate() -> None:
    gate = ListenersFirst(make_url("sqlite+aiosqlite:///:memory:"))
    with gate.listening():
        with gate.background():  # nothing to wait for, and no file was made
            pass
    gate.close()


async def test_a_listener_waits_for_a_background_transaction_at_the_gate_not_in_sqlite(tmp_path: Path) -> None:
    # Two writers on one file, as two processes of a node have. The listener's connection
    # gets no busy timeout at all: had it met the background's open transaction inside
    # SQLite, it would fail with "database is locked" at once.
    url = make_url(f"sqlite:///{tmp_path / 'wicket.db'}")
    background, listener = SqliteWriter(url), SqliteWriter(url)

    def no_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    event.listen(listener.engine, "connect", no_busy_timeout)
    try:
        await background.run(lambda session: session.execute(text("CREATE TABLE note (body TEXT)")))
        opened = threading.Event()

        def slow(session: Session) -> None:
            session.execute(text("INSERT INTO note VALUES ('processed')"))
            opened.set()
            time.sleep(0.3)

        processing = asyncio.ensure_future(background.run(slow))
        assert await asyncio.to_thread(opened.wait, 5)
        await listener.run(lambda session: session.execute(text("INSERT INTO note VALUES ('accepted')")), listener=True)
        await processing
        rows = await listener.run(lambda session: session.execute(text("SELECT body FROM note ORDER BY rowid")).scalars().all())
        assert rows == ["processed", "accepted"]
    finally:
        background.close()
        listener.close()
