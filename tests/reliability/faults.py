"""Real faults for the reliability tests: a cuttable TCP path to PostgreSQL, a held SQLite
write lock, and a database that runs out of space.

Nothing here mocks Wicket code. `TcpProxy` forwards 127.0.0.1:<port> to PostgreSQL; `cut()`
resets every open connection and stops listening (what a stopped server looks like:
connection refused), `restore()` listens again on the same port. `SqliteWriteLock` holds
`BEGIN EXCLUSIVE` from another connection, as a backup tool or a stuck shell would.
`DiskFull` makes the database refuse to grow: on SQLite through `PRAGMA max_page_count`
(SQLITE_FULL, "database or disk is full"), on PostgreSQL through a trigger that raises
SQLSTATE 53100 `disk_full`, the error a full volume gives. `RefusingTable` makes inserts
into one table fail on either database (a trigger), for faults that must hit one write.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Self

from sqlalchemy import text
from sqlalchemy.orm import Session

from gateway.storage.database import Database


class TcpProxy:
    """A forwarder between Wicket and PostgreSQL that a test can cut and restore."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream_writer}
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(sink)
            sink.transport.abort()


class SqliteWriteLock:
    """Another connection holding the database's write lock until released."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)

    def hold(self) -> None:
        self._connection.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        if self._connection.in_transaction:
            self._connection.execute("ROLLBACK")

    def close(self) -> None:
        self.release()
        self._connection.close()


_PG_DISK_FULL = """
CREATE OR REPLACE FUNCTION wicket_test_disk_full() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
END $$ LANGUAGE plpgsql
"""


class DiskFull:
    """The database refuses to grow: every write needing new space fails like a full disk.

    On SQLite the limit is a page count just above the current size, so writes that fit
    in free pages still work (as on a nearly full disk); `tables` names the tables whose
    inserts fail on PostgreSQL, where a trigger stands in for the full volume.
    """

    def __init__(self, db: Database, tables: tuple[str, ...], *, spare_pages: int = 4) -> None:
        self._db = db
        self._tables = tables
        self._spare_pages = spare_pages
        self._limit: int | None = None

    async def __aenter__(self) -> Self:
        if self._db.is_sqlite:
            # The page limit is a setting of the connection; every write goes through the
            # database's one writer connection, so limiting it limits them all.
            pages = await self._db.read(lambda connection: connection.exec_driver_sql("PRAGMA page_count").scalar_one())
            self._limit = await self._db.write(partial(_max_pages, pages=int(pages) + self._spare_pages))
        else:
            def full(session: Session) -> None:
                session.execute(text(_PG_DISK_FULL))
                for table in self._tables:
                    session.execute(text(
                        f"CREATE TRIGGER wicket_test_disk_full BEFORE INSERT ON {table} "
                        "FOR EACH ROW EXECUTE FUNCTION wicket_test_disk_full()"
                    ))

            await self._db.write(full)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._db.is_sqlite:
            await self._db.write(partial(_max_pages, pages=_SQLITE_MAX_PAGES))
        else:
            def room(session: Session) -> None:
                for table in self._tables:
                    session.execute(text(f"DROP TRIGGER IF EXISTS wicket_test_disk_full ON {table}"))

            await self._db.write(room)


_SQLITE_MAX_PAGES = 4294967294  # SQLite's own ceiling: no limit of ours


def _max_pages(session: Session, pages: int) -> int:
    return int(session.connection().exec_driver_sql(f"PRAGMA max_page_count={int(pages)}").scalar_one())


@contextlib.asynccontextmanager
async def refusing_inserts(db: Database, table: str) -> AsyncIterator[None]:
    """Every insert into `table` fails (as on a full disk) inside the block."""
    def refuse(session: Session) -> None:
        if db.is_sqlite:
            session.execute(text(
                f"CREATE TRIGGER wicket_test_refuse BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'could not write: No space left on device'); END"
            ))
        else:
            session.execute(text(_PG_DISK_FULL))
            session.execute(text(
                f"CREATE TRIGGER wicket_test_refuse BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION wicket_test_disk_full()"
            ))

    await db.write(refuse)
    try:
        yield
    finally:
        suffix = "" if db.is_sqlite else f" ON {table}"
        await db.write(lambda session: session.execute(text(f"DROP TRIGGER IF EXISTS wicket_test_refuse{suffix}")))
