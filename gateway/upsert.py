"""Insert-if-absent for both dialects, so concurrent workers never trip over a unique key."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_ignore(session: AsyncSession, model: type[Any], values: dict[str, Any], keys: list[str]) -> None:
    """INSERT … ON CONFLICT (keys) DO NOTHING on SQLite and PostgreSQL."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(model).values(**values).on_conflict_do_nothing(index_elements=keys)
    await session.execute(statement)
