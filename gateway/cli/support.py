"""What the command modules share: settings, one service call in a transaction, clean errors.

`node_settings` is for the commands that act as the installation (serve, demo, replay,
link issue): like `wicket serve` they create the secret key file on first use, so a fresh
install works in any order. `WicketGroup` turns the database errors a user can fix
(no tables yet, nothing listening) into one sentence that says what to run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gateway.settings import Settings
    from gateway.storage.database import Database

# Settings, SQLAlchemy and the database are imported inside the functions that use them, so
# that `wicket --help`, which loads this module, loads none of them.

R = TypeVar("R")


def settings(**overrides: object) -> Settings:
    from gateway.settings import Settings

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValueError as error:
        raise click.ClickException(f"invalid settings: {error}") from error


def node_settings(**overrides: object) -> Settings:
    """Settings for a command that signs links: the key file is created on first use."""
    from gateway.settings import ensure_secret_key

    chosen = settings(**overrides)
    try:
        ensure_secret_key(chosen)
    except OSError as error:
        raise click.ClickException(
            f"cannot create the secret key file {chosen.secret_key_file} ({error.strerror}): "
            "set WICKET_SECRET_KEYS or WICKET_VAR_DIR to a writable directory"
        ) from error
    return chosen


class WicketGroup(click.Group):
    """The `wicket` group: database errors with a known fix become that fix, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as error:
            advice = database_advice(error)
            if advice is None:
                raise
            raise click.ClickException(advice) from error


def database_advice(error: BaseException) -> str | None:
    """The fix for a database error a user can fix (also when wrapped, e.g. by the store)."""
    from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, (OperationalError, ProgrammingError)):
        cause = cause.__cause__ or cause.__context__
    if not isinstance(cause, DBAPIError):
        return None
    text = str(cause.orig).lower()
    if "no such table" in text or "no column named" in text or "does not exist" in text:
        return "the database has no Wicket tables yet: run `wicket db upgrade` first"
    if "unable to open database file" in text:
        return "cannot open the SQLite database file: check WICKET_DATABASE_URL and that its folder is writable"
    if "connection refused" in text or "could not connect" in text:
        return "cannot reach the database: check WICKET_DATABASE_URL and that the server is running"
    return None


def with_database(
    action: Callable[[Database, Settings], Awaitable[R]],
    *,
    errors: tuple[type[Exception], ...] = (),
    signing: bool = False,
) -> R:
    """Run `action` on an opened database; the given domain errors become clean CLI errors.

    `signing`: the command derives secrets from the server key, created on first use.
    """
    import asyncio

    from gateway.storage.database import open_database

    chosen = node_settings() if signing else settings()

    async def run() -> R:
        db = open_database(chosen)
        try:
            return await action(db, chosen)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except errors as error:
        raise click.ClickException(str(error)) from error


def in_unit(
    work: Callable[[Session, Settings], R], *, errors: tuple[type[Exception], ...] = (), signing: bool = False
) -> R:
    """`work(session, settings)` as one synchronous write transaction (`Database.write`)."""
    return with_database(
        lambda db, chosen: db.write(lambda session: work(session, chosen)), errors=errors, signing=signing
    )
