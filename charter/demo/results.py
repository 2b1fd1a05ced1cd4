"""What a simulated month came to: read from Charter's own records and scored on the
world's truth.

Everything here is gathered once, when a run ends, into plain values (so a run in
another process can hand its result back): who the allocator gave each task type to
early and late in the month, what it came to believe about each agent against what is
really so, the approvals and their latency, the disputes, the autonomy changes, the
engine swap, the budgets, and whether the ledger verifies. Utility is the sum, over
tasks, of the task's value when its result is really right, minus what every attempt
cost.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from charter.autonomy import DEMOTED, PROMOTED
from charter.demo.truth import ENGINE_CHANGE
from charter.demo.world import World
from charter.outcomes import engine_version
from charter.system import Charter

EARLY_DAYS = 10.0
"""The first days of the month, and the last: what the allocator did before and after
learning."""


@dataclass(frozen=True)
class Share:
    """How many tasks of a type the allocator gave a member, early and late in the month."""

    task_type: str
    member: str
    early: int
    late: int
    total: int


@dataclass(frozen=True)
class Belief:
    """What the allocator believes of an agent on a task type, against the hidden truth."""

    member: str
    task_type: str
    engine: str
    declared: float
    learned: float
    truth: float
    outcomes: int
    verified: int


@dataclass(frozen=True)
class Approvals:
    """The month's approvals."""

    asked: int = 0
    approved: int = 0
    rejected: int = 0
    expired: int = 0
    pending: int = 0
    escalated_on_timeout: int = 0
    median_minutes: float | None = None
    p90_minutes: float | None = None
    by_action: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Conflicts:
    """The month's disputes between proposals."""

    proposals: int = 0
    disputes: int = 0
    by_rule: int = 0
    """Decided by the task type's rule at once."""
    settled: int = 0
    """Escalated to the proposers' common manager, who picked the winner."""
    unsettled: int = 0
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class AutonomyChange:
    day: float
    member: str
    task_type: str
    before: str
    after: str
    because: str


@dataclass(frozen=True)
class EngineSwap:
    """The mid-month engine swap and how each version did (verified where reviewed)."""

    member: str
    day: float
    task_type: str
    before: str
    after: str
    before_n: int
    before_rate: float
    after_n: int
    after_rate: float


@dataclass(frozen=True)
class Envelope:
    id: str
    owner: str
    amount: float
    committed: float
    reserved: float
    available: float


@dataclass(frozen=True)
class MonthResult:
    """One run's result."""

    strategy: str
    seed: int
    tasks: int
    days: int
    start: str
    database: str
    seconds: float
    cpu_seconds: float
    """Of `seconds`, the time this process ran on a CPU (the rest it waited, e.g. for a
    busy machine)."""
    states: dict[str, int]
    people: frozenset[str]
    """The org's people (the rest are agents)."""
    right: int
    """Tasks whose result is really right."""
    value: float
    cost: float
    shares: tuple[Share, ...]
    beliefs: tuple[Belief, ...]
    approvals: Approvals
    conflicts: Conflicts
    autonomy: tuple[AutonomyChange, ...]
    swap: EngineSwap | None
    envelopes: tuple[Envelope, ...]
    over_budget: int
    overrides_granted: int
    reviews: int
    silent_failures: int
    ledger_ok: bool
    ledger_events: int
    ledger_problem: str | None

    @property
    def utility(self) -> float:
        return self.value - self.cost

    @property
    def success_rate(self) -> float:
        return self.right / self.tasks if self.tasks else 0.0

    def count(self, state: str) -> int:
        return self.states.get(state, 0)


@dataclass(frozen=True)
class RunFacts:
    """What the simulation knows of a run besides Charter's records and the world."""

    strategy: str
    seed: int
    days: int
    database: str
    seconds: float
    cpu_seconds: float
    targets: dict[str, str]
    """Each agent engine version's Python target (to look up its truth)."""
    swapped_at: datetime | None
    overrides_granted: int
    reviews: int


def collect(system: Charter, world: World, facts: RunFacts) -> MonthResult:
    """Gather a finished month's result."""
    tasks = system.tasks(limit=1_000_000)
    right, value, cost = 0, 0.0, 0.0
    for task in tasks:
        cost += world.cost(task.id)
        found = world.result(task.id)
        if task.state == "done" and found is not None and found[1]:
            right += 1
            value += float(task.value)
    report = system.verify_ledger()
    return MonthResult(
        strategy=facts.strategy, seed=facts.seed, tasks=len(tasks), days=facts.days,
        start=world.start.isoformat(), database=facts.database, seconds=facts.seconds,
        cpu_seconds=facts.cpu_seconds, states=dict(Counter(task.state for task in tasks)),
        people=frozenset(m.id for m in system.org.spec.members if m.kind == "human"),
        right=right, value=value, cost=cost, shares=_shares(system, world),
        beliefs=_beliefs(system, world, facts.targets), approvals=_approvals(system),
        conflicts=_conflicts(system), autonomy=_autonomy(system, world),
        swap=_swap(system, world, facts.swapped_at), envelopes=_envelopes(system),
        over_budget=world.tally.refused_spend, overrides_granted=facts.overrides_granted,
        reviews=facts.reviews, silent_failures=world.tally.silent_failures,
        ledger_ok=report.ok, ledger_events=report.events,
        ledger_problem=None if report.ok else f"event {report.first_bad_seq}: {report.problem}")


def _shares(system: Charter, world: World) -> tuple[Share, ...]:
    """Every assignment the allocator made (first ones and reassignments after a
    failure), by task type and member, early and late in the month."""
    types = {f"task:{task.id}": task.type for task in system.tasks(limit=1_000_000)}
    counted: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    last_days = _days_of(world, system) - EARLY_DAYS
    for event in system.events(kind="task.assigned", actor="charter"):
        payload = event.payload or {}
        day = world.day(_moment(event.at))
        cell = counted[(types.get(event.subject, "?"), str(payload.get("member")))]
        cell[0] += day < EARLY_DAYS
        cell[1] += day >= last_days
        cell[2] += 1
    return tuple(Share(kind, member, *numbers)
                 for (kind, member), numbers in sorted(counted.items()))


def _beliefs(system: Charter, world: World, targets: dict[str, str]) -> tuple[Belief, ...]:
    org = system.org
    learner = system.dispatcher().learner
    day = _days_of(world, system)
    found = []
    for cell in learner.stats():
        member = org.members.get(cell.member)
        if member is None or member.kind != "ai" or cell.version not in targets:
            continue
        target = targets[cell.version]
        truth = world.table.agent(cell.member, target, cell.task_type, day)
        found.append(Belief(cell.member, cell.task_type, target.rsplit(":", 1)[-1],
                            declared_level(system, cell.member, cell.task_type), cell.mean,
                            truth.quality, cell.outcomes, cell.verified))
    return tuple(sorted(found, key=lambda b: (b.task_type, b.member, b.engine)))


def declared_level(system: Charter, member: str, task_type: str) -> float:
    """The success rate the org's declared skill levels imply (the mean over the task
    type's required skills, as the allocator's prior takes them)."""
    skills = system.org.members[member].skills
    required = system.org.task_types[task_type].skills
    levels = [float(skills.get(skill, 0.0)) for skill in required]
    return sum(levels) / len(levels) if levels else 0.5


def _approvals(system: Charter) -> Approvals:
    found = system.approvals()
    waits = []
    for approval in found:
        if approval.votes and approval.status in ("approved", "rejected", "executed"):
            decided = max(_moment(vote.at) for vote in approval.votes)
            waits.append((decided - _moment(approval.created_at)).total_seconds() / 60)
    status = Counter(approval.status for approval in found)
    waits.sort()
    return Approvals(
        len(found), status["approved"] + status["executed"], status["rejected"],
        status["expired"], status["pending"], len(system.events(kind="approval.escalated")),
        statistics.median(waits) if waits else None,
        waits[int(0.9 * (len(waits) - 1))] if waits else None,
        dict(Counter(str(a.request.get("action")) for a in found).most_common()))


def _conflicts(system: Charter) -> Conflicts:
    proposals = system.proposals()
    resolutions = {p.resolution_id for p in proposals if p.resolution_id}
    by_rule = settled = unsettled = 0
    examples: list[str] = []
    for resolution_id in sorted(resolutions):
        resolution = system.resolution(resolution_id)
        if resolution.status == "escalated":
            unsettled += 1
            continue
        if resolution.approval_id is None:
            by_rule += 1
            continue
        settled += 1
        if len(examples) < 3 and resolution.winner is not None:
            winner = system.proposal(resolution.winner)
            parties = ", ".join(f"{party['member']} {_value(party['value'])}"
                                for party in resolution.evidence.get("parties", []))
            examples.append(f"{resolution.subject} {resolution.key}: {parties} → "
                            f"{winner.member}'s {_value(winner.value)} won")
    return Conflicts(len(proposals), len(resolutions), by_rule, settled, unsettled,
                     tuple(examples))


def _autonomy(system: Charter, world: World) -> tuple[AutonomyChange, ...]:
    changes = []
    for kind in (PROMOTED, DEMOTED):
        for event in system.events(kind=kind):
            p = event.payload or {}
            changes.append(AutonomyChange(world.day(_moment(event.at)), str(p["member"]),
                                          str(p["task_type"]), str(p["from"]), str(p["to"]),
                                          str(p["because"])))
    return tuple(sorted(changes, key=lambda c: c.day))


def _swap(system: Charter, world: World, swapped_at: datetime | None) -> EngineSwap | None:
    """How the swapped agent did on the task type its new engine is for, per version."""
    if swapped_at is None:
        return None
    task_type = next(iter(ENGINE_CHANGE.talents))
    records = [r for r in system.track_record(ENGINE_CHANGE.member) if r.task_type == task_type]
    after = engine_version(system.org, ENGINE_CHANGE.member)
    old = [r for r in records if r.engine_version != after]
    new = [r for r in records if r.engine_version == after]
    return EngineSwap(
        ENGINE_CHANGE.member, world.day(swapped_at), task_type,
        old[0].engine_version if old else "none", after,
        sum(r.n for r in old), old[0].rate if old else 0.0,
        sum(r.n for r in new), new[0].rate if new else 0.0)


def _envelopes(system: Charter) -> tuple[Envelope, ...]:
    return tuple(Envelope(e.id, e.owner or "", float(e.amount), float(e.committed),
                          float(e.reserved), float(e.available))
                 for e in system.budget_usage())


def _days_of(world: World, system: Charter) -> float:
    return world.day(system.clock.now())


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _value(value: object) -> str:
    if isinstance(value, dict) and "change_percent" in value:
        return f"{int(value['change_percent']):+d}%"
    return str(value)
