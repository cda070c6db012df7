"""Database engine and session factory for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with `synchronous=FULL`, so a committed row survives a power cut,
and with a busy timeout so the SMTP writer and the processor can share the file. PostgreSQL
gets a pool sized from settings and a statement timeout. `Database` bundles the engine, its
session factory and the read path, so one object travels through the application.

Reads that only look (`await db.read(work)`, where `work` takes a synchronous
`Connection` and runs SQLAlchemy Core) cost one call on SQLite: a synchronous pysqlite
connection answers inline on the event loop, since WAL readers never wait for the writer
and an indexed read takes microseconds; the connection stays open for the thread
(`SqliteReader`) instead of being taken from a pool and given back per read. On
PostgreSQL the same function runs on a pooled async connection through `run_sync`.
Writes stay on the async engine, where they may wait for locks and fsync:
`async with db.write() as session` is one write transaction, and on
SQLite such transactions take turns in asyncio instead of colliding on the file's write
lock and sleeping in SQLite's busy handler. A hot write path (the processor's transactions,
the link exchange) is a synchronous unit instead,
`await db.run_write(work)` where `work` takes an ORM `Session`: on SQLite it runs on a
writer thread, in one hop (through aiosqlite every cursor, fetch and close would be a hop
of its own) and sharing its commit with the units that queued meanwhile (`SqliteWriter`);
on PostgreSQL `work` runs through `run_sync` in an async transaction of its own.

SQLite's WAL is copied back into the database file by a checkpointer thread of its own
(`WalCheckpointer`), so no commit waits for a checkpoint; SQLite's own automatic
checkpoint, run by whichever commit crosses the threshold, remains as a backstop at a
much larger WAL.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import SingletonThreadPool

from gateway.settings import Settings

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Database:
    """The engine, the session factory built from it, and (SQLite) the inline reader."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    reader: SqliteReader | None = None
    write_turn: asyncio.Lock | None = field(default=None, compare=False)
    writer: SqliteWriter | None = None
    checkpointer: WalCheckpointer | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def read(self, work: Callable[[Connection], T]) -> T:
        """`work(connection)` for reads: inline on SQLite, through `run_sync` on PostgreSQL."""
        if self.reader is not None:
            return self.reader.run(work)
        async with self.engine.connect() as connection:
            return await connection.run_sync(work)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction, committed on leaving the block (on SQLite, one at a time)."""
        if self.write_turn is None:
            async with self.sessions.begin() as session:
                yield session
            return
        async with self.write_turn, self.sessions.begin() as session:
            yield session

    async def run_write(self, work: Callable[[Session], T]) -> T:
        """`work(session)` as one write transaction, committed when it returns."""
        if self.writer is not None:
            return await self.writer.run(work)
        async with self.sessions.begin() as session:
            return await session.run_sync(work)

    async def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()
        if self.writer is not None:
            self.writer.close()
        if self.reader is not None:
            self.reader.close()
        await self.engine.dispose()


class SqliteReader:
    """Read-only SQLite connections, one per thread, each kept open for every read on it.

    A read through a fresh `Connection` from a pool cost as much as the ticket list's two
    statements (the checkout, the reset on return); a kept connection costs nothing per
    read. It still sees every write committed before the read starts: the connection is
    in autocommit mode between reads (pysqlite opens no transaction for a SELECT, so each
    statement reads the newest WAL snapshot and lets it go when it finishes), and a read
    that left a transaction open, at SQLAlchemy's level (`connection.scalar` begins one)
    or at SQLite's, is rolled back as it ends. `query_only` makes the connections refuse
    writes, so none can ever hold SQLite's write lock. Used on the event loop's thread.
    """

    def __init__(self, url: URL) -> None:
        self.engine = create_sync_engine(url.set(drivername="sqlite"), hide_parameters=True)
        event.listen(self.engine, "connect", sqlite_pragmas)
        event.listen(self.engine, "connect", _query_only)
        self._kept = threading.local()
        self._opened: list[Connection] = []

    def run(self, work: Callable[[Connection], T]) -> T:
        connection: Connection | None = getattr(self._kept, "connection", None)
        if connection is None:
            connection = self._kept.connection = self.engine.connect()
            self._opened.append(connection)
        try:
            return work(connection)
        finally:
            if connection.in_transaction():
                connection.rollback()
            if connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
                connection.connection.dbapi_connection.rollback()  # type: ignore[union-attr]

    def close(self) -> None:
        for connection in self._opened:
            connection.close()
        self.engine.dispose()


class SqliteWriter:
    """One synchronous SQLite connection on one thread, with group commit.

    Units that arrive while a transaction is being written wait and then go together: each
    runs in a savepoint of one `BEGIN IMMEDIATE` transaction (a failing unit rolls back only
    its own savepoint and gets its exception), and one commit, one fsync, makes them all
    durable before any of their callers continue. A failed commit fails every unit of it.
    """

    def __init__(self, url: URL) -> None:
        self.engine = create_sync_engine(url.set(drivername="sqlite"), poolclass=SingletonThreadPool, hide_parameters=True)
        event.listen(self.engine, "connect", sqlite_pragmas)
        event.listen(self.engine, "connect", _driver_autocommit)
        event.listen(self.engine, "begin", _begin_immediate)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._listeners_first = ListenersFirst(url)
        self._lock = threading.Lock()
        self._pending: list[tuple[Callable[[Session], Any], asyncio.Future[Any]]] = []

    async def run(self, work: Callable[[Session], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._pending.append((work, future))
            first = len(self._pending) == 1
        if first:
            self._thread.submit(self._write_batch, loop)
        return await future

    def _write_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._listeners_first.give_way()
        with self._lock:
            batch, self._pending = self._pending, []
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                for work, future in batch:
                    try:
                        with session.begin_nested():
                            outcomes.append((future, work(session), None))
                    except Exception as error:  # noqa: BLE001 - the unit's own failure goes back to its caller
                        outcomes.append((future, None, error))
        except Exception as error:  # noqa: BLE001 - nothing of this batch was stored
            outcomes = [(future, None, error) for _, future in batch]
        for future, result, error in outcomes:
            loop.call_soon_threadsafe(_settle, future, result, error)

    def close(self) -> None:
        self._thread.submit(self.engine.dispose).result()
        self._thread.shutdown()
        self._listeners_first.close()


class ListenersFirst:
    """On SQLite, a background writer gives way to the SMTP listeners' commits before each transaction.

    SQLite has one write lock, and a connection that finds it taken sleeps in SQLite's busy
    handler (1, 2, 5 … up to 100 ms) and tries again. A processor committing transaction
    after transaction in another process therefore holds the lock nearly all the time,
    and a listener's commit, waiting by sleeping, rarely finds the gap: every 250 waits. So
    the node's writers also meet at a lock file next to the database: a listener holds it
    shared while it commits (listeners never wait for one another there), and a background
    writer takes it exclusively, and lets go at once, before it begins a transaction, so it
    waits while any listener is committing or waiting to commit. Acknowledging mail goes
    first; processing, which may lag, takes the gaps (docs/architecture.md, "One node,
    several processes"). Each user holds its own descriptor, since `flock` on one
    descriptor converts rather than waits. Used from writer threads only: it blocks.
    """

    def __init__(self, url: URL) -> None:
        # A database in memory has no other process to make way for.
        shared = _is_sqlite_file(url)
        self._fd = os.open(f"{url.database}-listeners", os.O_RDWR | os.O_CREAT, 0o600) if shared else None

    @contextmanager
    def listening(self) -> Iterator[None]:
        if self._fd is None:
            yield
            return
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def give_way(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class WalCheckpointer:
    """Copies the WAL into the database file every `interval` seconds, on a thread of its own.

    Left to SQLite, the commit that takes the WAL past 1,000 pages also runs the checkpoint
    (copying the pages back and flushing the database file) before it returns: a spike in
    the SMTP listener's DATA-to-250 latency every few hundred messages. A PASSIVE
    checkpoint here never blocks writers or readers and skips pages still in use.
    """

    def __init__(self, url: URL, interval: float = 1.0) -> None:
        self._engine = create_sync_engine(url.set(drivername="sqlite"), poolclass=SingletonThreadPool)
        event.listen(self._engine, "connect", sqlite_pragmas)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with self._engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception as error:  # noqa: BLE001 - the backstop checkpoint still runs
                log.warning("WAL checkpoint failed (%s); SQLite checkpoints on commit instead", error)
        self._engine.dispose()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def held(session: Session, kind: str, key: Hashable, load: Callable[[], T]) -> T:
    """`load()`, run once per `kind` and `key` for the session's life (one transaction in `run_write`).

    The identity map holds objects only weakly, so an object every message of a processing
    transaction needs (its mailbox, the agents to notify) would be loaded again per message.
    """
    memo: dict[Hashable, Any] = session.info.setdefault(f"wicket.held.{kind}", {})
    if key not in memo:
        memo[key] = load()
    return memo[key]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite would start transactions on its own and break savepoints; SQLAlchemy begins them.
    dbapi_connection.isolation_level = None


def _query_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA query_only=ON")


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Checkpoints are WalCheckpointer's; a commit runs one only past 10,000 pages (40 MB).
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def _is_sqlite_file(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and bool(url.database) and url.database != ":memory:"


def create_engine(settings: Settings, url: str | URL | None = None, **options: Any) -> AsyncEngine:
    """Build the async engine for `url` (default: the configured database)."""
    parsed = make_url(url or settings.database_url)
    # An error's text must not quote statement parameters (mail bodies with
    # quoted magic links, outgoing mail); it reaches logs and `last_error` (`wicket status`).
    options.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        if _is_sqlite_file(parsed):
            Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(parsed, **options)
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    connect_args = dict(options.pop("connect_args", {}))
    server_settings = dict(connect_args.pop("server_settings", {}))
    if settings.database_statement_timeout_ms:
        server_settings.setdefault("statement_timeout", str(settings.database_statement_timeout_ms))
    connect_args["server_settings"] = server_settings
    options.setdefault("pool_size", settings.database_pool_size)
    options.setdefault("pool_pre_ping", True)
    return create_async_engine(parsed, connect_args=connect_args, **options)


def open_database(settings: Settings, url: str | None = None, **options: Any) -> Database:
    parsed = make_url(url or settings.database_url)
    if not _is_sqlite_file(parsed):
        engine = create_engine(settings, parsed, **options)
        return Database(engine, async_sessionmaker(engine, expire_on_commit=False))
    engine = create_engine(settings, parsed, **options)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    return Database(
        engine, sessions, SqliteReader(parsed), asyncio.Lock(), SqliteWriter(parsed), WalCheckpointer(parsed)
    )
