"""A statement SQLAlchemy compiles once per dialect and the driver runs directly.

Every write appends to the ledger, so its two statements (insert the events, move the
head) run in every write transaction; the task and outcome writes of the task path and
granting and releasing leases are the other paths measured in thousands a second. For
statements this small, SQLAlchemy's execution path (an execution context, its events, a
result object) costs more than the database's own work. A `DriverStatement` keeps
SQLAlchemy's compiled SQL (quoting, parameter style and order for the dialect) and runs
it on the connection's DBAPI cursor, inside the same transaction.

Values are converted on the way in as SQLAlchemy would convert them (each parameter
type's bind processor for the dialect: booleans and decimals on SQLite, say). Only for
statements whose only result read is a row count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement


@dataclass(frozen=True)
class _Compiled:
    sql: str
    order: tuple[str, ...] | None
    """Parameter names in order, for a dialect whose parameters are positional."""
    fixed: dict[str, Any]
    """Values the statement binds itself (its literals)."""
    convert: Mapping[str, Callable[[Any], Any]]
    """Per parameter whose type converts values for the driver, the conversion."""

    def arguments(self, params: Mapping[str, Any]) -> Any:
        values = {**self.fixed, **params} if self.fixed else params
        if self.convert:
            values = {**values, **{name: convert(values[name])
                                   for name, convert in self.convert.items()
                                   if name in values}}
        if self.order is None:
            return values
        return tuple(values[name] for name in self.order)


class DriverStatement:
    """`statement`, run with the driver's cursor in the caller's transaction."""

    def __init__(self, statement: ClauseElement,
                 columns: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.columns = list(columns) if columns is not None else None
        """The columns every row sets (an INSERT's values, an UPDATE's SET), in any
        order; None for a statement that names its values itself."""
        self._compiled: dict[str, _Compiled] = {}

    def run(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Execute once; return the number of rows it changed."""
        compiled = self._for(conn)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(compiled.sql, compiled.arguments(params))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per row."""
        compiled = self._for(conn)
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(compiled.sql, [compiled.arguments(row) for row in rows])
        finally:
            cursor.close()

    def _for(self, conn: Connection) -> _Compiled:
        dialect = conn.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=self.columns)
            assert isinstance(compiled, SQLCompiler)
            given = set(self.columns or ())
            fixed = {name: value for name, value in compiled.params.items()
                     if name not in given and value is not None}
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            convert = {name: process for name, bound in compiled.binds.items()
                       if (process := bound.type.dialect_impl(dialect).bind_processor(
                           dialect)) is not None}
            found = _Compiled(compiled.string, order, fixed, convert)
            self._compiled[dialect.name] = found
        return found
