"""Database engine and session factory for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with `synchronous=FULL`, so a committed row survives a power cut,
and with a busy timeout so the SMTP writer and the processor can share the file. PostgreSQL
gets a pool sized from settings and a statement timeout. `Database` bundles the engine and
its session factory so one object travels through the application.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from gateway.settings import Settings


@dataclass(frozen=True, slots=True)
class Database:
    """The engine and the session factory built from it."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def dispose(self) -> None:
        await self.engine.dispose()


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(settings: Settings, url: str | None = None, **options: Any) -> AsyncEngine:
    """Build the async engine for `url` (default: the configured database)."""
    parsed = make_url(url or settings.database_url)
    # Issue #8 fix: an error's text must not quote statement parameters (mail bodies with
    # quoted magic links, outgoing mail); it reaches logs and `last_error` (`wicket status`).
    options.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
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
    engine = create_engine(settings, url, **options)
    return Database(engine, async_sessionmaker(engine, expire_on_commit=False))
