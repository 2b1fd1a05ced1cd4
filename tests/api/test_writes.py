"""A request's write runs on the event loop for SQLite, in a worker thread elsewhere."""

from __future__ import annotations

import asyncio
import threading

import pytest

from charter.api.writes import run_write
from charter.system import Charter


def test_writes_run_where_the_database_writes_best(system: Charter):
    async def handle() -> tuple[int, int]:
        return threading.get_ident(), await run_write(system, threading.get_ident)

    loop_thread, write_thread = asyncio.run(handle())
    if system.store.dialect.name == "sqlite":
        assert write_thread == loop_thread
    else:
        assert write_thread != loop_thread


def test_a_write_passes_its_arguments_and_errors_through(system: Charter):
    def command(first: int, *, second: int) -> int:
        if second < 0:
            raise ValueError("second is negative")
        return first + second

    assert asyncio.run(run_write(system, command, 1, second=2)) == 3
    with pytest.raises(ValueError, match="negative"):
        asyncio.run(run_write(system, command, 1, second=-1))
