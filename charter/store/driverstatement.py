"""A statement SQLAlchemy compiles once per dialect and the driver runs directly.

Every write appends to the ledger, so its two statements (insert the events, move the
head) run in every write transaction; the task and outcome writes of the task path and
granting and releasing leases are the other paths measured in thousands a second. For
statements this small, SQLAlchemy's execution path (an execution context, its events, a
result object) costs more than the database's own work. A `DriverStatement` keeps
SQLAlchemy's compiled SQL (quoting, parameter style and order for the dialect) and runs
it on the connection's DBAPI cursor, inside the same transaction.

Values are converted as SQLAlchemy would convert them, on the way in (each parameter
type's bind processor for the dialect: booleans and decimals on SQLite, say) and on the
way out (each selected column type's result processor). A write reads back only its row
count; a read (`rows`) gives plain named tuples.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

_Reader = Callable[[Sequence[Any]], Any]


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
        self._readers: dict[str, _Reader] = {}

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

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Execute a SELECT; its rows, each value converted as SQLAlchemy would convert
        it (the column type's result processor for the dialect), the columns named as
        attributes."""
        compiled = self._for(conn)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(compiled.sql, compiled.arguments(params))
            found = cursor.fetchall()
            reader = self._readers.get(conn.dialect.name) or self._reader(
                conn, cursor.description)
        finally:
            cursor.close()
        return [reader(row) for row in found]

    def _reader(self, conn: Connection, description: Sequence[Any]) -> _Reader:
        """Turns the driver's rows of this SELECT into named, converted ones."""
        dialect = conn.dialect
        assert isinstance(self.statement, Select)
        selected = list(self.statement.selected_columns)
        named = namedtuple("Row", [column.key for column in selected])  # type: ignore[misc]
        processors = [column.type.dialect_impl(dialect).result_processor(dialect, info[1])
                      for column, info in zip(selected, description, strict=True)]

        def read(row: Sequence[Any]) -> Any:
            return named._make(value if process is None else process(value)
                               for process, value in zip(processors, row, strict=True))

        reader = read if any(processors) else named._make
        self._readers[dialect.name] = reader
        return reader

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
