"""The simulated world's ground truth, as the month unfolds.

Charter records what members report and what reviewers verify; the world knows what
really happened: whether each attempt's result was right and what it cost. The
simulated agents (`charter.demo.agents`) and people (`charter.demo.people`) draw their
results here, and the report scores each strategy on this truth, not on what Charter
was told.

Draws are "common random numbers": an attempt's luck depends only on the seed, the
task's reference, the member and the attempt number, so two strategies run on the same
seed meet the same luck wherever they make the same choice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from charter.demo.truth import HiddenTable, Talent
from charter.tasks import Task


@dataclass(frozen=True)
class Attempt:
    """One attempt at a task, as it really went."""

    good: bool
    """Whether the result is right."""
    noticed: bool
    """For a wrong result: whether its doer noticed (and reports a failure)."""
    cost: float
    minutes: float


@dataclass(frozen=True)
class Completion:
    """A task an agent completed, which its manager may review."""

    task_id: str
    member: str
    task_type: str
    at: datetime


@dataclass
class Tally:
    """What the world saw happen, beyond what Charter records."""

    over_budget: list[str] = field(default_factory=list)
    """Approvals of budget overrides that agents asked for, to be answered."""
    refused_spend: int = 0
    noticed_failures: int = 0
    silent_failures: int = 0


class World:
    """Ground truth for one simulated month."""

    def __init__(self, seed: int, start: datetime, table: HiddenTable | None = None) -> None:
        self.seed = seed
        self.start = start
        self.table = table or HiddenTable(seed)
        self.tally = Tally()
        self._cost: dict[str, float] = {}
        self._result: dict[str, tuple[str, bool]] = {}
        self._pending: dict[str, bool] = {}
        self._completions: list[Completion] = []

    # -- draws ------------------------------------------------------------------------

    def chance(self, *parts: object) -> float:
        """A number in [0, 1) fixed by the seed and `parts`."""
        text = "|".join(str(part) for part in (self.seed, *parts))
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64

    def day(self, now: datetime) -> float:
        """Days since the month began."""
        return (now - self.start).total_seconds() / 86400.0

    def agent_attempt(self, member: str, target: str, task: Task, now: datetime) -> Attempt:
        """How agent `member`, running `target`, does at this attempt of `task`."""
        talent = self.table.agent(member, target, task.type, self.day(now))
        return self._attempt(talent, member, task)

    def person_attempt(self, member: str, per_hour: float, task: Task) -> Attempt:
        """How person `member` does at this attempt of `task`."""
        return self._attempt(self.table.person(task.type, per_hour), member, task)

    def _attempt(self, talent: Talent, member: str, task: Task) -> Attempt:
        ref = reference(task)
        good = self.chance("good", ref, member, task.attempts) < talent.quality
        noticed = not good and self.chance("notice", ref, member, task.attempts) < talent.candour
        spread = 0.8 + 0.4 * self.chance("cost", ref, member, task.attempts)
        return Attempt(good, noticed, round(talent.cost * spread, 4),
                       max(1.0, talent.minutes * spread))

    def best_change(self, sku: str) -> int:
        """The price change (percent) that is really right for `sku` (`sku:sku-9` and
        `Sku::sku-9` name the same product)."""
        return int(self.chance("best-price", sku.rsplit(":", 1)[-1]) * 17) - 8

    # -- what happened ----------------------------------------------------------------

    def spent(self, task_id: str, cost: float) -> None:
        """An attempt at the task cost `cost` (whatever came of it)."""
        self._cost[task_id] = self._cost.get(task_id, 0.0) + cost

    def finished(self, task: Task, member: str, good: bool, now: datetime, *,
                 agent: bool) -> None:
        """`member` completed `task`; `good`: whether the result is right."""
        self._result[task.id] = (member, good)
        self._pending.pop(task.id, None)
        if agent:
            self._completions.append(Completion(task.id, member, task.type, now))
            if not good:
                self.tally.silent_failures += 1

    def paused(self, task_id: str, good: bool) -> None:
        """The attempt at `task_id` waits for an approval; `good`: its real quality."""
        self._pending[task_id] = good

    def pending_good(self, task_id: str | None) -> bool:
        """Whether the attempt an approval is about is right (an approver looks at it)."""
        return True if task_id is None else self._pending.get(task_id, True)

    def result(self, task_id: str) -> tuple[str, bool] | None:
        """Who completed the task and whether the result is right (None if nobody did)."""
        return self._result.get(task_id)

    def cost(self, task_id: str) -> float:
        return self._cost.get(task_id, 0.0)

    def take_completions(self) -> list[Completion]:
        """Agents' completions since the last call (for the reviewers)."""
        taken, self._completions = self._completions, []
        return taken


def reference(task: Task) -> str:
    """The task's own reference in the workload (its id outside the demo)."""
    ref: Any = task.payload.get("ref")
    return ref if isinstance(ref, str) else task.id


_current: World | None = None


def use_world(world: World) -> None:
    """Make `world` the one the demo's engines draw from (in this process)."""
    global _current  # noqa: PLW0603 - one world per process, as engines are plain functions
    _current = world


def current_world() -> World:
    """The world in use; outside a demo run, one for seed 0 starting now (so the demo's
    engines also run under `charter worker` on the example org)."""
    global _current  # noqa: PLW0603
    if _current is None:
        _current = World(0, datetime.now(UTC))
    return _current
