"""Storage: one `Store` over SQLite or PostgreSQL, chosen by URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Connection, Engine, create_engine, insert, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from charter.errors import ConfigurationError
from charter.settings import Settings
from charter.store.dialect import Dialect, dialect_for
from charter.store.schema import ledger_head

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["Store", "ids_starting", "open_store"]

_MIGRATIONS = Path(__file__).parent / "migrations"
GENESIS_HASH = "0" * 64
HEAD_REVISION = "0011"
"""The newest migration (the test of the store checks it against the migrations): a
database already there opens without loading the migration machinery."""


class Store:
    """A database holding one Charter: transactions for writers and readers."""

    def __init__(self, engine: Engine, dialect: Dialect, url: URL) -> None:
        self.engine = engine
        self.dialect = dialect
        self.url = url
        # SQLite has one writer: threads of this process queue here rather than in
        # SQLite's busy handler, which sleeps in steps of milliseconds.
        self._writer: AbstractContextManager[Any] = (
            threading.Lock() if dialect.one_writer else nullcontext())
        # ... and, writing one at a time, they share one connection to an SQLite file
        # instead of taking one from the pool for each transaction.
        self._shares_writes = self.database_file is not None
        self._writes: Connection | None = None

    @property
    def database_file(self) -> Path | None:
        """The SQLite file, or None for a server or an in-memory database."""
        if self.dialect.name != "sqlite" or self.url.database in (None, "", ":memory:"):
            return None
        return Path(self.url.database)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back on error."""
        if not self._shares_writes:
            with self._writer, self.engine.begin() as conn:
                yield conn
            return
        with self._writer:
            shared = self._writes
            if shared is None or shared.closed or shared.invalidated:
                shared = self._writes = self.engine.connect()
            with shared.begin():
                yield shared

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction: one consistent snapshot, never takes the write lock."""
        with self.engine.connect() as raw:
            conn = raw.execution_options(**self.dialect.read_options())
            with conn.begin():
                yield conn

    def upgrade(self, revision: str = "head") -> None:
        """Apply migrations up to `revision`; several processes may call it at once."""
        if revision == "head" and self.current_revision() == HEAD_REVISION:
            return
        from alembic import command

        with self.engine.begin() as conn:
            self.dialect.lock_migrations(conn)
            config = _alembic_config(conn)
            command.upgrade(config, revision)
            _ensure_ledger_head(conn)

    def current_revision(self) -> str | None:
        """The schema's migration, or None for a database Charter has not set up."""
        with self.reading() as conn:
            try:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except DBAPIError:
                return None

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()

    def close(self) -> None:
        with self._writer:
            if self._writes is not None:
                self._writes.close()
                self._writes = None
        self.engine.dispose()


def ids_starting(conn: Connection, column: Column[str], prefix: str,
                 limit: int = 2) -> list[str]:
    """Up to `limit` ids in `column` that begin with `prefix` (for short ids typed by
    people)."""
    query = select(column).where(column.startswith(prefix, autoescape=True)).limit(limit)
    return [str(value) for value in conn.execute(query).scalars()]


def _alembic_config(conn: Connection | None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _ensure_ledger_head(conn: Connection) -> None:
    if conn.execute(select(ledger_head.c.id)).first() is None:
        conn.execute(insert(ledger_head).values(id=1, seq=0, hash=GENESIS_HASH))


def open_store(url: str | None = None, settings: Settings | None = None, *,
               migrate: bool | None = None) -> Store:
    """Open the database at `url` (default: the `db` setting), upgrading its schema
    unless `migrate` (default: the `auto_migrate` setting) is false."""
    settings = settings or Settings()
    dialect, engine_url = dialect_for(url or settings.db)
    engine = create_engine(engine_url, **dialect.engine_options(settings))
    dialect.configure(engine, settings)
    store = Store(engine, dialect, engine_url)
    if migrate if migrate is not None else settings.auto_migrate:
        try:
            store.upgrade()
        except Exception as error:
            store.close()
            if isinstance(error, ConfigurationError):
                raise
            raise ConfigurationError(
                f"cannot open the database {engine_url.render_as_string(hide_password=True)}"
                f": {error}") from error
    return store
