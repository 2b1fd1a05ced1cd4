"""Databases for the reliability tests that outlive one test: an SQLite file, or a schema
of its own on the PostgreSQL that CHARTER_TEST_POSTGRES names (skipped without it)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from tests.conftest import fresh_database

KINDS = ["sqlite", "postgresql"]


def database(kind: str, folder: Path) -> AbstractContextManager[str]:
    """The URL of a fresh, empty database of `kind`, dropped when the block ends."""
    return fresh_database(kind, folder, prefix="r")
