"""Everything that differs between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, Row, Select, event, select, text
from sqlalchemy.engine import URL, make_url

from charter.errors import ConfigurationError
from charter.settings import Settings
from charter.store.schema import ledger_head

_HEAD = select(ledger_head).where(ledger_head.c.id == 1)
_HEAD_FOR_UPDATE = _HEAD.with_for_update()

READ_ONLY = "charter_read_only"
"""Execution option marking a connection that only reads (SQLite: deferred BEGIN)."""

_Query = TypeVar("_Query", bound=Select[Any])


class Dialect(Protocol):
    name: str

    def engine_url(self, url: URL) -> URL: ...

    def engine_options(self, settings: Settings) -> dict[str, Any]: ...

    def configure(self, engine: Engine, settings: Settings) -> None: ...

    def lock_ledger_head(self, conn: Connection) -> Row[Any]:
        """Read the ledger head, holding it until the transaction ends."""
        ...

    def lock_migrations(self, conn: Connection) -> None: ...

    def read_options(self) -> dict[str, Any]:
        """Execution options for a read-only transaction that sees one snapshot."""
        ...

    def lock_for_update(self, query: _Query) -> _Query:
        """`query`, made to hold the rows it reads until the transaction ends."""
        ...

    def claim_rows(self, query: _Query) -> _Query:
        """`query`, made to take rows no concurrent claimer holds, skipping held ones."""
        ...


class SQLiteDialect:
    """One writer at a time: every write transaction starts with BEGIN IMMEDIATE."""

    name = "sqlite"

    def engine_url(self, url: URL) -> URL:
        return url

    def engine_options(self, settings: Settings) -> dict[str, Any]:
        return {}

    def configure(self, engine: Engine, settings: Settings) -> None:
        busy_ms = int(settings.sqlite_busy_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
            # pysqlite's own transaction handling starts transactions lazily and never
            # takes the write lock up front; we issue BEGIN ourselves (see _on_begin).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    def lock_ledger_head(self, conn: Connection) -> Row[Any]:
        # BEGIN IMMEDIATE already holds the database's single write lock.
        return conn.execute(_HEAD).one()

    def lock_migrations(self, conn: Connection) -> None:
        return None

    def read_options(self) -> dict[str, Any]:
        # A deferred BEGIN reads one snapshot from its first read; no write lock.
        return {READ_ONLY: True}

    def lock_for_update(self, query: _Query) -> _Query:
        # BEGIN IMMEDIATE already serializes writers: no row locks to take.
        return query

    def claim_rows(self, query: _Query) -> _Query:
        return query


class PostgresDialect:
    """A connection pool; appenders queue on the ledger head's row lock."""

    name = "postgresql"
    _MIGRATION_LOCK = 0x43484152  # "CHAR": a fixed advisory-lock key for migrations

    def engine_url(self, url: URL) -> URL:
        return url.set(drivername="postgresql+psycopg")

    def engine_options(self, settings: Settings) -> dict[str, Any]:
        return {"pool_size": settings.pool_size, "max_overflow": settings.pool_max_overflow,
                "pool_pre_ping": True}

    def configure(self, engine: Engine, settings: Settings) -> None:
        return None

    def lock_ledger_head(self, conn: Connection) -> Row[Any]:
        return conn.execute(_HEAD_FOR_UPDATE).one()

    def lock_migrations(self, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self._MIGRATION_LOCK})

    def read_options(self) -> dict[str, Any]:
        # READ COMMITTED would let each statement see newer data; readers that check
        # invariants across tables need one snapshot.
        return {READ_ONLY: True, "isolation_level": "REPEATABLE READ",
                "postgresql_readonly": True}

    def lock_for_update(self, query: _Query) -> _Query:
        return query.with_for_update()

    def claim_rows(self, query: _Query) -> _Query:
        # Several nodes claim at once: each takes a row nobody holds, none waits.
        return query.with_for_update(skip_locked=True)


def dialect_for(url: str) -> tuple[Dialect, URL]:
    """The dialect for a database URL, and the URL SQLAlchemy should open."""
    try:
        parsed = make_url(url)
    except Exception as error:
        raise ConfigurationError(f"not a database URL: {url!r} ({error}); use "
                                 "sqlite:///PATH or postgresql://USER@HOST/DB") from None
    backend = parsed.get_backend_name()
    dialect: Dialect
    if backend == "sqlite":
        dialect = SQLiteDialect()
    elif backend in ("postgresql", "postgres"):
        dialect = PostgresDialect()
    else:
        raise ConfigurationError(f"unsupported database {backend!r} in {parsed!r}: use "
                                 "sqlite:///PATH or postgresql://USER@HOST/DB")
    return dialect, dialect.engine_url(parsed.set(drivername=backend))
