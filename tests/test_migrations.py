"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from gateway import migrate
from gateway.db import open_database
from gateway.settings import Settings


async def test_migrations_create_the_schema_the_models_describe(
    settings: Settings, database_url: tuple[str, dict[str, object]]
) -> None:
    db = open_database(settings, **database_url[1])
    try:
        await migrate.upgrade(db)
        assert await migrate.pending_changes(db) == []
    finally:
        await db.dispose()
