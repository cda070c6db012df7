"""Alembic environment: runs migrations on a connection handed in by `gateway.cli.migrate`,
or, when Alembic's own command line is used, on the database named by Settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from gateway.models import Base
from gateway.models.help import include_name
from gateway.settings import Settings
from gateway.storage.database import open_database

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_settings() -> None:
    db = open_database(Settings())
    try:
        await db.write(lambda session: _run(session.connection()))
    finally:
        await db.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_with_settings())
