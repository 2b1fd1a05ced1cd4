"""The `python` engine: a `module:function` runs the task.

The function takes `(task, handoff, context)` and returns an `EngineResult` (or a plain
value: its outputs, a success). It may be `async`; a plain function runs in a worker
thread so it cannot stall heartbeats, and acts with `context.act_blocking(...)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

from charter.engines.base import EngineError, EngineResult, RunContext
from charter.handoff import HandoffPacket
from charter.targets import load_callable
from charter.tasks import Task
from charter.types import PythonEngine


class PythonCallable:
    def __init__(self, spec: PythonEngine) -> None:
        self.spec = spec

    async def run(self, task: Task, handoff: HandoffPacket | None,
                  context: RunContext) -> EngineResult:
        function = load_callable(self.spec.target)
        context.loop = asyncio.get_running_loop()
        if inspect.iscoroutinefunction(function):
            returned = await function(task, handoff, context)
        else:
            returned = await in_daemon_thread(function, task, handoff, context)
        return as_result(returned, self.spec.target)


async def in_daemon_thread(function: Callable[..., Any], *arguments: Any) -> Any:
    """Run a plain function in a thread of its own. The thread is a daemon: a worker that
    stops (and releases the task) does not wait for code it cannot interrupt."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Any] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not answer.done():
            outcome()

    def work() -> None:
        try:
            value = function(*arguments)
        except BaseException as error:  # handed to the awaiting coroutine
            report = functools.partial(settle, functools.partial(answer.set_exception, error))
        else:
            report = functools.partial(settle, functools.partial(answer.set_result, value))
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(report)

    threading.Thread(target=work, name=f"engine:{function.__name__}", daemon=True).start()
    return await answer


def as_result(returned: Any, target: str) -> EngineResult:
    if isinstance(returned, EngineResult):
        return returned
    if returned is None or isinstance(returned, (str, int, float, bool, list, dict)):
        return EngineResult(outputs=returned)
    raise EngineError(f"{target} returned a {type(returned).__name__}; return an "
                      "EngineResult or a JSON value")
