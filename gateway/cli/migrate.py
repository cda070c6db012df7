"""`wicket db upgrade`: schema migrations through Alembic, on the application's own engine.

`upgrade` is one write of the given Database (`Database.write`), so it honours everything
its engine was built with (SQLite pragmas, a PostgreSQL search_path in tests) and takes
its turn with any other writer. `pending_changes`
compares the migrated schema with the models, which the test suite uses to prove the
migrations and the models agree. The Alembic configuration is built here, in code, with
the migrations found inside the installed package, so no `alembic.ini` and no checkout
are needed at runtime. Only the `db` commands, the demo and the tests import this module,
so no other command loads Alembic (tests/cli/test_cli_imports.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from gateway.cli.support import console, on_database, run_async
from gateway.models import Base
from gateway.models.help import include_name
from gateway.storage.database import Database

MIGRATIONS = Path(__file__).resolve().parents[1] / "storage" / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(db: Database, revision: str = "head") -> None:
    await db.write(lambda session: _upgrade(session.connection(), revision))


def _diff(connection: Connection) -> list[Any]:
    options = {"compare_type": True, "include_name": include_name}  # search DDL: see gateway.models.help
    context = MigrationContext.configure(connection, opts=options)
    return compare_metadata(context, Base.metadata)


async def pending_changes(db: Database) -> list[Any]:
    """Differences between the database schema and the models (empty when they agree)."""
    return await db.read(_diff)


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@run_async
async def db_upgrade() -> None:
    """Apply all migrations."""
    await on_database(upgrade)
    console().print("database is up to date")
