"""Throw-away databases for one benchmark: a new SQLite file, or a new PostgreSQL schema.

`fresh_database(kind, workdir)` yields `Settings` and a `Database` whose tables were just
made with `Base.metadata.create_all`, holding the support mailbox and the agent the
fixture corpus expects; on exit the engine is disposed of and a PostgreSQL schema is
dropped (a SQLite file stays under bench/out/ for inspection until the next run). The
settings are the production defaults apart from paths, keys and the names the fixture
corpus uses. `postgres_available()` lets a missing server become a "not available" row.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

from gateway.directory.agents import add_agent
from gateway.directory.mailboxes import add_mailbox
from gateway.models import Base
from gateway.settings import Settings
from gateway.storage.database import Database, open_database

DbKind = Literal["sqlite", "postgres"]
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SUPPORT = "support@example.test"
AGENT = "tom@example.test"


def bench_settings(database_url: str, workdir: Path, **overrides: Any) -> Settings:
    """Production defaults, with the names the fixture corpus is written for."""
    return Settings(
        database_url=database_url,
        var_dir=workdir / "var",
        secret_keys=["bench-secret-key"],
        public_url="http://portal.example.test",
        smtp_hostname="mx.example.test",
        loop_token="example.test",
        **overrides,
    )


async def postgres_available() -> bool:
    engine = create_async_engine(PG_URL)
    try:
        async with asyncio.timeout(5), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure to connect means the benchmark cannot use it
        return False
    finally:
        await engine.dispose()


@asynccontextmanager
async def _postgres_schema() -> AsyncIterator[dict[str, Any]]:
    schema = f"wicket_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield {"connect_args": {"server_settings": {"search_path": schema}}}
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


async def _prepare(db: Database) -> None:
    def prepare(session: Session) -> None:
        Base.metadata.create_all(session.connection())
        add_mailbox(session, SUPPORT, "Example Support")
        add_agent(session, AGENT, "Tom Agent")

    await db.write(prepare)


@asynccontextmanager
async def fresh_database(kind: DbKind, workdir: Path, **overrides: Any) -> AsyncIterator[tuple[Settings, Database]]:
    """Settings and an empty, prepared database of `kind`, cleaned up afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        path = workdir / "wicket.db"
        for leftover in workdir.glob("wicket.db*"):
            leftover.unlink()
        settings = bench_settings(f"sqlite+aiosqlite:///{path}", workdir, **overrides)
        db = open_database(settings)
        try:
            await _prepare(db)
            yield settings, db
        finally:
            await db.dispose()
        return
    async with _postgres_schema() as options:
        settings = bench_settings(PG_URL, workdir, **overrides)
        db = open_database(settings, **options)
        try:
            await _prepare(db)
            yield settings, db
        finally:
            await db.dispose()
