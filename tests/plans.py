"""Reading the database's plan for a statement, for tests of what a statement reads.

`sqlite_plan` is SQLite's `EXPLAIN QUERY PLAN`, one step per line; `postgres_plan` is
PostgreSQL's `EXPLAIN`, run with `analyze` when the test needs what the statement
actually read (`rows_read`: the rows each step of the executed plan returned).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.dialects import sqlite

from gateway.storage.database import Database


async def sqlite_plan(db: Database, statement: Executable) -> list[str]:
    """SQLite's plan for `statement`, its parameters unbound (NULL), as the planner sees them."""
    compiled = statement.compile(dialect=sqlite.dialect())
    params = (None,) * len(compiled.positiontup or ())
    return await db.read(
        lambda connection: [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)]
    )


def postgres_plan(
    connection: Connection, statement: Executable, values: Mapping[str, Any], *, analyze: bool = False
) -> list[str]:
    """PostgreSQL's plan for `statement` with `values` (as the driver takes them: naive UTC times)."""
    compiled = statement.compile(dialect=connection.dialect)
    params = compiled.construct_params(dict(values))
    positional = tuple(params[name] for name in compiled.positiontup or ())
    found = connection.exec_driver_sql(f"{'EXPLAIN ANALYZE' if analyze else 'EXPLAIN'} {compiled}", positional)
    return [line for (line,) in found]


def rows_read(plan: list[str]) -> list[int]:
    """The rows each step of an executed (`analyze`) plan returned."""
    return [int(rows) for rows in re.findall(r"actual time=\S+ rows=(\d+)", "\n".join(plan))]
