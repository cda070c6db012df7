"""The database: engines for SQLite (the embedded default) and PostgreSQL, and the one way to use them.

Code reaches the database in exactly two ways (docs/architecture.md, "Reaching the
database"): `await db.read(work)`, where `work` takes a synchronous Core `Connection` and
only looks, and `await db.write(work)`, where `work` takes a synchronous ORM `Session` and
runs as one transaction, committed when it returns (rolled back if it raises). Services
are therefore plain synchronous functions; `orm(work)` lets a read use the ORM over its
connection.

A SQLite file has one reader and one writer, shared by everything in the process (the
SMTP store, the processor, the outbox, the portal), and a checkpointer: see
gateway/storage/sqlite.py.

PostgreSQL has one async engine (asyncpg) with a pool sized from settings and a statement
timeout; `work` runs on a pooled connection through `run_sync`. `appender` is the SMTP
store's bulk insert, named here because it is a fast path: on PostgreSQL a kept
autocommitting connection makes a batch one round trip instead of a checkout, BEGIN,
INSERT and COMMIT; on SQLite it is an ordinary `write`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from gateway.settings import Settings
from gateway.storage.sqlite import SqliteReader, SqliteWriter, WalCheckpointer, sqlite_pragmas

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

    def listeners_waiting(self) -> bool:
        """Whether an SMTP listener waits to commit: a long write should end its transaction now.

        On SQLite the writer's transaction holds the file's one write lock, and every 250 of
        the node waits for it (`ListenersFirst`); called from inside a unit of work. On
        PostgreSQL a listener's insert waits for no other transaction: always False.
        """
        return self._writer is not None and self._writer.listeners_waiting()

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


# PostgreSQL's SQLSTATEs for a statement failed to break a lock cycle between transactions
# (deadlock_detected) and for a serialization conflict: the work was not at fault.
_LOST_RACES = frozenset({"40P01", "40001"})


def lost_race(error: BaseException) -> bool:
    """Whether `error` is the database failing one of two racing transactions, not the work.

    Run again in a fresh transaction, the same work succeeds; it deserves no backoff.
    """
    return isinstance(error, sa_exc.DBAPIError) and getattr(error.orig, "sqlstate", None) in _LOST_RACES


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

        writer = self._db._writer  # noqa: SLF001 - the SMTP store's commits go first (ListenersFirst)
        assert writer is not None
        return await writer.run(insert, listener=True)


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


def held(session: Session, kind: str, key: Hashable, load: Callable[[], T]) -> T:
    """`load()`, run once per `kind` and `key` for one unit of work (`Database.write`).

    The identity map holds objects only weakly, so an object every message of a processing
    transaction needs (its mailbox, the agents to notify) would be loaded again per message.
    """
    memo: dict[Hashable, Any] = session.info.setdefault(f"wicket.held.{kind}", {})
    if key not in memo:
        memo[key] = load()
    return memo[key]


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
    # Plan every statement for its parameters: a generic plan cached while the tables were
    # small stays in use as they grow (docs/architecture.md, "Reaching the database").
    server_settings.setdefault("plan_cache_mode", "force_custom_plan")
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
