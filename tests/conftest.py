"""Shared fixtures: every storage test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text

from charter import ManualClock, Settings
from charter.store import Store, open_store
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
    """A fresh, empty database: an SQLite file, or a new schema on PostgreSQL."""
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


Statement = tuple[str, Any]


@pytest.fixture(scope="session")
def migrating_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Statement]]:
    """What the migrations send to PostgreSQL to set up an empty schema, recorded once
    (every statement but the reads): a test's store on PostgreSQL replays them rather
    than running the migrations again."""
    if not POSTGRES_URL:
        yield []
        return
    recorded: list[Statement] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if not statement.lstrip().upper().startswith(("SELECT", "SHOW")):
            recorded.append((statement, parameters))

    with fresh_database("postgresql", tmp_path_factory.mktemp("template"), "tmpl") as url:
        event.listen(Engine, "before_cursor_execute", record)
        try:
            open_store(url, Settings(secret="template")).close()
        finally:
            event.remove(Engine, "before_cursor_execute", record)
        yield recorded


@pytest.fixture
def store(db_url: str, settings: Settings, migrated_sqlite: Path,
          migrating_postgres: list[Statement]) -> Iterator[Store]:
    if db_url.startswith("sqlite:///"):
        shutil.copyfile(migrated_sqlite, db_url.removeprefix("sqlite:///"))
    else:
        engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            for statement, parameters in migrating_postgres:
                conn.exec_driver_sql(statement, parameters)
        engine.dispose()
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
