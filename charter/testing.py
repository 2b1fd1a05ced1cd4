"""Helpers for tests of code that embeds Charter: a real Charter on a throwaway SQLite
file, with a clock the test moves."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from charter.clock import ManualClock
from charter.settings import Settings
from charter.system import Charter, open_charter

__all__ = ["ManualClock", "example_org", "test_charter"]


def example_org(directory: Path, name: str = "acme") -> Path:
    """Copy a shipped example org (charter.yaml and policies/) into `directory`; returns
    the path of its charter.yaml."""
    from charter.cli import example_dir

    target = directory / name
    shutil.copytree(example_dir(name), target, dirs_exist_ok=True)
    return target / "charter.yaml"


@contextmanager
def test_charter(directory: Path, org: Path | None = None, *,
                 clock: ManualClock | None = None) -> Iterator[Charter]:
    """A Charter on `directory/charter.db` with the given org (default: the Acme
    example) and a manual clock; closed when the block ends."""
    org_path = org or example_org(directory)
    settings = Settings(secret="charter-testing", org=org_path)
    with open_charter(f"sqlite:///{directory / 'charter.db'}", org_path, settings=settings,
                      clock=clock or ManualClock()) as system:
        yield system


test_charter.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name
