"""What the command modules share: settings, the database, clean errors, list and remove output.

`node_settings` is for the commands that act as the installation (serve, demo, replay,
link issue): like `wicket serve` they create the secret key file on first use, so a fresh
install works in any order. `on_database` opens the database around an async action,
`with_database` and `in_unit` around a synchronous command; the domain errors a command
names become one clean line and exit status 1. `WicketGroup` turns the database errors a
user can fix (no tables yet, nothing listening) into one sentence that says what to run.
`print_list` and `remove_by_id` are the shapes every `list` and `remove` command shares.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy.orm import Session

    from gateway.settings import Settings
    from gateway.storage.database import Database

# Settings, SQLAlchemy and the database are imported inside the functions that use them, so
# that `wicket --help`, which loads this module, loads none of them.

P = ParamSpec("P")
R = TypeVar("R")
_console: Console | None = None


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


def console() -> Console:
    """The one rich console of the process, made when a command first prints through it."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console()
    return _console


def run_async(func: Callable[P, Awaitable[R]]) -> Callable[P, R]:
    """An async command function as a click command: it runs in an event loop of its own."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        import asyncio

        return asyncio.run(func(*args, **kwargs))  # type: ignore[arg-type]

    return wrapper


async def on_database(action: Callable[[Database], Awaitable[R]], chosen: Settings | None = None) -> R:
    """`action(db)` on the database `chosen` (default: the environment's settings) names; disposed after."""
    from gateway.storage.database import open_database

    db = open_database(chosen or settings())
    try:
        return await action(db)
    finally:
        await db.dispose()


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

    chosen = node_settings() if signing else settings()
    try:
        return asyncio.run(on_database(lambda db: action(db, chosen), chosen))
    except errors as error:
        raise click.ClickException(str(error)) from error


def in_unit(
    work: Callable[[Session, Settings], R], *, errors: tuple[type[Exception], ...] = (), signing: bool = False
) -> R:
    """`work(session, settings)` as one synchronous write transaction (`Database.write`)."""
    return with_database(
        lambda db, chosen: db.write(lambda session: work(session, chosen)), errors=errors, signing=signing
    )


# The `--json` flag of every `list` command.
json_list = click.option("--json", "as_json", is_flag=True, help="One JSON list instead of lines.")


def print_list(items: Sequence[Any], *, as_json: bool, line: Callable[[Any], str], empty: str) -> None:
    """A `list` command's output: with `--json` one JSON list (dataclasses as objects), else a
    line per item, or `empty`, which says how to add the first, when there is none."""
    if as_json:
        import json
        from dataclasses import asdict, is_dataclass

        as_objects = [asdict(item) if is_dataclass(item) else item for item in items]  # type: ignore[arg-type]
        click.echo(json.dumps(as_objects, indent=2))
        return
    if not items:
        click.echo(empty)
    for item in items:
        click.echo(line(item))


def remove_by_id(
    kind: str,
    identifier: str,
    remove: Callable[[Session, str], object],
    *,
    errors: tuple[type[Exception], ...],
    then: str = "",
) -> None:
    """A `remove` command: `remove(session, identifier)` in one transaction, then
    "<kind> <identifier> is removed" and `then`. An unknown id, or a row something still
    needs, raises one of `errors`, whose message says where to look (`wicket routes list`):
    it is printed as it is and the command exits 1."""
    in_unit(lambda session, _settings: remove(session, identifier), errors=errors)
    click.echo(f"{kind} {identifier} is removed{then}")
