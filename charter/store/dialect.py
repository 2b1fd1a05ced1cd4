"""Everything that differs between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, Row, Select, event, select, text
from sqlalchemy.engine import URL, make_url

from charter.errors import ConfigurationError
from charter.settings import Settings
from charter.store.schema import ledger_head

_HEAD = select(ledger_head).where(ledger_head.c.id == 1)
_HEAD_FOR_UPDATE = _HEAD.with_for_update()
_MEMORY_COLUMNS = ('m.id, m.seq, m.subject, m.member, m.kind, m.text, m.tags, m."by", '
                   "m.created_at")
SQLITE_SEARCH_MEMORIES = text(
    f"SELECT {_MEMORY_COLUMNS}, ranked.score FROM ("
    "SELECT rowid AS seq, -bm25(memories_fts) AS score FROM memories_fts "
    "WHERE memories_fts MATCH :match "
    # `+rowid`: test each match against the subject's few rows, rather than run the
    # full-text query once per row (bm25 would recount every term's documents each time)
    "AND +rowid IN (SELECT seq FROM memories WHERE subject = :subject "
    "AND (member IS NULL OR member = :reader)) "
    "ORDER BY score DESC, rowid DESC LIMIT :limit"
    ") AS ranked JOIN memories AS m ON m.seq = ranked.seq "
    "ORDER BY ranked.score DESC, ranked.seq DESC")
"""SQLite's ranked memory search (named parameters: match, subject, reader, limit)."""

READ_ONLY = "charter_read_only"
"""Execution option marking a connection that only reads (SQLite: deferred BEGIN)."""

_Query = TypeVar("_Query", bound=Select[Any])


class Dialect(Protocol):
    name: str
    one_writer: bool
    """Whether a write transaction excludes every other writer from its start (so a
    lock taken only to order writers is not needed)."""

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

    def search_memories(self, conn: Connection, terms: Sequence[str], *, subject: str,
                        reader: str | None, limit: int) -> list[Row[Any]]:
        """The `memories` rows of `subject` that match any of `terms` (each searched as
        plain words, never as query syntax) and that `reader` may see (shared ones, and
        those private to `reader`), most relevant first, each with its relevance in a
        `score` column (higher is more relevant; comparable within one search only)."""
        ...

    def purge_search_index(self, conn: Connection) -> None:
        """Drop the terms of deleted memories from the full-text index's storage, in
        `conn`'s transaction (an index may keep them until its segments are merged)."""
        ...

    def flush_erasures(self, engine: Engine) -> bool:
        """After a transaction that erased text has committed: make sure the erased bytes
        survive in no file the database keeps beside its tables. False when that could
        not be completed now (it then completes at a later checkpoint)."""
        ...


SQLITE_PAGE_SIZE = 2048
"""Bytes per page of a database file Charter creates. A commit writes every page it
changed, whole, to the write-ahead log; Charter's rows are small (a ledger event, a
task, a lease) and each write touches a row and a few index entries, so half SQLite's
usual 4 KiB halves what most commits write, while a row still fits in a page."""


class SQLiteDialect:
    """One writer at a time: every write transaction starts with BEGIN IMMEDIATE."""

    name = "sqlite"
    one_writer = True

    def engine_url(self, url: URL) -> URL:
        return url

    def engine_options(self, settings: Settings) -> dict[str, Any]:
        return {}

    def configure(self, engine: Engine, settings: Settings) -> None:
        busy_ms = int(settings.sqlite_busy_timeout * 1000)
        wal_pages = int(settings.sqlite_wal_pages)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
            # pysqlite's own transaction handling starts transactions lazily and never
            # takes the write lock up front; we issue BEGIN ourselves (see _on_begin).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # Only a new, empty file takes it (before WAL mode); an existing one keeps
            # the page size it was made with.
            cursor.execute(f"PRAGMA page_size = {SQLITE_PAGE_SIZE}")
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute(f"PRAGMA wal_autocheckpoint = {wal_pages}")
            cursor.execute("PRAGMA foreign_keys = ON")
            # Deleted content (a forgotten memory, a redacted payload) is overwritten
            # with zeros instead of lingering in free space in the file.
            cursor.execute("PRAGMA secure_delete = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            # On the driver: every transaction starts here, and SQLAlchemy's execution
            # path would cost more than the statement.
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                "BEGIN" if read_only else "BEGIN IMMEDIATE")

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

    def search_memories(self, conn: Connection, terms: Sequence[str], *, subject: str,
                        reader: str | None, limit: int) -> list[Row[Any]]:
        if not terms:
            return []
        # Every term is an FTS5 string ("…", quotes doubled): the user's text is never
        # read as query syntax. Any term may match; bm25 ranks those matching more.
        match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
        return list(conn.execute(SQLITE_SEARCH_MEMORIES, {
            "match": match, "subject": subject, "reader": reader, "limit": limit}))

    def purge_search_index(self, conn: Connection) -> None:
        # FTS5 (before 3.42's secure-delete) records a delete as a tombstone and keeps
        # the terms in older segments; 'optimize' merges them all, dropping both.
        conn.exec_driver_sql("INSERT INTO memories_fts(memories_fts) VALUES ('optimize')")

    def flush_erasures(self, engine: Engine) -> bool:
        # The WAL still holds the pages as they were before the erasure: copy it into
        # the database file and truncate it. Outside any transaction, so on the driver
        # connection (SQLAlchemy would BEGIN first).
        with engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert isinstance(driver, sqlite3.Connection)
            busy, _, _ = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return bool(busy == 0)


class PostgresDialect:
    """A connection pool; appenders queue on the ledger head's row lock."""

    name = "postgresql"
    one_writer = False
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

    def search_memories(self, conn: Connection, terms: Sequence[str], *, subject: str,
                        reader: str | None, limit: int) -> list[Row[Any]]:
        if not terms:
            return []
        # One bound plainto_tsquery per term, OR-ed (||): user text is never parsed as
        # tsquery syntax, and any term may match; ts_rank ranks those matching more.
        query = " || ".join(f"plainto_tsquery('english', :term{i})" for i in range(len(terms)))
        statement = text(
            f"SELECT {_MEMORY_COLUMNS}, ts_rank(m.search, q.query) AS score "
            f"FROM memories AS m, (SELECT {query} AS query) AS q "
            "WHERE m.subject = :subject AND (m.member IS NULL OR m.member = :reader) "
            "AND m.search @@ q.query ORDER BY score DESC, m.seq DESC LIMIT :limit")
        values: dict[str, Any] = {f"term{i}": term for i, term in enumerate(terms)}
        return list(conn.execute(statement, {**values, "subject": subject,
                                             "reader": reader, "limit": limit}))

    def purge_search_index(self, conn: Connection) -> None:
        # The tsvector is a column of the memory's own row: it goes with the row.
        return None

    def flush_erasures(self, engine: Engine) -> bool:
        # Deleted row versions stay in the table's pages until (auto)vacuum reclaims
        # them; no query can read them.
        return True


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
