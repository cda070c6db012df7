"""Insert-if-absent for both dialects, so concurrent workers never trip over a unique key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(dialect: str, model: type[Any], values: dict[str, Any], keys: list[str]) -> Insert:
    """INSERT … ON CONFLICT (keys) DO NOTHING on SQLite and PostgreSQL, for `execute`."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model.__table__).values(**values).on_conflict_do_nothing(index_elements=keys)
