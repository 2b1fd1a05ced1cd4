"""What does allocation cost? The allocator and the task path against bare baselines.

The claims measured, each beside a baseline timed in the same run:

1. choosing among 1,000 eligible members: `Allocator.choose` with the `learned` strategy
   (Thompson sampling on expected utility) for one task over 1,000 eligible `Candidate`s,
   with a `Learner` that has seen 20,000 outcomes spread over the members and five task
   types (so the posteriors are neither flat nor certain). Target: p50 ≤ 2 ms. Baseline:
   `numpy.argmax` over 1,000 precomputed utilities, the floor of any choice. For context:
   the learner's estimates alone (`Allocator.slate`), the same choice with `greedy` (no
   draws), and the choice made online, with an outcome observed between choices (the
   learner refits its shared model every 20 outcomes, inside the next choice).
2. a batch of 1,000 tasks over 200 members with 5 free slots each: `Allocator.assign_batch`
   (tasks of mixed priority and deadline, every member eligible for every task, so the
   matrix is the full 1,000 x 1,000). Target: ≤ 500 ms. Baseline:
   `scipy.optimize.linear_sum_assignment` alone on a random 1,000 x 1,000 matrix; for
   context, on a matrix shaped like the one `assign_batch` builds (scores per task and
   member + an urgency bonus per task), its solver alone (the network simplex over
   members with capacities) and `linear_sum_assignment` with one column per free slot.
3. throughput of the full path on SQLite, in-process, through the `Charter` verbs:
   `submit_task` → `dispatch_queued` (eligibility and the allocator's choice; assigned) →
   `claim_next` → `complete_task` (which records the holder's self-report) →
   `record_outcome` (a person's verified verdict, which reviews earned autonomy). A
   generated org of 50 AI agents (each with two of five skills) under 6 people, five task
   types and permissive Cedar policies, written to a temporary directory and opened with
   `charter.open("sqlite:///<tmp>/bench.db", ...)`. Tasks go through in rounds: a round is
   submitted, dispatched, then each assigned task is claimed, completed and its outcome
   recorded. Target: ≥ 500 tasks/s. Baselines, on fresh SQLite files in the same directory
   opened the same way (so the same pragmas and BEGIN IMMEDIATE): the same five
   transactions per task done as bare SQLAlchemy inserts and updates of rows in the same
   `tasks` and `outcomes` tables; and `Ledger.append_many` of six events per task in those
   five transactions (the events the path writes, without the read tables). And the
   floor: the path's own statements for as many more tasks (untimed, recorded with their
   transactions by `sqlfloor.record`), replayed on a copy of the database taken before
   them through the bare sqlite3 module (`sqlfloor.replay`): what those statements cost
   with no Python work around them. Printed with the time spent in each verb and a
   cProfile (top 15 by cumulative time) of the path.

Run:  python benchmarks/allocate.py [--samples N] [--batches N] [--tasks N] [--round N]
                                    [--profile-tasks N] [--seed S] [--profile] [--json]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import sqlfloor
import yaml
from scipy.optimize import linear_sum_assignment
from sqlalchemy import func, insert, select, update

import charter
from charter import Settings
from charter.allocator import Allocator, Candidate, TaskSpec, best_matching
from charter.clock import SystemClock
from charter.learning import Learner, MemberPrior, TypePrior
from charter.ledger import EventDraft, Ledger, format_time
from charter.secret import ServerSecret
from charter.store import Store, open_store
from charter.store.schema import outcomes as outcomes_table
from charter.store.schema import tasks as tasks_table
from charter.system import Charter

SKILLS = tuple(f"skill-{n}" for n in range(5))
TYPES = tuple(f"type-{n}" for n in range(5))
VALUES = (10.0, 20.0, 40.0, 80.0, 160.0)
"""Each task type's value (the utility of a success)."""
VERSION = "v1"
WARMUP = 50
"""Choices of each kind made before any timing starts."""
OBSERVATIONS = 20_000
"""Outcomes the learners of 1 and 2 have seen before timing."""
CHOOSE_MEMBERS = 1000
BATCH_TASKS = 1000
BATCH_MEMBERS = 200
BATCH_SLOTS = 5
AGENTS = 50
LEADS = 5
CAPACITY = 10
"""Tasks an agent of the generated org holds at once."""
TARGET_CHOOSE_MS = 2.0
TARGET_BATCH_MS = 500.0
TARGET_TASKS_PER_S = 500.0
STEPS = ("submit", "dispatch", "claim", "complete", "record")


# -- 1 and 2: the allocator on its own ---------------------------------------------------

def make_learner(members: int, observations: int, rng: np.random.Generator) -> Learner:
    """A learner over `members` members (each declaring a level for every skill and a
    cost per task) and the five task types (one skill each), after `observations`
    outcomes spread uniformly over members and types, half of them verified; its shared
    model is refitted once at the end."""
    names = [f"m-{n:04d}" for n in range(members)]
    levels = rng.uniform(0.3, 0.95, size=(members, len(SKILLS)))
    costs = rng.uniform(0.1, 5.0, size=members)
    priors = {name: MemberPrior(dict(zip(SKILLS, map(float, levels[i]), strict=True)),
                                cost_per_task=float(costs[i]))
              for i, name in enumerate(names)}
    types = {t: TypePrior((SKILLS[n],), duration_s=600.0) for n, t in enumerate(TYPES)}
    learner = Learner(priors, types)
    truth = np.clip(levels + rng.normal(0.0, 0.1, size=levels.shape), 0.01, 0.99)
    who = rng.integers(members, size=observations)
    kind = rng.integers(len(TYPES), size=observations)
    luck = rng.random(observations)
    verified = rng.random(observations) < 0.5
    spent = rng.uniform(0.5, 1.5, size=observations)
    for i in range(observations):
        m, t = int(who[i]), int(kind[i])
        learner.observe(names[m], VERSION, TYPES[t], bool(luck[i] < truth[m, t]),
                        verified=bool(verified[i]), cost=float(costs[m] * spent[i]),
                        duration_s=float(600.0 * spent[i]))
    learner.refit()
    return learner


def percentiles(values: Sequence[int]) -> tuple[float, float]:
    """p50 and p99 of nanosecond timings, in µs."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] / 1000, cuts[98] / 1000


@dataclass(frozen=True)
class Latency:
    """p50/p99 (µs) of a call timed through Charter, beside its baseline (or none)."""

    name: str
    samples: int
    p50_us: float
    p99_us: float
    baseline: str = ""
    baseline_p50_us: float = 0.0
    baseline_p99_us: float = 0.0
    target_p50_us: float | None = None

    @property
    def ratio(self) -> float | None:
        return self.p50_us / self.baseline_p50_us if self.baseline_p50_us else None

    @property
    def holds(self) -> bool | None:
        return None if self.target_p50_us is None else self.p50_us <= self.target_p50_us


@dataclass
class ChooseReport:
    members: int
    observations: int
    rows: list[Latency]
    plausible: tuple[float, int, int]
    """Candidates in the Thompson draws per choice: mean, min, max."""
    draws: tuple[int, int]
    """Rows of Thompson draws per choice: fewest (most candidates), most."""
    profile: str = ""


def measure_choose(samples: int, seed: int, *, profile: bool) -> ChooseReport:
    rng = np.random.default_rng(seed)
    learner = make_learner(CHOOSE_MEMBERS, OBSERVATIONS, rng)
    allocator = Allocator(learner, strategy="learned", rng=seed + 1)
    candidates = [Candidate(f"m-{n:04d}", VERSION) for n in range(CHOOSE_MEMBERS)]
    specs = [TaskSpec(TYPES[n % len(TYPES)], VALUES[n % len(VALUES)], f"task-{n}")
             for n in range(len(TYPES))]
    utilities = [np.asarray(allocator.slate(spec, candidates).utility) for spec in specs]
    clock = time.perf_counter_ns
    timings: dict[str, list[int]] = {"learned": [], "argmax": [], "slate": [], "greedy": []}

    def run(count: int, record: bool) -> None:
        for number in range(count):
            spec = specs[number % len(specs)]
            values = utilities[number % len(specs)]
            start = clock()
            allocator.choose(spec, candidates)
            learned = clock() - start
            start = clock()
            int(np.argmax(values))
            floor = clock() - start
            start = clock()
            allocator.slate(spec, candidates)
            slate = clock() - start
            start = clock()
            allocator.choose(spec, candidates, strategy="greedy")
            greedy = clock() - start
            if record:
                for name, value in (("learned", learned), ("argmax", floor), ("slate", slate),
                                    ("greedy", greedy)):
                    timings[name].append(value)

    run(WARMUP, False)
    run(samples, True)
    strategy: Any = allocator.strategy("learned")
    counts = [len(strategy._plausible(allocator.slate(spec, candidates))) for spec in specs]
    online = _online_choices(allocator, learner, candidates, specs, samples, rng)
    learned_p50, learned_p99 = percentiles(timings["learned"])
    floor_p50, floor_p99 = percentiles(timings["argmax"])
    n = f"{CHOOSE_MEMBERS:,}"
    rows = [
        Latency(f"choose, learned, {n} eligible", samples, learned_p50, learned_p99,
                f"numpy argmax over {n} utilities", floor_p50, floor_p99,
                TARGET_CHOOSE_MS * 1000),
        Latency(f"  context: Allocator.slate ({n} estimates)", samples,
                *percentiles(timings["slate"])),
        Latency("  context: choose, greedy (no draws)", samples,
                *percentiles(timings["greedy"])),
        Latency("  context: choose, learned, online (see below)", samples,
                *percentiles(online)),
    ]
    text = ""
    if profile:
        text = _profile(lambda: [allocator.choose(specs[n % len(specs)], candidates)
                                 for n in range(500)])
    return ChooseReport(CHOOSE_MEMBERS, OBSERVATIONS, rows,
                        (statistics.fmean(counts), min(counts), max(counts)),
                        (strategy.rows_for(max(counts)), strategy.rows_for(min(counts))),
                        text)


def _online_choices(allocator: Allocator, learner: Learner, candidates: list[Candidate],
                    specs: list[TaskSpec], samples: int, rng: np.random.Generator) -> list[int]:
    """`samples` choices, each followed by an (untimed) outcome for the member chosen, so
    every `refit_every`-th choice pays for refitting the shared model."""
    found = []
    for number in range(samples):
        spec = specs[number % len(specs)]
        start = time.perf_counter_ns()
        choice = allocator.choose(spec, candidates)
        found.append(time.perf_counter_ns() - start)
        learner.observe(choice.member, choice.version, spec.task_type,
                        bool(rng.random() < choice.terms.p_success), verified=True,
                        cost=choice.terms.cost, duration_s=600.0)
    return found


@dataclass(frozen=True)
class BatchRun:
    name: str
    runs: int
    p50_ms: float
    max_ms: float
    baseline: str = ""
    baseline_p50_ms: float = 0.0
    baseline_max_ms: float = 0.0
    target_ms: float | None = None

    @property
    def ratio(self) -> float | None:
        return self.p50_ms / self.baseline_p50_ms if self.baseline_p50_ms else None

    @property
    def holds(self) -> bool | None:
        return None if self.target_ms is None else self.p50_ms <= self.target_ms


@dataclass
class BatchReport:
    tasks: int
    members: int
    slots: int
    urgency_classes: int
    assigned: int
    rows: list[BatchRun]
    profile: str = ""


def batch_tasks(rng: np.random.Generator) -> list[TaskSpec]:
    """1,000 tasks: five types, priorities 0-3, half with a deadline (on the hour, within
    a day), the rest without."""
    now = time.time()
    found = []
    for n in range(BATCH_TASKS):
        kind = int(rng.integers(len(TYPES)))
        deadline = (now + 3600.0 * float(rng.integers(1, 25))) if rng.random() < 0.5 else None
        found.append(TaskSpec(TYPES[kind], VALUES[kind], f"task-{n:04d}",
                              int(rng.integers(4)), deadline))
    return found


def measure_batch(batches: int, seed: int, *, profile: bool) -> BatchReport:
    rng = np.random.default_rng(seed + 2)
    learner = make_learner(BATCH_MEMBERS, OBSERVATIONS, rng)
    allocator = Allocator(learner, strategy="learned", rng=seed + 3)
    members = [f"m-{n:04d}" for n in range(BATCH_MEMBERS)]
    everyone = [Candidate(m, VERSION) for m in members]
    slots = dict.fromkeys(members, BATCH_SLOTS)
    pending = batch_tasks(rng)
    classes = len({(t.priority, t.deadline) for t in pending})

    def candidates(task: TaskSpec) -> list[Candidate]:
        return everyone

    size = (BATCH_TASKS, BATCH_MEMBERS * BATCH_SLOTS)
    bonus = (BATCH_TASKS + 1.0) * (1.0 + rng.integers(classes, size=BATCH_TASKS))
    capacity = np.full(BATCH_MEMBERS, float(BATCH_SLOTS))
    timings: dict[str, list[float]] = {key: [] for key in
                                       ("learned", "greedy", "random", "solver", "per_slot")}
    assigned = 0
    for run in range(batches + 1):  # the first run warms up
        random_matrix = rng.random(size)
        shaped = rng.random((BATCH_TASKS, BATCH_MEMBERS))
        start = time.perf_counter()
        result = allocator.assign_batch(pending, slots, candidates)
        learned = time.perf_counter() - start
        start = time.perf_counter()
        linear_sum_assignment(random_matrix, maximize=True)
        bare = time.perf_counter() - start
        start = time.perf_counter()
        allocator.assign_batch(pending, slots, candidates, strategy="greedy")
        greedy = time.perf_counter() - start
        start = time.perf_counter()
        best_matching(shaped, bonus, capacity)
        solver = time.perf_counter() - start
        start = time.perf_counter()
        linear_sum_assignment(np.repeat(shaped, BATCH_SLOTS, axis=1) + bonus[:, None],
                              maximize=True)
        per_slot = time.perf_counter() - start
        assigned = len(result.assignments)
        if run:
            for name, value in (("learned", learned), ("random", bare), ("greedy", greedy),
                                ("solver", solver), ("per_slot", per_slot)):
                timings[name].append(value * 1000)
    shape = f"{BATCH_TASKS:,}x{BATCH_MEMBERS * BATCH_SLOTS:,}"

    def row(name: str, key: str, baseline: str = "", base: str = "",
            target: float | None = None) -> BatchRun:
        values = timings[key]
        base_values = timings[base] if base else [0.0]
        return BatchRun(name, len(values), statistics.median(values), max(values), baseline,
                        statistics.median(base_values), max(base_values), target)

    rows = [
        row(f"assign_batch, learned, {BATCH_TASKS:,} tasks x {BATCH_MEMBERS} members",
            "learned", f"linear_sum_assignment, random {shape}", "random", TARGET_BATCH_MS),
        row("  context: assign_batch, greedy (no draws)", "greedy"),
        row("  context: the solver alone (network simplex), shaped", "solver"),
        row("  context: linear_sum_assignment, one column per slot, shaped", "per_slot"),
    ]
    text = ""
    if profile:
        text = _profile(lambda: allocator.assign_batch(pending, slots, candidates))
    return BatchReport(BATCH_TASKS, BATCH_MEMBERS, BATCH_SLOTS, classes, assigned, rows, text)


# -- 3: the full path through Charter ------------------------------------------------------

def generate_org() -> tuple[dict[str, Any], dict[str, str]]:
    """The org document and its policy files: a head of operations, five leads, 50 AI
    agents (ten per lead, each with two of the five skills), five task types."""
    rng = np.random.default_rng(7)
    members: list[dict[str, Any]] = [{
        "id": "head", "kind": "human", "title": "Head of operations", "department": "ops",
        "roles": ["lead"], "capacity": 50, "cost": {"per_hour": 120}}]
    for lead in range(LEADS):
        members.append({"id": f"lead-{lead}", "kind": "human", "title": "Team lead",
                        "department": "ops", "roles": ["lead"], "teams": [f"team-{lead}"],
                        "reports_to": "head", "capacity": 20, "cost": {"per_hour": 80}})
    for number in range(AGENTS):
        first = number % len(SKILLS)
        second = (first + 1 + number // len(SKILLS)) % len(SKILLS)
        second = second if second != first else (first + 1) % len(SKILLS)
        members.append({
            "id": f"agent-{number:02d}", "kind": "ai", "title": "Agent",
            "department": "ops", "roles": ["worker"], "teams": [f"team-{number % LEADS}"],
            "reports_to": f"lead-{number % LEADS}",
            "skills": {SKILLS[first]: round(float(rng.uniform(0.6, 0.95)), 2),
                       SKILLS[second]: round(float(rng.uniform(0.5, 0.9)), 2)},
            "capacity": CAPACITY, "cost": {"per_task": round(float(rng.uniform(0.01, 2)), 2)},
            "engine": {"kind": "python", "target": f"bench.agents:agent_{number % 7}"}})
    document = {
        "org": {"id": "bench-alloc", "name": "Allocation benchmark", "currency": "USD"},
        "departments": {"ops": "Operations"},
        "roles": {"lead": "Leads people and agents", "worker": "Does the work"},
        "teams": {f"team-{n}": {"name": f"Team {n}", "department": "ops"}
                  for n in range(LEADS)},
        "skills": {skill: f"The {skill} skill" for skill in SKILLS},
        "resources": {"Item": {"description": "A thing to work on"}},
        "actions": {f"work.{t}": {"description": f"Work on a {t} task", "resources": ["Item"]}
                    for t in TYPES},
        "members": members,
        "task_types": [{
            "id": t, "description": f"Task type {n}", "action": f"work.{t}",
            "skills": [SKILLS[n]], "value": VALUES[n], "timeout": "1h", "lease": "15m",
            "fallback": [{"retry": 1}, {"reassign": 1}, {"escalate": "supervisor"}],
            "autonomy_ceiling": "autonomous"} for n, t in enumerate(TYPES)],
        "policies": "policies",
    }
    policies = {"work.cedar": (
        '@id("workers-work")\npermit (\n  principal in Role::"worker",\n  action,\n'
        '  resource is Item\n);\n\n'
        '@id("leads-work")\npermit (\n  principal in Role::"lead",\n  action,\n'
        '  resource is Item\n);\n\n'
        '@id("suspended-never")\nforbid (\n  principal,\n  action,\n  resource\n)\n'
        'when { principal.status == "suspended" };\n')}
    return document, policies


def write_org(directory: Path) -> Path:
    document, policies = generate_org()
    (directory / "policies").mkdir()
    for name, text in policies.items():
        (directory / "policies" / name).write_text(text, encoding="utf-8")
    path = directory / "charter.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class PathReport:
    tasks: int
    round_size: int
    seconds: float
    steps: dict[str, float]
    """Seconds spent in each verb over the run."""
    calls: dict[str, int]
    events: int
    done: int
    to_people: int
    verified: bool
    bare_seconds: float
    ledger_seconds: float
    floor: Floor
    setup_seconds: dict[str, float] = field(default_factory=dict)
    profile: str = ""
    profile_tasks: int = 0
    target_per_s: float = TARGET_TASKS_PER_S

    @property
    def per_s(self) -> float:
        return self.tasks / self.seconds

    @property
    def bare_per_s(self) -> float:
        return self.tasks / self.bare_seconds

    @property
    def ledger_per_s(self) -> float:
        return self.tasks / self.ledger_seconds

    @property
    def floor_per_s(self) -> float:
        return self.tasks / self.floor.seconds

    @property
    def holds(self) -> bool:
        return self.per_s >= self.target_per_s and self.done == self.tasks and self.verified


class Worker:
    """Drives tasks through the Charter verbs in rounds, timing each verb."""

    def __init__(self, system: Charter, seed: int) -> None:
        self.system = system
        self.rng = np.random.default_rng(seed)
        self.truth = {f"agent-{n:02d}": float(p) for n, p in
                      enumerate(self.rng.uniform(0.7, 0.99, size=AGENTS))}
        self.steps = dict.fromkeys(STEPS, 0.0)
        self.calls = dict.fromkeys(STEPS, 0)
        self.to_people = 0
        self.number = 0

    def _timed(self, step: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        answer = call(*args, **kwargs)
        self.steps[step] += time.perf_counter() - start
        self.calls[step] += 1
        return answer

    def run(self, count: int, round_size: int) -> None:
        system = self.system
        while count > 0:
            size = min(round_size, count)
            count -= size
            for _ in range(size):
                n = self.number
                self.number += 1
                self._timed("submit", system.submit_task, TYPES[n % len(TYPES)],
                            f"Item::item-{n % 500}", {"note": f"task {n}"},
                            requester=f"lead-{n % LEADS}", priority=int(self.rng.integers(3)))
            assigned = self._timed("dispatch", system.dispatch_queued, limit=size)
            if len(assigned) != size:
                raise SystemExit(f"dispatch assigned {len(assigned)} of {size} tasks")
            for task in assigned:
                member = task.assignee or ""
                claim = self._timed("claim", system.claim_next, member)
                if claim is None:
                    raise SystemExit(f"{member} had nothing to claim")
                self.to_people += member not in self.truth
                self._timed("complete", system.complete_task, claim.task.id, member=member,
                            fencing=claim.fencing, result={"ok": True},
                            cost=round(float(self.rng.uniform(0.01, 2.0)), 2),
                            duration_s=float(self.rng.uniform(5, 60)))
                success = bool(self.rng.random() < self.truth.get(member, 0.95))
                self._timed("record", system.record_outcome, claim.task.id, success=success,
                            reported_by="head", verified=True)


def measure_path(tasks: int, round_size: int, profile_tasks: int, seed: int) -> PathReport:
    with tempfile.TemporaryDirectory(prefix="charter-bench-") as name:
        directory = Path(name)
        setup: dict[str, float] = {}
        start = time.perf_counter()
        org_path = write_org(directory)
        system = charter.open(f"sqlite:///{directory / 'bench.db'}", org_path,
                              settings=Settings(secret="bench"))
        setup["charter.open"] = time.perf_counter() - start
        try:
            warm = Worker(system, seed + 4)
            start = time.perf_counter()
            warm.run(min(round_size, 100), round_size)  # builds the dispatcher, caches policy
            setup["warm-up round"] = time.perf_counter() - start
            first = system.tail(1)[0].seq
            worker = Worker(system, seed + 5)
            worker.number = warm.number
            start = time.perf_counter()
            worker.run(tasks, round_size)
            seconds = time.perf_counter() - start
            events = system.tail(1)[0].seq - first
            with system.store.reading() as conn:
                done = int(conn.execute(select(func.count()).select_from(tasks_table)
                                        .where(tasks_table.c.state == "done")).scalar_one())
            done -= warm.number
            verified = system.verify_ledger().ok
            floor = sql_floor(system, directory / "floor.db", tasks, round_size,
                              Worker(system, seed + 5), worker.number)
            text = ""
            if profile_tasks:
                profiled = Worker(system, seed + 6)
                profiled.number = worker.number + tasks
                text = _profile(lambda: profiled.run(profile_tasks, round_size))
        finally:
            system.close()
        bare_seconds = bare_path(directory / "bare.db", tasks)
        ledger_seconds = ledger_path(directory / "ledger.db", tasks)
        return PathReport(tasks, round_size, seconds, worker.steps, worker.calls, events, done,
                          worker.to_people, verified, bare_seconds, ledger_seconds, floor,
                          setup, text, profile_tasks)


@dataclass(frozen=True)
class Floor:
    """The path's own SQL for as many more tasks, replayed on the bare sqlite3 driver."""

    seconds: float
    statements: int
    transactions: int


def sql_floor(system: Charter, copy: Path, count: int, round_size: int, worker: Worker,
              number: int) -> Floor:
    """Copy the database, record the statements of `count` more tasks through the path
    (untimed), and time them replayed on the copy (`sqlfloor`)."""
    sqlfloor.snapshot(system.store, copy)
    worker.number = number
    with sqlfloor.record(system.store) as recording:
        worker.run(count, round_size)
    seconds = sqlfloor.replay(recording, copy, Settings(secret="bench"))
    return Floor(seconds, recording.statements, recording.transactions)


def _store(path: Path) -> Store:
    return open_store(f"sqlite:///{path}", Settings(secret="bench"))


def bare_path(path: Path, count: int) -> float:
    """The path's five transactions per task as bare SQLAlchemy on the `tasks` and
    `outcomes` tables (values made before the clock starts): insert the task; assign it;
    claim it; complete it with a self-reported outcome; insert the verified outcome."""
    store = _store(path)
    try:
        at = format_time(SystemClock().now())
        rows = []
        for n in range(count):
            task = str(uuid.uuid4())
            member = f"agent-{n % AGENTS:02d}"
            rows.append((task, member, {
                "id": task, "type": TYPES[n % len(TYPES)], "subject": f"Item::item-{n % 500}",
                "payload": json.dumps({"note": f"task {n}"}),
                "value": Decimal(str(VALUES[n % len(VALUES)])), "priority": n % 3,
                "deadline": None, "requester": f"lead-{n % LEADS}", "state": "queued",
                "assignee": None, "fencing": 0, "attempts": 0, "lease_until": None,
                "fallback_step": 0, "fallback_used": 0, "excluded": "[]",
                "approval_id": None, "result": None, "reason": "submitted",
                "created_at": at, "updated_at": at}))

        def outcome(task: str, member: str, verified: bool) -> dict[str, Any]:
            return {"id": str(uuid.uuid4()), "task_id": task, "member": member,
                    "engine_version": "python-0123456789ab", "task_type": TYPES[0],
                    "success": True, "quality": None, "cost": Decimal("0.5"),
                    "duration_s": 10.0, "verified": verified,
                    "reported_by": "head" if verified else member, "at": at}

        outcomes = [(outcome(t, m, False), outcome(t, m, True)) for t, m, _ in rows]
        by_id = tasks_table.c.id
        start = time.perf_counter()
        for (task, member, row), (reported, checked) in zip(rows, outcomes, strict=True):
            with store.transaction() as conn:
                conn.execute(insert(tasks_table), row)
            with store.transaction() as conn:
                conn.execute(update(tasks_table).where(by_id == task).values(
                    state="assigned", assignee=member, reason="assigned", updated_at=at))
            with store.transaction() as conn:
                conn.execute(update(tasks_table).where(by_id == task).values(
                    state="running", fencing=1, attempts=1, lease_until=at,
                    reason="attempt 1", updated_at=at))
            with store.transaction() as conn:
                conn.execute(update(tasks_table).where(by_id == task).values(
                    state="done", lease_until=None, result='{"ok":true}', reason="completed",
                    updated_at=at))
                conn.execute(insert(outcomes_table), reported)
            with store.transaction() as conn:
                conn.execute(insert(outcomes_table), checked)
        return time.perf_counter() - start
    finally:
        store.close()


def ledger_path(path: Path, count: int) -> float:
    """The path's events as `Ledger.append_many` alone, in its five transactions per
    task (1, 1, 1, 2 and 1 events), with payloads shaped like the path's."""
    store = _store(path)
    try:
        ledger = Ledger(store, SystemClock(),
                        ServerSecret.from_settings(Settings(secret="bench"),
                                                   store.database_file))
        groups = []
        for n in range(count):
            task, member = str(uuid.uuid4()), f"agent-{n % AGENTS:02d}"
            subject = f"task:{task}"

            def event(kind: str, actor: str, payload: dict[str, Any],
                      s: str = subject, t: str = task) -> EventDraft:
                return EventDraft(kind, actor, s, {"task": t, **payload})

            result = {"id": str(uuid.uuid4()), "member": member,
                      "engine_version": "python-0123456789ab", "task_type": TYPES[0],
                      "success": True, "quality": None, "cost": "0.5", "duration_s": 10.0}
            groups.append([
                [event("task.submitted", "lead-0", {
                    "type": TYPES[n % len(TYPES)], "subject": f"Item::item-{n % 500}",
                    "payload": {"note": f"task {n}"}, "value": "10", "priority": n % 3,
                    "deadline": None})],
                [event("task.assigned", "charter", {
                    "member": member, "strategy": "learned", "probability": 0.42,
                    "explanation": {"text": "…", "method": "estimated from 200 draws"},
                    "set": {"state": "assigned", "assignee": member,
                            "reason": f"assigned to {member} (learned)"}})],
                [event("task.claimed", member, {
                    "member": member, "fencing": 1,
                    "set": {"state": "running", "fencing": 1, "attempts": 1,
                            "lease_until": "2026-01-01T00:00:00.000000Z",
                            "reason": f"attempt 1 by {member}"}})],
                [event("task.completed", member, {
                    "fencing": 1, "result": {"ok": True},
                    "set": {"state": "done", "lease_until": None, "result": '{"ok":true}',
                            "reason": f"completed by {member}"}}),
                 event("outcome.recorded", member, {**result, "verified": False})],
                [event("outcome.recorded", "head",
                       {**result, "id": str(uuid.uuid4()), "verified": True})],
            ])
        start = time.perf_counter()
        for group in groups:
            for drafts in group:
                with store.transaction() as conn:
                    ledger.append_many(conn, drafts)
        return time.perf_counter() - start
    finally:
        store.close()


# -- profiles --------------------------------------------------------------------------

def _profile(work: Callable[[], Any], top: int = 15) -> str:
    """cProfile of `work`, the `top` functions by cumulative time (this file's own frames,
    the timing loop, left out)."""
    profiler = cProfile.Profile()
    profiler.enable()
    work()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    here = Path(__file__).resolve()
    for key in [k for k in stats.stats if Path(k[0]).resolve() == here]:  # type: ignore[attr-defined]
        del stats.stats[key]  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# -- the run ---------------------------------------------------------------------------

@dataclass
class Report:
    choose: ChooseReport
    batch: BatchReport
    path: PathReport
    load: tuple[float, float]
    seconds: float


def _verdict(holds: bool | None) -> str:
    return "-" if holds is None else ("yes" if holds else "NO")


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}" if value >= 10 else \
        f"{value:.2f}"


def table(report: Report) -> str:
    c, b, p = report.choose, report.batch, report.path
    header = (f"{'measure':<50} {'charter':>15}   {'baseline':<42}{'baseline':>13} "
              f"{'ratio':>7} {'target':>11} {'holds':>5}")
    lines = [header, "-" * len(header)]

    def line(name: str, value: str, baseline: str = "", base_value: str = "",
             ratio: float | None = None, target: str = "", holds: bool | None = None) -> None:
        shown = "" if ratio is None else f"{ratio:,.1f}x"
        lines.append(f"{name:<50} {value:>15}   {baseline:<42}{base_value:>13} "
                     f"{shown:>7} {target:>11} {_verdict(holds) if target else '':>5}".rstrip())

    lines.append(f"1. choose among {c.members:,} eligible (Learner after "
                 f"{c.observations:,} outcomes), p50 / p99 µs over {c.rows[0].samples:,}")
    for row in c.rows:
        base = (f"{_num(row.baseline_p50_us)} / {_num(row.baseline_p99_us)}"
                if row.baseline else "")
        target = "" if row.target_p50_us is None else f"p50 ≤ {row.target_p50_us / 1000:g} ms"
        line(row.name, f"{_num(row.p50_us)} / {_num(row.p99_us)}", row.baseline, base,
             row.ratio, target, row.holds)
    mean, low, high = c.plausible
    lines += [
        "  online: an outcome observed between choices; the learner refits its shared model",
        "  every 20 outcomes, inside the next choice (the p99).",
        f"  candidates in the Thompson draws (could win one): {mean:,.0f} on average "
        f"({low:,}-{high:,}) of {c.members:,}; {c.draws[0]}-{c.draws[1]} draws of each",
        "",
        f"2. batch of {b.tasks:,} tasks x {b.members} members x {b.slots} slots "
        f"({b.urgency_classes} urgency classes), p50 / max ms over {b.rows[0].runs} runs"]
    for batch in b.rows:
        base = (f"{_num(batch.baseline_p50_ms)} / {_num(batch.baseline_max_ms)}"
                if batch.baseline else "")
        target = "" if batch.target_ms is None else f"≤ {batch.target_ms:g} ms"
        line(batch.name, f"{_num(batch.p50_ms)} / {_num(batch.max_ms)}", batch.baseline, base,
             batch.ratio, target, batch.holds)
    lines += [
        f"  shaped: scores in [0, 1] for {b.tasks:,} tasks x {b.members} members + an urgency "
        f"bonus per task; assigned by the timed batches: {b.assigned:,} of {b.tasks:,}",
        "",
        f"3. full path on SQLite in-process, {p.tasks:,} tasks in rounds of "
        f"{min(p.round_size, p.tasks)}, tasks/s"]
    line("submit → dispatch → claim → complete → record", f"{p.per_s:,.0f}",
         "bare SQLAlchemy, same 5 transactions/task", f"{p.bare_per_s:,.0f}",
         p.bare_per_s / p.per_s, f"≥ {p.target_per_s:,.0f}/s", p.holds)
    line("", "", "Ledger.append_many, same events/transactions", f"{p.ledger_per_s:,.0f}",
         p.ledger_per_s / p.per_s)
    line("", "", "the path's own SQL on bare sqlite3", f"{p.floor_per_s:,.0f}",
         p.floor_per_s / p.per_s)
    lines += [
        f"  {p.tasks:,} tasks in {p.seconds:.2f} s; {p.events:,} ledger events "
        f"({p.events / p.tasks:.1f} per task); done: {p.done:,} of {p.tasks:,}; to a "
        f"person's queue: {p.to_people:,}; verify_ledger().ok: {p.verified}",
        f"  the path's own SQL: {p.floor.statements / p.tasks:.1f} statements in "
        f"{p.floor.transactions / p.tasks:.2f} transactions per task, recorded over "
        f"{p.tasks:,} more tasks and replayed on a copy of the database: "
        f"{1000 * p.floor.seconds / p.tasks:.2f} ms per task with no Python work around "
        f"them (the ceiling of any implementation issuing them); Charter's "
        f"{1000 * p.seconds / p.tasks:.2f} ms",
        f"  {'verb':<42} {'calls':>7} {'seconds':>8} {'% of run':>9} {'ms per task':>12} "
        f"{'ms per call':>12}"]
    verbs = {"submit": "submit_task", "dispatch": "dispatch_queued (one call per round)",
             "claim": "claim_next", "complete": "complete_task (+ self-report outcome)",
             "record": "record_outcome (verified; autonomy review)"}
    for step in STEPS:
        spent = p.steps[step]
        lines.append(f"  {verbs[step]:<42} {p.calls[step]:>7,} {spent:>8.2f} "
                     f"{100 * spent / p.seconds:>8.1f}% {1000 * spent / p.tasks:>12.3f} "
                     f"{1000 * spent / max(p.calls[step], 1):>12.3f}")
    lines += [
        "",
        "ratio: how many times slower Charter is than its baseline (p50 ÷ p50; for 3, "
        "baseline tasks/s ÷ Charter's)",
        "setup (path): " + "; ".join(f"{name} {seconds:.1f} s"
                                     for name, seconds in p.setup_seconds.items()),
        f"load average (1 min) at start and end: {report.load[0]:.2f}, {report.load[1]:.2f} "
        f"on {os.cpu_count()} CPUs (other work on the machine skews the figures); "
        f"whole run {report.seconds:.0f} s",
    ]
    for name, text in (("choose, learned, 500 choices", c.profile),
                       ("assign_batch, learned, one batch", b.profile),
                       (f"full path, {p.profile_tasks:,} more tasks after the timed run "
                        "(the benchmark's own loop left out)", p.profile)):
        if text:
            lines += ["", f"profile: {name}", text.rstrip()]
    return "\n".join(lines)


def as_json(report: Report) -> str:
    c, b, p = report.choose, report.batch, report.path

    def rows(items: list[Any]) -> list[dict[str, Any]]:
        return [{**asdict(row), "ratio": row.ratio, "holds": row.holds} for row in items]

    path = {key: value for key, value in asdict(p).items() if key != "profile"}
    return json.dumps({
        "choose": {"members": c.members, "observations": c.observations,
                   "rows": rows(c.rows), "plausible_mean_min_max": c.plausible,
                   "draws_min_max": c.draws},
        "batch": {"tasks": b.tasks, "members": b.members, "slots": b.slots,
                  "urgency_classes": b.urgency_classes, "assigned": b.assigned,
                  "rows": rows(b.rows)},
        "path": {**path, "per_s": p.per_s, "bare_per_s": p.bare_per_s,
                 "ledger_per_s": p.ledger_per_s, "floor_per_s": p.floor_per_s,
                 "holds": p.holds},
        "load_average": report.load, "seconds": report.seconds,
        "profiles": {"choose": c.profile, "batch": b.profile, "path": p.profile},
    }, indent=2, ensure_ascii=False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--samples", type=int, default=500,
                        help="timed choices among 1,000 members, of each kind (default 500)")
    parser.add_argument("--batches", type=int, default=5,
                        help="timed batches of 1,000 tasks x 200 members (default 5)")
    parser.add_argument("--tasks", type=int, default=1000,
                        help="tasks through the full path, timed (default 1000)")
    parser.add_argument("--round", type=int, default=200, dest="round_size",
                        help="tasks submitted and dispatched per round (default 200; at "
                        f"most {AGENTS * CAPACITY}, the agents' capacity)")
    parser.add_argument("--profile-tasks", type=int, default=300,
                        help="tasks through the full path under cProfile after the timed "
                        "run (default 300; 0 for none)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile 500 choices and one batch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.samples < 2 or args.batches < 1 or args.tasks < 1 or args.profile_tasks < 0:
        parser.error("--samples must be at least 2, --batches and --tasks at least 1")
    if not 1 <= args.round_size <= AGENTS * CAPACITY:
        parser.error(f"--round must be from 1 to {AGENTS * CAPACITY}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    choose = measure_choose(args.samples, args.seed, profile=args.profile)
    batch = measure_batch(args.batches, args.seed, profile=args.profile)
    path = measure_path(args.tasks, args.round_size, args.profile_tasks, args.seed)
    report = Report(choose, batch, path, (load, os.getloadavg()[0]),
                    time.perf_counter() - start)
    print(as_json(report) if args.json else table(report))


if __name__ == "__main__":
    main(sys.argv[1:])
