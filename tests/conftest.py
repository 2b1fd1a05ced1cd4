"""Shared fixtures: every storage test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from charter import ManualClock, Settings
from charter.store import GENESIS_HASH, HEAD_REVISION, Store, open_store
from charter.store.schema import metadata
from charter.system import Charter

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ORG = ROOT / "examples" / "acme" / "charter.yaml"
POSTGRES_URL = os.environ.get("CHARTER_TEST_POSTGRES")


def _postgres_schema_url(base: str, schema: str) -> str:
    # Commits need not wait for the disk in tests (nothing here tests durability).
    separator = "&" if "?" in base else "?"
    return (f"{base}{separator}options=-csearch_path%3D{schema}"
            "%20-csynchronous_commit%3Doff")


@contextmanager
def fresh_database(kind: str, folder: Path, prefix: str = "t") -> Iterator[str]:
    """The URL of a fresh, empty database of `kind` ("sqlite" or "postgresql"): an SQLite
    file in `folder`, or a new schema on PostgreSQL, dropped when the block ends."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'charter.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("CHARTER_TEST_POSTGRES is not set")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_schema_url(POSTGRES_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: an SQLite file, or a schema on PostgreSQL — empty, or for a test
    with a store, at the newest migration with no rows."""
    schemas = request.getfixturevalue("migrated_schemas")
    if request.param == "postgresql" and "store" in request.fixturenames and schemas:
        schema = schemas.take()
        try:
            yield _postgres_schema_url(POSTGRES_URL or "", schema)
        finally:
            schemas.give_back(schema)
        return
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(secret="test-secret", org=EXAMPLE_ORG)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file at the newest migration, made once by the migrations: a test's
    store starts as a copy of it rather than migrating a file of its own."""
    path = tmp_path_factory.mktemp("template") / "charter.db"
    open_store(f"sqlite:///{path}", Settings(secret="template")).close()
    return path


class MigratedSchemas:
    """PostgreSQL schemas at the newest migration, kept for this test process: a test
    with a store gets one emptied of the last test's rows (a few milliseconds) rather
    than a new schema and the migrations (half a second). A schema a test left at
    another migration, or could not empty, is dropped instead of kept."""

    def __init__(self, base: str) -> None:
        self.admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
        self.base = base
        self.idle: list[str] = []
        self.made: list[str] = []

    def take(self) -> str:
        while self.idle:
            schema = self.idle.pop()
            try:
                self._empty(schema)
            except DBAPIError:
                self._drop(schema)
                continue
            return schema
        schema = f"m_{uuid.uuid4().hex[:12]}"
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.made.append(schema)
        open_store(_postgres_schema_url(self.base, schema), Settings(secret="template")).close()
        return schema

    def give_back(self, schema: str) -> None:
        try:
            with self.admin.begin() as conn:
                version = conn.execute(
                    text(f'SELECT version_num FROM "{schema}".alembic_version')).scalar()
        except DBAPIError:
            version = None
        if version == HEAD_REVISION:
            self.idle.append(schema)
        else:
            self._drop(schema)

    def close(self) -> None:
        for schema in self.made:
            self._drop(schema)
        self.admin.dispose()

    def _empty(self, schema: str) -> None:
        with self.admin.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(text(f'DELETE FROM "{schema}"."{table.name}"'))
            conn.execute(text(f'INSERT INTO "{schema}".ledger_head (id, seq, hash) '
                              "VALUES (1, 0, :genesis)"), {"genesis": GENESIS_HASH})

    def _drop(self, schema: str) -> None:
        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        if schema in self.made:
            self.made.remove(schema)


@pytest.fixture(scope="session")
def migrated_schemas() -> Iterator[MigratedSchemas | None]:
    if not POSTGRES_URL:
        yield None
        return
    schemas = MigratedSchemas(POSTGRES_URL)
    yield schemas
    schemas.close()


@pytest.fixture
def store(db_url: str, settings: Settings, migrated_sqlite: Path) -> Iterator[Store]:
    if db_url.startswith("sqlite:///"):
        shutil.copyfile(migrated_sqlite, db_url.removeprefix("sqlite:///"))
    store = open_store(db_url, settings)
    yield store
    store.close()


@pytest.fixture
def system(store: Store, settings: Settings, clock: ManualClock) -> Iterator[Charter]:
    system = Charter(store, settings, clock)
    yield system
    system.close()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the example org that a test may edit."""
    target = tmp_path / "org"
    shutil.copytree(EXAMPLE_ORG.parent, target)
    return target


@pytest.fixture
def acme(system: Charter, workspace: Path) -> Charter:
    """Charter with the example org (a copy the test may edit) loaded."""
    system.load_org(workspace / "charter.yaml")
    return system
