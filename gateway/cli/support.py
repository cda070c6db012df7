"""What the command modules share: running one service call in a database transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.settings import Settings
from gateway.storage.database import open_database

R = TypeVar("R")


def in_transaction(
    action: Callable[[AsyncSession, Settings], Awaitable[R]], *, errors: tuple[type[Exception], ...] = ()
) -> R:
    """Run `action` in one transaction; the given domain errors become clean CLI errors."""
    try:
        settings = Settings()
    except ValueError as error:
        raise click.ClickException(f"invalid settings: {error}") from error

    async def run() -> R:
        db = open_database(settings)
        try:
            async with db.sessions.begin() as session:
                return await action(session, settings)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except errors as error:
        raise click.ClickException(str(error)) from error
