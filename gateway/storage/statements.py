"""Statements by name, the hot ones prepared: compiled once per dialect, run on the DBAPI cursor.

The module that owns a statement registers it once, at import, under a dotted name
(`prepare("delivery.duplicate", select(...))`, which returns the name), and runs it by
that name (`rows(name, connection, params)`, `scalar(...)`). This module is the one list
of what runs prepared (`prepared_names()`); it cannot build the statements itself, since
storage sits below the models. A statement is prepared only where a benchmark row shows
the difference (bench/RESULTS.md, "Prepared statements", says which rows and by how
much); one registered with `compiled=False` runs by its name through `Connection.execute`
and SQLAlchemy's compiled cache, like every statement that is not registered here.

The processor runs about ten statements per message and the portal's ticket list two per
request. Through `Connection.execute` each costs 25–80 µs of SQLAlchemy (cache key,
execution context, result wrapping) on top of a few µs of SQLite. `Prepared` keeps the
compiled SQL, the order of its parameters, their type conversions both ways and the
column defaults an INSERT takes from Python, and hands plain values to the driver's
cursor on the connection's own transaction (and savepoints); rows come back as tuples.
A statement with an expanding IN parameter is expanded per call through the compiled
form's own `construct_expanded_state`. What it gives up, deliberately: result conversions
are chosen when the statement is compiled (not from the cursor's description),
`before_cursor_execute` listeners do not see these statements, and driver errors are
wrapped as SQLAlchemy's (`IntegrityError`, `OperationalError`, …) with their parameters
hidden, as the engines do (gateway/storage/database.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Plan:
    """One statement compiled for one dialect and one set of parameter names."""

    compiled: SQLCompiler
    expanding: bool  # an IN parameter whose list is spliced in per call
    # Per positional parameter: its name, and its conversion for the driver.
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    # Values of parameters the caller does not give: an INSERT's column defaults, literals.
    defaults: Mapping[str, Callable[[], Any]]
    # The result columns that need converting from the driver's value: (position, conversion).
    results: tuple[tuple[int, Callable[[Any], Any]], ...]
    # The same conversions by parameter name, for statements whose IN lists are expanded per call.
    by_name: Mapping[str, Callable[[Any], Any]]

    def bind(self, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL and the driver's positional values for `params`."""
        if self.expanding:
            # The expanded state's processors cover the spliced-in list only; every other
            # parameter keeps the conversion compiled for it.
            state = self.compiled.construct_expanded_state(params)
            processors = {**self.by_name, **state.processors}
            values = []
            for name in state.positiontup or ():
                value, process = state.parameters[name], processors.get(name)
                values.append(value if process is None else process(value))
            return state.statement, values
        values = []
        for name, process in zip(self.names, self.processors, strict=True):
            value = params[name] if name in params else self.defaults[name]()
            values.append(value if process is None else process(value))
        return self.compiled.string, values

    def convert(self, rows: list[Row]) -> list[Row]:
        if not self.results:
            return rows
        converted = []
        for row in rows:
            values = list(row)
            for position, convert in self.results:
                values[position] = convert(values[position])
            converted.append(tuple(values))
        return converted


_NAMED: dict[str, Prepared | Executable] = {}


def prepare(name: str, statement: Executable, *, compiled: bool = True) -> str:
    """Register `statement` under `name` (once, at import), prepared unless `compiled` is False; the name."""
    if name in _NAMED:
        raise ValueError(f"a statement is already prepared as {name!r}")
    _NAMED[name] = Prepared(statement) if compiled else statement
    return name


def rows(name: str, connection: Connection, params: Mapping[str, Any]) -> list[Row]:
    """Run the statement registered as `name` with `params` (by bind name); its rows as tuples."""
    statement = _NAMED[name]
    if isinstance(statement, Prepared):
        return statement.rows(connection, params)
    result = connection.execute(statement, dict(params))
    return [tuple(row) for row in result] if result.returns_rows else []


def scalar(name: str, connection: Connection, params: Mapping[str, Any]) -> Any:
    """The first column of the first row of the statement registered as `name`, or None."""
    found = rows(name, connection, params)
    return found[0][0] if found else None


def registered(name: str) -> Executable:
    """The statement registered as `name`, as it was built (to read its query plan, say)."""
    statement = _NAMED[name]
    return statement.statement if isinstance(statement, Prepared) else statement


def prepared_names() -> tuple[str, ...]:
    """Every statement that runs prepared, by name, in the order they were registered."""
    return tuple(name for name, statement in _NAMED.items() if isinstance(statement, Prepared))


class Prepared:
    """`rows()` / `scalar()` run the statement with plain values on a Connection in a transaction."""

    __slots__ = ("_statement", "_plans")

    def __init__(self, statement: Executable) -> None:
        self._statement = statement
        self._plans: dict[tuple[Dialect, tuple[str, ...]], _Plan] = {}

    @property
    def statement(self) -> Executable:
        return self._statement

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[Row]:
        """Run with `params` (by bind name; an INSERT's column defaults are filled in)."""
        dialect = connection.dialect
        plan = self._plans.get((dialect, tuple(params)))
        if plan is None:
            plan = self._plans[dialect, tuple(params)] = self._compile(dialect, tuple(params))
        sql, values = plan.bind(params)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, values)
            rows = cursor.fetchall() if cursor.description else []
        except dialect.loaded_dbapi.Error as error:
            raise sa_exc.DBAPIError.instance(
                sql, values, error, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
            ) from error
        finally:
            cursor.close()
        return plan.convert(rows)

    def scalar(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None when there is no row."""
        rows = self.rows(connection, params)
        return rows[0][0] if rows else None

    def _compile(self, dialect: Dialect, keys: tuple[str, ...]) -> _Plan:
        compiled = self._statement.compile(dialect=dialect, column_keys=list(keys))
        assert isinstance(compiled, SQLCompiler)
        if compiled.update_prefetch:
            raise ValueError("Prepared does not compute onupdate values")
        names = tuple(compiled.positiontup or ())
        binds = [compiled.binds[name] for name in names]
        defaults: dict[str, Callable[[], Any]] = {}
        for column in compiled.insert_prefetch:  # Python-side column defaults of an INSERT
            default = column.default
            if getattr(default, "is_callable", False):
                defaults[column.key] = lambda function=default.arg: function(None)  # type: ignore[union-attr]
            elif getattr(default, "is_scalar", False):
                defaults[column.key] = lambda value=default.arg: value  # type: ignore[union-attr]
            else:
                raise ValueError(f"Prepared cannot compute the default of {column}")
        for name, bind in zip(names, binds, strict=True):
            if name not in keys and name not in defaults and not bind.required:  # a literal in the statement
                defaults[name] = lambda value=bind.effective_value: value
        processors = tuple(bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds)
        conversions = (
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in self._statement.exported_columns  # type: ignore[attr-defined]
        )
        results = tuple((position, convert) for position, convert in enumerate(conversions) if convert is not None)
        expanding = any(bind.expanding for bind in compiled.binds.values())
        by_name = {name: process for name, process in zip(names, processors, strict=True) if process is not None}
        return _Plan(compiled, expanding, names, processors, defaults, results, by_name)
