"""The schema that migrations build is the schema the code declares, on both dialects."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from charter.errors import ConfigurationError
from charter.store import HEAD_REVISION, Store, open_store
from charter.store.schema import ledger_head, metadata


def _full_text_search(difference: tuple) -> bool:
    """The dialect's full-text objects, which the declared tables leave out: SQLite's
    FTS5 table (and its shadow tables), PostgreSQL's generated column and its index."""
    for item in difference:
        name = str(getattr(item, "name", ""))
        if name.startswith("memories_fts") or name in ("search", "ix_memories_search"):
            return True
    return False


def test_migrations_match_declared_schema(store: Store):
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in differences if not _full_text_search(d)] == []
    assert store.current_revision() == store.head_revision() == HEAD_REVISION


def test_upgrade_is_idempotent_and_keeps_one_ledger_head(store: Store):
    store.upgrade()
    store.upgrade()
    with store.reading() as conn:
        heads = conn.execute(select(ledger_head)).all()
    assert [(row.seq, row.mac) for row in heads] == [(0, None)]


def test_open_without_migrating_leaves_database_empty(db_url: str, settings):
    store = open_store(db_url, settings, migrate=False)
    try:
        assert "events" not in inspect(store.engine).get_table_names()
        assert store.current_revision() is None
    finally:
        store.close()


def test_sqlite_uses_wal(tmp_path, settings):
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}", settings)
    try:
        with store.reading() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 20_000
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 2048
    finally:
        store.close()


def test_the_sqlite_log_is_copied_back_at_the_size_set(tmp_path, settings):
    small = settings.model_copy(update={"sqlite_wal_pages": 50})
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}", small)
    try:
        with store.reading() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 50
    finally:
        store.close()


@pytest.mark.parametrize("url", ["mysql://localhost/x", "not a url", "redis://localhost"])
def test_unsupported_database_url_is_a_clear_error(url: str, settings):
    with pytest.raises(ConfigurationError, match="sqlite:///PATH or postgresql://"):
        open_store(url, settings)


def test_writes_after_a_failed_one_commit(store: Store):
    """Writers on SQLite share one connection: a transaction that fails leaves it ready
    for the next."""
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute(ledger_head.update().values(at="2026-01-01T00:00:00.000000Z"))
        raise RuntimeError("the command failed")
    with store.transaction() as conn:
        conn.execute(ledger_head.update().values(at="2026-02-01T00:00:00.000000Z"))
    with store.reading() as conn:
        assert conn.execute(select(ledger_head.c.at)).scalar() == "2026-02-01T00:00:00.000000Z"


def test_an_existing_sqlite_file_keeps_its_page_size(tmp_path, settings):
    import sqlite3

    path = tmp_path / "old.db"
    made = sqlite3.connect(path)
    made.execute("PRAGMA page_size = 4096")
    made.execute("CREATE TABLE kept (id INTEGER PRIMARY KEY)")
    made.close()
    store = open_store(f"sqlite:///{path}", settings)
    try:
        with store.reading() as conn:
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
            assert store.current_revision() == HEAD_REVISION
    finally:
        store.close()
