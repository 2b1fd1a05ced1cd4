"""The simulated month: Acme's work through Charter's real code path.

One `ManualClock` drives everything. Events (a task arriving, a person answering an
approval or finishing a task, a manager's review, the mid-month engine swap) run in
time order, the clock set to each one's time. Every half hour of simulated time a tick
does what a deployment's processes would: approvals past their SLA move on, queued
tasks are dispatched with the run's strategy, and each agent that has work gets a real
`Worker` (in this process) that claims, runs its engine through the action gate and
completes, fails or pauses each task; then the people look at what waits for them.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import func, select

from charter.clock import ManualClock
from charter.demo.people import People
from charter.demo.results import MonthResult, RunFacts, collect
from charter.demo.truth import ENGINE_CHANGE
from charter.demo.workload import WorkItem, month_of_work
from charter.demo.workspace import swap_engine
from charter.demo.world import World, use_world
from charter.ledger import format_time
from charter.outcomes import engine_version
from charter.settings import Settings
from charter.store.schema import approvals as approvals_table
from charter.store.schema import tasks as tasks_table
from charter.system import Charter, open_charter
from charter.types import PythonEngine
from charter.worker import Worker

DEFAULT_TASKS = 1000
TICK = timedelta(minutes=30)
EXPIRE_EVERY = 4
"""Ticks between checks for expired leases (people heartbeat just before)."""
PROGRESS_EVERY = 2
"""Ticks between progress reports."""
WORKER_CONCURRENCY = 4
LOADED_BY = "dana.whitfield"
"""Who loads the org when the month begins."""
SWAPPED_BY = "priya.raman"
"""Who loads the org with the swapped engine (the COO runs the AI workforce)."""


@dataclass(frozen=True)
class Plan:
    """One run of the month."""

    start: datetime
    tasks: int = DEFAULT_TASKS
    seed: int = 1
    strategy: str = "learned"
    days: int = 30

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


@dataclass(frozen=True)
class Progress:
    """Where a run is, for the live view."""

    strategy: str
    day: float
    days: int
    submitted: int
    total: int
    done: int
    failed: int
    waiting: int


@dataclass(frozen=True)
class Waiting:
    """What a tick finds waiting."""

    queued: int
    holders: set[str]
    """Members with assigned tasks to claim."""
    approvals: int
    approvals_due: str | None
    """The earliest SLA or expiry among pending approvals (ledger time)."""


def simulate(plan: Plan, database: str, org_file: Path,
             on_progress: Callable[[Progress], None] | None = None, *,
             settings: Settings | None = None) -> MonthResult:
    """Run the month on a fresh database at `database` with the org at `org_file`, and
    gather its result."""
    began, cpu = time.monotonic(), time.process_time()
    world = World(plan.seed, plan.start)
    use_world(world)
    clock = ManualClock(plan.start)
    with open_charter(database, org_file, clock=clock, actor=LOADED_BY,
                      settings=settings) as system:
        month = Month(system, clock, world, plan, org_file, on_progress)
        month.run()
        return collect(system, world, RunFacts(
            plan.strategy, plan.seed, plan.days, database, time.monotonic() - began,
            time.process_time() - cpu, month.targets, month.swapped_at,
            month.people.counts.overrides_granted, month.people.counts.reviews))


def engine_targets(system: Charter) -> dict[str, str]:
    """The Python target of each agent's engine version in the org in force."""
    org = system.org
    return {engine_version(org, m.id): m.engine.target for m in org.spec.members
            if isinstance(m.engine, PythonEngine)}


class Month:
    """Runs one month of work on `system` (whose clock must be `clock`)."""

    def __init__(self, system: Charter, clock: ManualClock, world: World, plan: Plan,
                 org_file: Path, on_progress: Callable[[Progress], None] | None = None) -> None:
        self.system = system
        self.clock = clock
        self.world = world
        self.plan = plan
        self.org_file = org_file
        self.on_progress = on_progress
        self.work: list[WorkItem] = month_of_work(plan.seed, plan.tasks, plan.days)
        self.people = People(system, world, self.schedule, plan.seed)
        self.swapped_at: datetime | None = None
        self.targets = engine_targets(system)
        """Each agent engine version's Python target (to look up its hidden truth)."""
        self.submitted = 0
        self._events: list[tuple[datetime, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._ticks = 0
        self._loop = asyncio.new_event_loop()

    def schedule(self, at: datetime, action: Callable[[], None]) -> None:
        """Run `action` when the clock reaches `at` (at once if that has passed)."""
        heapq.heappush(self._events, (max(at, self.clock.now()), next(self._order), action))

    def run(self) -> None:
        """Run the month to its end: every event up to the last day."""
        for item in self.work:
            self.schedule(self.plan.start + item.at, partial(self._arrive, item))
        self.schedule(self.plan.start + timedelta(days=ENGINE_CHANGE.day), self._swap)
        self.schedule(self.plan.start + TICK, self._tick)
        try:
            while self._events and self._events[0][0] <= self.plan.end:
                at, _, action = heapq.heappop(self._events)
                if at > self.clock.now():
                    self.clock.set(at)
                action()
            self.clock.set(self.plan.end)
            self.system.flush_decisions()
            self._report_progress()
        finally:
            self._loop.close()

    # -- events -------------------------------------------------------------------------

    def _arrive(self, item: WorkItem) -> None:
        self.system.submit_task(item.task_type, item.subject, item.payload,
                                requester=item.requester, priority=item.priority)
        self.submitted += 1
        if item.task_type == "price_change":
            self.people.price_proposal(self.clock.now(), item.subject)

    def _tick(self) -> None:
        now = self.clock.now()
        self._ticks += 1
        if self._ticks % EXPIRE_EVERY == 0:
            self.people.heartbeat()
            self.system.expire_tasks()
        waiting = self._waiting()
        if waiting.approvals_due is not None and waiting.approvals_due <= format_time(now):
            self.system.apply_approval_timeouts()
        holders = set(waiting.holders)
        if waiting.queued:
            assigned = self.system.dispatch_queued(strategy=self.plan.strategy)
            holders.update(task.assignee for task in assigned if task.assignee)
        org = self.system.org
        agents = [m for m in sorted(holders) if m in org.members
                  and org.members[m].kind == "ai" and org.members[m].engine is not None]
        if agents:
            self._loop.run_until_complete(self._work(agents))
        self.people.plan(now, holders, approvals=waiting.approvals > 0)
        if self._ticks % PROGRESS_EVERY == 0:
            self._report_progress()
        self.schedule(now + TICK, self._tick)

    async def _work(self, agents: list[str]) -> None:
        """Each agent's worker, until it has nothing left to claim."""
        workers = [Worker(self.system, member, concurrency=WORKER_CONCURRENCY,
                          poll_seconds=0, housekeeping_seconds=math.inf)
                   for member in agents]
        await asyncio.gather(*(worker.run(until_idle=True) for worker in workers))

    def _swap(self) -> None:
        """Mid-month: the agent gets a new engine (edit the org file, load it again)."""
        self.system.load_org(swap_engine(self.org_file, ENGINE_CHANGE.member,
                                         ENGINE_CHANGE.target), actor=SWAPPED_BY)
        self.swapped_at = self.clock.now()
        self.targets.update(engine_targets(self.system))

    # -- reading ------------------------------------------------------------------------

    def _waiting(self) -> Waiting:
        """What waits now: queued tasks, members with tasks to claim, pending approvals
        and when the first of them reaches its SLA or expiry (read in one go, so a quiet
        tick costs next to nothing)."""
        open_tasks = (select(tasks_table.c.state, tasks_table.c.assignee, func.count())
                      .where(tasks_table.c.state.in_(("queued", "assigned")))
                      .group_by(tasks_table.c.state, tasks_table.c.assignee))
        pending = (select(func.count(), func.min(approvals_table.c.sla_at),
                          func.min(approvals_table.c.expires_at))
                   .where(approvals_table.c.status == "pending"))
        with self.system.store.reading() as conn:
            rows = conn.execute(open_tasks).all()
            count, sla, expiry = conn.execute(pending).one()
        due = min((t for t in (sla, expiry) if t is not None), default=None)
        return Waiting(sum(int(n) for state, _, n in rows if state == "queued"),
                       {str(who) for state, who, _ in rows if state == "assigned" and who},
                       int(count), due)

    def states(self) -> dict[str, int]:
        """Tasks by state."""
        query = select(tasks_table.c.state, func.count()).group_by(tasks_table.c.state)
        with self.system.store.reading() as conn:
            return {str(state): int(count) for state, count in conn.execute(query)}

    def _report_progress(self) -> None:
        if self.on_progress is None:
            return
        states = self.states()
        waiting = sum(states.get(s, 0) for s in ("queued", "assigned", "running",
                                                 "awaiting_approval"))
        self.on_progress(Progress(
            self.plan.strategy, min(self.plan.days, self.world.day(self.clock.now())),
            self.plan.days, self.submitted, len(self.work), states.get("done", 0),
            states.get("failed", 0) + states.get("cancelled", 0), waiting))
