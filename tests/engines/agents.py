"""Python engines for tests: buyers that raise the purchase order their task asks for."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from charter.engines import EngineResult, RunContext
from charter.handoff import HandoffPacket
from charter.tasks import Task


async def buyer(task: Task, handoff: HandoffPacket | None,
                context: RunContext) -> EngineResult:
    """Raise the order; when it waited for approval, report how it was settled."""
    if context.settled:
        settled = context.settled[0]
        return EngineResult(success=settled.status == "performed",
                            outputs=settled.output, reason=settled.message)
    result = await context.act("purchase.create", task.payload["vendor"],
                               {"amount": task.payload["amount"]})
    return EngineResult(success=result.status == "performed", outputs=result.output,
                        reason=result.message, cost=task.payload.get("cost", 0),
                        actions=(result,))


def slow_buyer(task: Task, handoff: HandoffPacket | None, context: RunContext) -> Any:
    """A plain function: raise the order, then (on the first attempt only) work for
    `seconds` before finishing."""
    result = context.act_blocking("purchase.create", task.payload["vendor"],
                                  {"amount": task.payload["amount"]})
    if task.attempts == 1:
        time.sleep(float(task.payload.get("seconds", 0)))
    return EngineResult(success=result.status == "performed", outputs=result.output,
                        actions=(result,))


async def dawdler(task: Task, handoff: HandoffPacket | None,
                  context: RunContext) -> EngineResult:
    """Take `seconds` (from the payload) over a task, then report it done."""
    await asyncio.sleep(float(task.payload.get("seconds", 0)))
    return EngineResult(success=True)
