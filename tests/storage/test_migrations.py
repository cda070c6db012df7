"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, inspect

from gateway.cli import migrate
from gateway.settings import Settings
from gateway.storage.database import open_database


async def test_migrations_create_the_schema_the_models_describe(
    settings: Settings, database_url: tuple[str, dict[str, object]]
) -> None:
    db = open_database(settings, **database_url[1])
    try:
        await migrate.upgrade(db)
        assert await migrate.pending_changes(db) == []
    finally:
        await db.dispose()


async def test_the_message_thread_index_downgrades_and_upgrades_again(
    settings: Settings, database_url: tuple[str, dict[str, object]]
) -> None:
    def indexes(connection: Connection) -> set[str]:
        return {index["name"] for index in inspect(connection).get_indexes("message")}

    def downgrade(connection: Connection) -> None:
        config = migrate.alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0003_outbox_drafts")

    db = open_database(settings, **database_url[1])
    try:
        await migrate.upgrade(db)
        assert "ix_message_ticket_thread" in await db.read(indexes)
        await db.write(lambda session: downgrade(session.connection()))
        assert "ix_message_ticket_thread" not in await db.read(indexes)
        await migrate.upgrade(db)
        assert await migrate.pending_changes(db) == []
    finally:
        await db.dispose()
