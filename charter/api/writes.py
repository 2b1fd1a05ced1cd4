"""Where a request's write runs: on the event loop for SQLite, in a worker thread for
PostgreSQL.

An SQLite file has one writer, so a write waits its turn however it is run; moving it
to a worker thread and back costs more than a short write itself (the thread wakes, and
the threads of the requests waiting their turn contend for the lock and the
interpreter). So on SQLite the hot writes (submit, claim, heartbeat, complete, fail,
release) run where the request is handled. While one runs, the server's other requests
wait for it, as they would for the file's lock; several processes sharing one SQLite
file wait for each other's writes the same way. On PostgreSQL writes overlap their
waits on the database server, so they run in worker threads as every other request does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from charter.system import Charter

T = TypeVar("T")


async def run_write(system: Charter, command: Callable[..., T], /, *args: Any,
                    **kwargs: Any) -> T:
    """`command(*args, **kwargs)`, run where writes to `system`'s database run best."""
    if system.store.dialect.one_writer:
        return command(*args, **kwargs)
    return await run_in_threadpool(command, *args, **kwargs)
