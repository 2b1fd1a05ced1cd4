"""Fixtures of the acceptance tests: real `charter` commands in a fresh workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.test_cli import run


@pytest.fixture
def loaded(tmp_path: Path) -> Path:
    """A workspace made by `charter init acme` with its org loaded by `charter org load`."""
    assert run("init", "acme", cwd=tmp_path).returncode == 0
    workspace = tmp_path / "acme"
    result = run("org", "load", cwd=workspace)
    assert result.returncode == 0, result.stderr
    return workspace
