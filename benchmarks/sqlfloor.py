"""The floor under a path on SQLite: the SQL it ran, replayed on the bare driver.

`record` collects every statement a block of work runs on an SQLite store, in order:
those run through SQLAlchemy (as the driver received them, parameters already converted),
those `DriverStatement` runs on the driver directly, and where each transaction began
and ended. `replay` runs that list on a copy of the database taken before the block,
with the same pragmas (the copy is opened as a `Store`), through the sqlite3 module and
nothing else. The replay's time is what the same statements cost with no Python work
around them: no policy, allocation, hashing, validation or SQLAlchemy — the ceiling of any
implementation that issues them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event

from charter import Settings
from charter.store import Store, open_store
from charter.store.dialect import READ_ONLY
from charter.store.driverstatement import DriverStatement


@dataclass
class Recording:
    """Statements in the order they ran: ("sql", text, parameters, many) or
    ("begin", "BEGIN IMMEDIATE" | "BEGIN") or ("end", "COMMIT" | "ROLLBACK")."""

    steps: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def statements(self) -> int:
        """Statements SQLite ran (an executemany runs one per row), BEGIN and COMMIT
        left out."""
        return sum((len(step[2]) if step[3] else 1) for step in self.steps
                   if step[0] == "sql")

    @property
    def transactions(self) -> int:
        return sum(1 for step in self.steps if step[0] == "begin")


def snapshot(store: Store, copy: Path) -> None:
    """A consistent copy of the store's SQLite file (its write-ahead log included)."""
    source = store.database_file
    if source is None:
        raise ValueError("the SQL floor is measured on an SQLite file")
    with sqlite3.connect(source) as reader, sqlite3.connect(copy) as writer:
        reader.backup(writer)
    reader.close()
    writer.close()


@contextmanager
def record(store: Store) -> Iterator[Recording]:
    """Record the statements run on `store` while the block runs: through SQLAlchemy
    (its `before_cursor_execute` event) and through `DriverStatement` (its three methods,
    wrapped while recording)."""
    recording = Recording()
    steps = recording.steps
    engine = store.engine

    def begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        steps.append(("begin", "BEGIN" if read_only else "BEGIN IMMEDIATE"))

    def commit(conn: Connection) -> None:
        steps.append(("end", "COMMIT"))

    def rollback(conn: Connection) -> None:
        steps.append(("end", "ROLLBACK"))

    def executed(conn: Connection, cursor: Any, statement: str, parameters: Any,
                 context: Any, executemany: bool) -> None:
        steps.append(("sql", statement, parameters, executemany))

    run, run_many, rows = DriverStatement.run, DriverStatement.run_many, DriverStatement.rows

    def traced_run(self: DriverStatement, conn: Connection,
                   params: Mapping[str, Any]) -> int:
        compiled = self._for(conn)
        steps.append(("sql", compiled.sql, compiled.arguments(params), False))
        return run(self, conn, params)

    def traced_run_many(self: DriverStatement, conn: Connection,
                        rows: Sequence[Mapping[str, Any]]) -> None:
        compiled = self._for(conn)
        steps.append(("sql", compiled.sql, [compiled.arguments(row) for row in rows], True))
        run_many(self, conn, rows)

    def traced_rows(self: DriverStatement, conn: Connection,
                    params: Mapping[str, Any]) -> list[Any]:
        compiled = self._for(conn)
        steps.append(("sql", compiled.sql, compiled.arguments(params), False))
        return rows(self, conn, params)

    listeners: list[tuple[str, Callable[..., None]]] = [
        ("begin", begin), ("commit", commit), ("rollback", rollback),
        ("before_cursor_execute", executed)]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    DriverStatement.run = traced_run  # type: ignore[method-assign]
    DriverStatement.run_many = traced_run_many  # type: ignore[method-assign]
    DriverStatement.rows = traced_rows  # type: ignore[method-assign]
    try:
        yield recording
    finally:
        DriverStatement.run, DriverStatement.run_many = run, run_many  # type: ignore[method-assign]
        DriverStatement.rows = rows  # type: ignore[method-assign]
        for name, listener in listeners:
            event.remove(engine, name, listener)


def replay(recording: Recording, copy: Path, settings: Settings) -> float:
    """Run the recorded statements on `copy` through the sqlite3 module alone; return
    the seconds they took (rows read are fetched, as the path reads them)."""
    store = open_store(f"sqlite:///{copy}", settings)
    raw = store.engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        cursor = driver.cursor()
        start = time.perf_counter()
        for step in recording.steps:
            if step[0] == "sql":
                _, sql, parameters, many = step
                if many:
                    cursor.executemany(sql, parameters)
                else:
                    cursor.execute(sql, parameters)
                    cursor.fetchall()
            else:
                cursor.execute(step[1])
        return time.perf_counter() - start
    finally:
        raw.close()
        store.close()
