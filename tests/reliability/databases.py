"""Databases for the reliability tests that outlive one test: an SQLite file, or a schema
of its own on the PostgreSQL that CHARTER_TEST_POSTGRES names (skipped without it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import POSTGRES_URL, _postgres_schema_url

KINDS = ["sqlite", "postgresql"]


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """The URL of a fresh, empty database of `kind`, dropped when the block ends."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'charter.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("CHARTER_TEST_POSTGRES is not set")
    schema = f"r_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_schema_url(POSTGRES_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
