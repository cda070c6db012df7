"""The database: engines for SQLite (the embedded default) and PostgreSQL, and the one way to use them.

Code reaches the database in exactly two ways (docs/architecture.md, "Reaching the
database"): `await db.read(work)`, where `work` takes a synchronous Core `Connection` and
only looks, and `await db.write(work)`, where `work` takes a synchronous ORM `Session` and
runs as one transaction, committed when it returns (rolled back if it raises). Services
are therefore plain synchronous functions; `orm(work)` lets a read use the ORM over its
connection.

SQLite runs in WAL mode with `synchronous=FULL`, so a committed row survives a power cut.
A SQLite file has one reader and one writer, shared by everything in the process (the
SMTP store, the processor, the outbox, the portal):

- `SqliteReader`: a read costs one call. A kept synchronous pysqlite connection answers
  inline on the event loop, since WAL readers never wait for the writer and an indexed
  read takes microseconds.
- `SqliteWriter`: every write runs on one writer thread, in one hop (through aiosqlite
  every cursor, fetch and close would be a hop of its own), and the units that queued
  meanwhile share one commit, one fsync (group commit). Writes never collide on the
  file's lock.
- `WalCheckpointer`: copies the WAL back into the database file on a thread of its own
  (on a connection of the reader's engine), so no commit waits for a checkpoint; SQLite's
  own automatic checkpoint, run by whichever commit crosses the threshold, remains as a
  backstop at a much larger WAL.

PostgreSQL has one async engine (asyncpg) with a pool sized from settings and a statement
timeout; `work` runs on a pooled connection through `run_sync`. `append` is the SMTP
store's bulk insert, named here because it is a fast path: on PostgreSQL a kept
autocommitting connection makes a batch one round trip instead of a checkout, BEGIN,
INSERT and COMMIT; on SQLite it is an ordinary `write`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import SingletonThreadPool
from sqlalchemy.sql import Executable

from gateway.settings import Settings

T = TypeVar("T")

log = logging.getLogger(__name__)

# Failures that say the database itself is away (not that one statement is bad).
OUTAGE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, OSError)


class Database:
    """The one way to the database: `read(work)` and `write(work)` (see the module docstring)."""

    def __init__(self, url: URL, engine: AsyncEngine | None = None) -> None:
        self.url = url
        self.dialect_name = url.get_backend_name()
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False) if engine is not None else None
        self._reader: SqliteReader | None = None
        self._writer: SqliteWriter | None = None
        self._checkpointer: WalCheckpointer | None = None
        if engine is None:
            self._reader = SqliteReader(url)
            self._writer = SqliteWriter(url)
            self._checkpointer = WalCheckpointer(self._reader.engine)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect_name == "sqlite"

    @property
    def engines(self) -> list[Engine]:
        """The synchronous engines underneath, for instrumentation (event listeners) only.

        SQLite: the reader's and the writer's; PostgreSQL: the async engine's sync facade.
        """
        if self._engine is not None:
            return [self._engine.sync_engine]
        assert self._reader is not None and self._writer is not None
        return [self._reader.engine, self._writer.engine]

    async def read(self, work: Callable[[Connection], T], *, large: bool = False) -> T:
        """`work(connection)`, a read: inline on SQLite, on a pooled connection on PostgreSQL.

        `large`: the read may bring back megabytes (a stored mail body), which SQLite takes
        tens of milliseconds to copy out; it runs on the reader's own thread instead, so the
        event loop keeps serving meanwhile.
        """
        if self._reader is not None:
            return await self._reader.run_aside(work) if large else self._reader.run(work)
        assert self._engine is not None
        async with self._engine.connect() as connection:
            return await connection.run_sync(work)

    async def write(self, work: Callable[[Session], T]) -> T:
        """`work(session)` as one write transaction, committed when it returns."""
        if self._writer is not None:
            return await self._writer.run(work)
        assert self._sessions is not None
        async with self._sessions.begin() as session:
            return await session.run_sync(work)

    def appender(self, statement: Executable, *, batch: int) -> Appender:
        """A bulk inserter of up to `batch` rows at a time with `statement` (an INSERT … RETURNING)."""
        if self._engine is None:
            return _WritingAppender(self, statement)
        return _KeptConnectionAppender(self._engine, statement, batch)

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        if self._writer is not None:
            self._writer.close()
        if self._reader is not None:
            self._reader.close()
        if self._engine is not None:
            await self._engine.dispose()


def orm(work: Callable[[Session], T]) -> Callable[[Connection], T]:
    """For `Database.read`: `work(session)` with an ORM Session over the read's connection.

    The session closes when `work` returns; the objects it loaded stay usable, detached.
    """

    def run(connection: Connection) -> T:
        with Session(connection, expire_on_commit=False) as session:
            return work(session)

    return run


class Appender:
    """Inserts batches of rows with one INSERT … RETURNING; `insert` returns the first returned column."""

    async def insert(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        raise NotImplementedError

    async def close(self) -> None:
        """Let go of anything kept between batches."""


class _WritingAppender(Appender):
    def __init__(self, db: Database, statement: Executable) -> None:
        self._db = db
        self._statement = statement

    async def insert(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        def insert(session: Session) -> list[Any]:
            return list(session.connection().execute(self._statement, list(rows)).scalars())

        return await self._db.write(insert)


class _KeptConnectionAppender(Appender):
    """Keeps one pooled connection for its batches (no checkout, ping or reset per batch).

    The connection autocommits and a batch is one INSERT statement, so the statement is the
    transaction: one round trip per batch instead of BEGIN, INSERT and COMMIT.
    """

    def __init__(self, engine: AsyncEngine, statement: Executable, batch: int) -> None:
        self._engine = engine
        self._statement = statement
        self._batch = batch
        self._conn: AsyncConnection | None = None

    async def _connect(self) -> AsyncConnection:
        conn = await self._engine.connect()
        # A page as large as a batch keeps every batch in one statement (one transaction).
        return await conn.execution_options(isolation_level="AUTOCOMMIT", insertmanyvalues_page_size=self._batch)

    async def insert(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        kept = self._conn is not None
        if self._conn is None:
            self._conn = await self._connect()
        try:
            async with self._conn.begin():  # no BEGIN or COMMIT is sent under AUTOCOMMIT
                return list((await self._conn.execute(self._statement, list(rows))).scalars())
        except Exception as error:
            await self.close()
            if kept and isinstance(error, OUTAGE):
                # The kept connection died while idle (a database restart, a cut network):
                # one more try on a fresh one. Should the lost commit have happened after all,
                # a duplicate row is the caller's to catch (the processor dedupes mail).
                return await self.insert(rows)
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


class SqliteReader:
    """Read-only SQLite connections, one per thread, each kept open for every read on it.

    A read through a fresh `Connection` from a pool cost as much as the ticket list's two
    statements (the checkout, the reset on return); a kept connection costs nothing per
    read. It still sees every write committed before the read starts: the connection is
    in autocommit mode between reads (pysqlite opens no transaction for a SELECT, so each
    statement reads the newest WAL snapshot and lets it go when it finishes), and a read
    that left a transaction open, at SQLAlchemy's level (`connection.scalar` begins one)
    or at SQLite's, is rolled back as it ends. `query_only` makes the connections refuse
    writes, so none can ever hold SQLite's write lock (a checkpoint is still allowed).
    Used on the event loop's thread; `run_aside` runs a large read on a thread of the
    reader's own, and the checkpointer connects from its thread.
    """

    def __init__(self, url: URL) -> None:
        self.engine = create_sync_engine(url.set(drivername="sqlite"), hide_parameters=True)
        event.listen(self.engine, "connect", sqlite_pragmas)
        event.listen(self.engine, "connect", _query_only)
        self._kept = threading.local()
        self._opened: list[Connection] = []
        self._aside = ThreadPoolExecutor(1, thread_name_prefix="sqlite-reader")

    async def run_aside(self, work: Callable[[Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._aside, self.run, work)

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
        self._aside.shutdown()
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
        with self._lock:
            batch, self._pending = self._pending, []
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                for work, future in batch:
                    session.info.clear()  # what one unit memoised (`held`) is not another's
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


class WalCheckpointer:
    """Copies the WAL into the database file every `interval` seconds, on a thread of its own.

    Left to SQLite, the commit that takes the WAL past 1,000 pages also runs the checkpoint
    (copying the pages back and flushing the database file) before it returns: a spike in
    the SMTP listener's DATA-to-250 latency every few hundred messages. A PASSIVE
    checkpoint here never blocks writers or readers and skips pages still in use. It runs
    on a connection of the reader's engine (`query_only` still allows checkpoints), its
    own thread's, so it needs no engine of its own.
    """

    def __init__(self, engine: Engine, interval: float = 1.0) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        connection: Connection | None = None
        while not self._stop.wait(self._interval):
            try:
                connection = connection or self._engine.connect()
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception as error:  # noqa: BLE001 - the backstop checkpoint still runs
                log.warning("WAL checkpoint failed (%s); SQLite checkpoints on commit instead", error)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def held(session: Session, kind: str, key: Hashable, load: Callable[[], T]) -> T:
    """`load()`, run once per `kind` and `key` for one unit of work (`Database.write`).

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


def _async_engine(settings: Settings, url: URL, **options: Any) -> AsyncEngine:
    """The async engine for PostgreSQL (and for an in-memory SQLite database, which has no file to share)."""
    # An error's text must not quote statement parameters (mail bodies with
    # quoted magic links, outgoing mail); it reaches logs and `last_error` (`wicket status`).
    options.setdefault("hide_parameters", True)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    connect_args = dict(options.pop("connect_args", {}))
    server_settings = dict(connect_args.pop("server_settings", {}))
    if settings.database_statement_timeout_ms:
        server_settings.setdefault("statement_timeout", str(settings.database_statement_timeout_ms))
    connect_args["server_settings"] = server_settings
    options.setdefault("pool_size", settings.database_pool_size)
    options.setdefault("pool_pre_ping", True)
    return create_async_engine(url, connect_args=connect_args, **options)


def open_database(settings: Settings, url: str | None = None, **options: Any) -> Database:
    """The Database for `url` (default: the configured one); `options` go to the PostgreSQL engine."""
    parsed = make_url(url or settings.database_url)
    if not _is_sqlite_file(parsed):
        return Database(parsed, _async_engine(settings, parsed, **options))
    Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)
    return Database(parsed)
