"""A scripted engine for breaker tests: it fails as many times as its counter file says,
then succeeds."""

from __future__ import annotations

from pathlib import Path

from charter.engines import EngineResult, RunContext
from charter.handoff import HandoffPacket
from charter.tasks import Task


def set_failures(counter: Path, failures: int) -> None:
    """Make the engine fail its next `failures` runs."""
    counter.write_text(str(failures))


def flaky_buyer(task: Task, handoff: HandoffPacket | None,
                context: RunContext) -> EngineResult:
    """Fail while the counter file (named by the task's `counter` payload) is above
    zero, counting it down; succeed after."""
    counter = Path(task.payload["counter"])
    left = int(counter.read_text()) if counter.exists() else 0
    if left > 0:
        counter.write_text(str(left - 1))
        return EngineResult(success=False, reason=f"scripted failure ({left - 1} left)")
    return EngineResult(success=True, outputs={"order": f"PO-{task.id[:8]}"})
