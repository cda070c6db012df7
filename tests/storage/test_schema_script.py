"""The test suite's one-script schema on PostgreSQL is the schema `create_all` makes.

`tests.support.create_schema` sends the models' DDL as one script on PostgreSQL, for speed;
this compares what it made for the `db` fixture, table by table, with what
`Base.metadata.create_all` makes in a second schema: columns, keys, indexes and constraints.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.models import Base
from gateway.storage.database import Database

PG_URL = os.environ.get("WICKET_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="the script is PostgreSQL's")


@pytest.fixture
async def other_schema() -> AsyncIterator[AsyncEngine]:
    """A second empty schema, behind an engine whose search path is that schema."""
    assert PG_URL is not None
    name = f"wicket_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{name}"'))
    engine = create_async_engine(PG_URL, connect_args={"server_settings": {"search_path": name}})
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        await admin.dispose()


def _described(connection: Connection) -> dict[str, Any]:
    found = inspect(connection)
    schema = connection.exec_driver_sql("select current_schema()").scalar()
    tables = {}
    for table in found.get_table_names(schema=schema):
        tables[table] = {
            # A serial column's default names its sequence with the schema: compared without it.
            "columns": [(c["name"], str(c["type"]), c["nullable"],
                         str(c.get("default")).replace(f'"{schema}".', "").replace(f"{schema}.", ""))
                        for c in found.get_columns(table, schema=schema)],
            "primary key": found.get_pk_constraint(table, schema=schema)["constrained_columns"],
            "foreign keys": sorted((tuple(k["constrained_columns"]), k["referred_table"],
                                    tuple(k["referred_columns"]), str(k.get("options")))
                                   for k in found.get_foreign_keys(table, schema=schema)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), i["unique"], str(i.get("dialect_options")))
                              for i in found.get_indexes(table, schema=schema)),
            "unique": sorted((u["name"], tuple(u["column_names"])) for u in
                             found.get_unique_constraints(table, schema=schema)),
            "checks": sorted((c["name"], c["sqltext"]) for c in found.get_check_constraints(table, schema=schema)),
        }
    return tables


async def test_the_one_script_makes_the_tables_create_all_makes(db: Database, other_schema: AsyncEngine) -> None:
    by_script = await db.read(_described)  # `db` was made by create_schema, with the script
    async with other_schema.begin() as conn:
        await conn.run_sync(lambda sync: Base.metadata.create_all(sync))
    async with other_schema.connect() as conn:
        by_create_all = await conn.run_sync(_described)
    assert set(by_script) == {table.name for table in Base.metadata.sorted_tables}
    assert by_script == by_create_all
