"""SQLite underneath `Database`: one reader, one writer and a checkpointer per file.

SQLite runs in WAL mode with `synchronous=FULL`, so a committed row survives a power cut.
A file has one reader and one writer in a process, shared by everything in it (the SMTP
store, the processor, the outbox, the portal), and `Database.read`/`Database.write` run
work on them (docs/architecture.md, "Reaching the database"):

- `SqliteReader`: a read costs one call. A kept synchronous pysqlite connection answers
  inline on the event loop, since WAL readers never wait for the writer and an indexed
  read takes microseconds; a large read goes to the reader's own thread.
- `SqliteWriter`: every write runs on one writer thread, in one hop (through an async
  driver every cursor, fetch and close would be a hop of its own), and the units that
  queued meanwhile share one commit, one fsync (group commit). Writes never collide on
  the file's lock.
- `WalCheckpointer`: copies the WAL back into the database file on a thread of its own,
  on a connection of the reader's engine, so no commit waits for a checkpoint; SQLite's
  own automatic checkpoint, run by whichever commit crosses the threshold, remains as a
  backstop at a much larger WAL.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import SingletonThreadPool

T = TypeVar("T")

log = logging.getLogger(__name__)


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
        self.engine = create_sync_engine(
            url.set(drivername="sqlite"), poolclass=SingletonThreadPool, hide_parameters=True
        )
        event.listen(self.engine, "connect", sqlite_pragmas)
        event.listen(self.engine, "connect", _driver_autocommit)
        event.listen(self.engine, "begin", _begin_immediate)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._listeners_first = ListenersFirst(url)
        self._lock = threading.Lock()
        self._pending: list[tuple[Callable[[Session], Any], asyncio.Future[Any]]] = []
        self._listener_pending = False

    async def run(self, work: Callable[[Session], T], *, listener: bool = False) -> T:
        """`work(session)` in the next batch; `listener`: an SMTP listener's commit, which goes first."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._pending.append((work, future))
            self._listener_pending = self._listener_pending or listener
            first = len(self._pending) == 1
        if first:
            self._thread.submit(self._write_batch, loop)
        return await future

    def listeners_waiting(self) -> bool:
        """A listener of this process queued a commit, or one of another process waits at the gate."""
        return self._listener_pending or self._listeners_first.listeners_waiting()

    def _write_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            listener = self._listener_pending
        if not listener:
            self._listeners_first.give_way()  # units queued meanwhile join this batch
        with self._lock:
            batch, self._pending = self._pending, []
            listener, self._listener_pending = self._listener_pending, False
        gate = self._listeners_first.listening() if listener else self._listeners_first.background()
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            with gate, Session(self.engine, expire_on_commit=False) as session, session.begin():
                # BEGIN IMMEDIATE once, before any unit: a file that cannot be written (its
                # lock held past the busy timeout) fails the batch at once, not once per unit.
                session.connection()
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
        self._listeners_first.close()


class ListenersFirst:
    """On SQLite, the node's writers take turns at lock files, and the SMTP listeners go first.

    SQLite has one write lock, and a connection that finds it taken sleeps in SQLite's busy
    handler (1, 2, 5 … up to 100 ms) before it tries again: a listener that met a
    processing transaction waited for it and then for the rest of its sleep, and every such
    sleep was a 250 late. So every writer of the file also takes turns at a lock file beside
    it (`-writer`), held exclusively from `BEGIN` to `COMMIT`: a writer that finds another's
    transaction open waits in the kernel and is woken the moment it ends, and SQLite's busy
    handler is left for writers outside the node (a second `wicket` command).

    Turns at one `flock` come in no order, and a back process committing transaction after
    transaction would win most of them. So a second file (`-listeners`) says who is
    waiting: a listener holds it shared from before it asks for its turn until its commit
    is done, and any other writer takes it exclusively, and lets go at once, before asking
    for its turn, so it waits while any listener is committing or waiting to; and if a
    listener came while it waited for the turn, it hands the turn back and waits again.
    Acknowledging mail goes first; processing, which may lag, takes the gaps
    (docs/architecture.md, "One node, several processes"). Each user holds its own
    descriptors, since `flock` on one descriptor converts rather than waits. Used from
    writer threads only: it blocks.
    """

    def __init__(self, url: URL) -> None:
        # A database in memory has no other process to take turns with.
        shared = bool(url.database) and url.database != ":memory:"
        self._waiting = self._open(f"{url.database}-listeners") if shared else None
        self._turn = self._open(f"{url.database}-writer") if shared else None

    @staticmethod
    def _open(path: str) -> int:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def listening(self) -> Iterator[None]:
        """A listener's transaction: ahead of every background writer still waiting."""
        with self._held(self._waiting, fcntl.LOCK_SH), self._held(self._turn, fcntl.LOCK_EX):
            yield

    @contextmanager
    def background(self) -> Iterator[None]:
        """Any other writer's transaction: after the listeners committing or waiting to."""
        self.give_way()
        while self._turn is not None:
            fcntl.flock(self._turn, fcntl.LOCK_EX)
            if not self.listeners_waiting():
                break
            fcntl.flock(self._turn, fcntl.LOCK_UN)  # a listener came while this writer waited
            self.give_way()
        try:
            yield
        finally:
            if self._turn is not None:
                fcntl.flock(self._turn, fcntl.LOCK_UN)

    def listeners_waiting(self) -> bool:
        """Whether a listener is committing or waiting to (two system calls, no waiting)."""
        if self._waiting is None:
            return False
        try:
            fcntl.flock(self._waiting, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._waiting, fcntl.LOCK_UN)
        return False

    def give_way(self) -> None:
        if self._waiting is not None:
            fcntl.flock(self._waiting, fcntl.LOCK_EX)
            fcntl.flock(self._waiting, fcntl.LOCK_UN)

    @staticmethod
    @contextmanager
    def _held(fd: int | None, mode: int) -> Iterator[None]:
        if fd is None:
            yield
            return
        fcntl.flock(fd, mode)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        for fd in (self._waiting, self._turn):
            if fd is not None:
                os.close(fd)
        self._waiting = self._turn = None


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
