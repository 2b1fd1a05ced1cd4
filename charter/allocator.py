"""Who handles a task: the expected-utility choice among eligible members, one or in batch.

The caller decides eligibility (active, skilled, free, permitted) and passes every
candidate with its verdict; the allocator picks among the eligible with a strategy
(`charter.strategies`, default `learned`) on the utility

    p(success) · value - λ_cost · cost - λ_time · duration

estimated by a `charter.learning.Learner`. A `Choice` records the probability with which
the strategy picked its member and says why every other candidate lost.

`assign_batch` assigns many waiting tasks to members' free slots at once, as a
transportation problem solved exactly (POT's network simplex, `ot.emd`): higher priority
first, then earlier deadline, and within that the best total utility.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from operator import attrgetter

import numpy as np

from charter.errors import Conflict
from charter.learning import Learner
from charter.strategies import Pick, Slate, Strategy, make_strategy


class NoEligibleMember(Conflict):
    """No eligible member can take this task."""


@dataclass(frozen=True)
class TaskSpec:
    """What the allocator needs to know of a task. `deadline` is any number that orders
    deadlines (e.g. a POSIX timestamp); a task without one comes after those with one."""

    task_type: str
    value: float
    id: str = ""
    priority: int = 0
    deadline: float | None = None


@dataclass(frozen=True)
class Candidate:
    """A member the caller considered for a task, and its verdict on eligibility."""

    member: str
    version: str = ""
    eligible: bool = True
    reason: str = ""
    """Why it is not eligible (e.g. "lacks skill `refunds`"); empty when eligible."""

    @classmethod
    def ineligible(cls, member: str, reason: str, version: str = "") -> Candidate:
        return cls(member, version, False, reason)


@dataclass(frozen=True)
class UtilityTerms:
    """The terms of a member's expected utility for a task."""

    p_success: float
    value: float
    cost: float
    duration_s: float
    lambda_cost: float
    lambda_time: float

    @property
    def utility(self) -> float:
        return (self.p_success * self.value - self.lambda_cost * self.cost
                - self.lambda_time * self.duration_s)

    def describe(self) -> str:
        return (f"utility {self.utility:.4g} = p(success) {self.p_success:.3f} * value "
                f"{self.value:.4g} - λ_cost {self.lambda_cost:.4g} * cost {self.cost:.4g} "
                f"- λ_time {self.lambda_time:.4g} * duration {self.duration_s:.4g}s")


@dataclass(frozen=True)
class RunnerUp:
    """A candidate that was not picked, and why."""

    member: str
    version: str
    reason: str
    terms: UtilityTerms | None = None
    """None when the candidate was not eligible."""
    probability: float = 0.0


@dataclass(frozen=True)
class Choice:
    """The member picked for a task, with the evidence for the pick."""

    task: TaskSpec
    member: str
    version: str
    strategy: str
    probability: float
    method: str
    terms: UtilityTerms
    runners_up: tuple[RunnerUp, ...]

    def explain(self, limit: int = 5) -> str:
        """Why the winner won, with its utility terms, and why the runners-up lost."""
        task = f"task {self.task.id} " if self.task.id else "task "
        lines = [f"{task}(type {self.task.task_type}, value {self.task.value:.4g}) → "
                 f"{_name(self.member, self.version)} by strategy `{self.strategy}`, picked "
                 f"with probability {self.probability:.2f} ({self.method})",
                 f"  {self.terms.describe()}"]
        if self.runners_up:
            lines.append("runners-up:")
        for runner in self.runners_up[:limit]:
            terms = f"{runner.terms.describe()} — " if runner.terms else ""
            lines.append(f"  - {_name(runner.member, runner.version)}: {terms}"
                         f"{'' if runner.terms else 'ineligible: '}{runner.reason}")
        if len(self.runners_up) > limit:
            lines.append(f"  … and {len(self.runners_up) - limit} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class Assignment:
    """One task of a batch and the member it went to."""

    task: TaskSpec
    member: str
    version: str
    terms: UtilityTerms
    probability: float
    """For a strategy that draws, the probability that it would pick this member for this
    task alone (competition for slots within the batch is not accounted for)."""


@dataclass(frozen=True)
class BatchResult:
    assignments: tuple[Assignment, ...]
    unassigned: tuple[TaskSpec, ...]


_MEMBER = attrgetter("member")
_VERSION = attrgetter("version")


def _name(member: str, version: str) -> str:
    return f"{member} (engine {version})" if version else member


class Allocator:
    """Picks members for tasks with a named strategy over a learner's estimates."""

    def __init__(self, learner: Learner, *, strategy: str = "learned",
                 lambda_cost: float = 1.0, lambda_time: float = 0.0,
                 rng: np.random.Generator | int | None = None, runners_up: int = 10) -> None:
        self.learner = learner
        self.runners_up = runners_up
        """Eligible runners-up kept in a `Choice` (the most likely, then the best);
        every ineligible candidate is kept."""
        self.default_strategy = strategy
        self.lambda_cost = lambda_cost
        self.lambda_time = lambda_time
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self._strategies: dict[str, Strategy] = {}
        self.strategy(strategy)

    def strategy(self, name: str | None = None) -> Strategy:
        """This allocator's instance of a strategy (strategies may keep state)."""
        name = name or self.default_strategy
        if name not in self._strategies:
            self._strategies[name] = make_strategy(name)
        return self._strategies[name]

    def slate(self, task: TaskSpec, candidates: Sequence[Candidate]) -> Slate:
        """The eligible candidates of a task with their estimates."""
        members = tuple(map(_MEMBER, candidates))
        versions = tuple(map(_VERSION, candidates))
        return Slate(task, members, versions,
                     self.learner.estimates_of(task.task_type, members, versions),
                     self.learner, self.rng, self.lambda_cost, self.lambda_time)

    def choose(self, task: TaskSpec, candidates: Sequence[Candidate], *,
               strategy: str | None = None) -> Choice:
        """Pick one eligible candidate for the task; raise `NoEligibleMember` if none is."""
        eligible = [c for c in candidates if c.eligible]
        if not eligible:
            reasons = "; ".join(f"{c.member}: {c.reason}" for c in candidates)
            raise NoEligibleMember(f"no eligible member for task type `{task.task_type}`",
                                   details=reasons or None)
        chosen = self.strategy(strategy)
        slate = self.slate(task, eligible)
        pick = chosen.pick(slate)
        return Choice(task, slate.members[pick.index], slate.versions[pick.index], chosen.name,
                      float(pick.probabilities[pick.index]), pick.method,
                      self._terms(slate, pick.index),
                      self._runners_up(chosen, slate, pick,
                                       candidates if len(eligible) < len(candidates) else ()))

    def _terms(self, slate: Slate, index: int) -> UtilityTerms:
        est = slate.estimates
        return UtilityTerms(float(slate.p_success[index]), slate.task.value,
                            float(est.cost[index]),
                            float(est.duration[index]), self.lambda_cost, self.lambda_time)

    def _runners_up(self, strategy: Strategy, slate: Slate, pick: Pick,
                    candidates: Sequence[Candidate]) -> tuple[RunnerUp, ...]:
        """The most likely (then best) eligible losers, then every ineligible candidate."""
        order = np.lexsort((-slate.utility, -pick.probabilities))
        losers = [int(i) for i in order[:self.runners_up + 1] if i != pick.index]
        losers = losers[:self.runners_up]
        runners = [RunnerUp(slate.members[i], slate.versions[i],
                            strategy.why_lost(slate, pick, i), self._terms(slate, i),
                            float(pick.probabilities[i])) for i in losers]
        runners += [RunnerUp(c.member, c.version, c.reason or "not eligible")
                    for c in candidates if not c.eligible]
        return tuple(runners)

    def _batch(self, tasks: Sequence[TaskSpec], column: Mapping[str, int],
               candidates: Callable[[TaskSpec], Sequence[Candidate]],
               score_rows: Callable[[Slate, int], np.ndarray] | None) -> _Batch:
        slates: list[Slate | None] = []
        cached: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[Slate, np.ndarray]] = {}
        groups: dict[object, tuple[np.ndarray, list[int]]] = {}
        for row, task in enumerate(tasks):
            units = tuple((c.member, c.version) for c in candidates(task)
                          if c.eligible and c.member in column)
            if not units:
                slates.append(None)
                continue
            key = (task.task_type, units)
            if key not in cached:
                slate = self.slate(task, [Candidate(m, v) for m, v in units])
                position = np.full(len(column), -1, dtype=np.intp)
                position[[column[m] for m, _ in units]] = np.arange(len(units))
                cached[key] = slate, position
            slate, gather = cached[key]
            slates.append(slate if slate.task == task else replace(slate, task=task))
            group = (id(slate), task.value) if score_rows is not None else row
            groups.setdefault(group, (gather, []))[1].append(row)
        return _Batch(slates, list(groups.values()), score_rows)

    def assign_batch(self, tasks: Sequence[TaskSpec], slots: Mapping[str, int],
                     candidates: Callable[[TaskSpec], Sequence[Candidate]], *,
                     strategy: str | None = None, draws: int = 20) -> BatchResult:
        """Assign waiting tasks to free slots (`slots`: member -> free capacity) at once.

        Tasks of higher priority are assigned before any of lower priority, and within a
        priority those with earlier deadlines first, as far as eligibility allows; within
        that, the strategy's scores (for `learned`, one Thompson draw per task and member)
        are maximised in total over tasks * members, no member taking more tasks than its
        free slots (a transportation problem, solved exactly by `best_matching`).

        For a strategy that draws, each assignment's probability is estimated by solving
        the batch again `draws` times with fresh draws; past 50,000 task-slot pairs, by the
        probability of the member being picked for the task alone."""
        chosen = self.strategy(strategy)
        free = {member: count for member, count in slots.items() if count > 0}
        column = {member: n for n, member in enumerate(free)}
        capacity = np.array(list(free.values()), dtype=float)
        batch = self._batch(tasks, column, candidates, getattr(chosen, "score_rows", None))
        slates = batch.slates
        bonus = (len(tasks) + 1.0) * (1.0 + _urgency_ranks(tasks))

        def solve() -> list[tuple[int, int]]:
            return best_matching(batch.scores(chosen, len(column)), bonus, capacity)

        matching = solve() if column else []
        hits = dict.fromkeys(matching, 1)
        repeat = (not chosen.deterministic and matching
                  and len(tasks) * capacity.sum() <= 50_000)
        for _ in range(draws if repeat else 0):
            for pair in solve():
                if pair in hits:
                    hits[pair] += 1
        members = list(column)
        done: list[Assignment] = []
        odds: dict[tuple[str, float, tuple[str, ...], tuple[str, ...]], np.ndarray] = {}
        for row, col in matching:
            given = slates[row]
            assert given is not None
            index = given.members.index(members[col])
            if chosen.deterministic:
                probability = 1.0
            elif repeat:
                probability = hits[(row, col)] / (draws + 1)
            else:
                # Tasks alike in type, value and candidates share their pick odds.
                kind = (given.task.task_type, given.task.value, given.members,
                        given.versions)
                if kind not in odds:
                    odds[kind] = chosen.probabilities(given)
                probability = float(odds[kind][index])
            done.append(Assignment(tasks[row], members[col], given.versions[index],
                                   self._terms(given, index), probability))
        assigned = {row for row, _ in matching}
        return BatchResult(tuple(done),
                           tuple(t for i, t in enumerate(tasks) if i not in assigned))


@dataclass(frozen=True)
class _Batch:
    """The tasks of a batch with their slates (None: no eligible member with a free slot),
    in groups drawn for together: the tasks alike in type, value and candidates where the
    strategy can draw several rows at once (`score_rows`), else each task on its own, in
    order (a strategy's scores may depend on more of the task, or on the tasks before)."""

    slates: list[Slate | None]
    groups: list[tuple[np.ndarray, list[int]]]
    """Each group's rows, with the position of each member's column in its slate (-1:
    not a candidate)."""
    score_rows: Callable[[Slate, int], np.ndarray] | None

    def scores(self, strategy: Strategy, members: int) -> np.ndarray:
        """Fresh scores of every task (rows) for every member (columns); NaN where the
        member is not a candidate."""
        score = np.full((len(self.slates), members), np.nan)
        for gather, rows in self.groups:
            first = self.slates[rows[0]]
            assert first is not None
            drawn = (self.score_rows(first, len(rows)) if self.score_rows is not None
                     else strategy.scores(first)[None, :])
            score[rows] = np.where(gather >= 0, drawn[:, gather], np.nan)
        return score


def best_matching(score: np.ndarray, bonus: np.ndarray,
                   capacity: np.ndarray) -> list[tuple[int, int]]:
    """(task, member) pairs maximising the total score, most urgent tasks first, each task
    to at most one member and member `j` given at most `capacity[j]` tasks; a NaN score
    marks a pair that is not allowed.

    This is a transportation problem, solved exactly by the network simplex of POT's
    `ot.emd`: tasks supply one unit each, members take up to their capacity, and a dummy
    member (a task left unassigned) and a dummy task (a slot left free) balance the two.
    The flows are whole numbers because the supplies and capacities are."""
    allowed = ~np.isnan(score)
    if not allowed.any():
        return []
    low, high = np.nanmin(score), np.nanmax(score)
    scaled = (score - low) / (high - low) if high > low else np.zeros_like(score)
    # Each urgency class outweighs any difference in summed scores (each in [0, 1]): the
    # sets of tasks that can be matched form a matroid, so the best total takes the most
    # urgent tasks that can be assigned, then the best scores among them.
    tasks, members = score.shape
    cost = np.zeros((tasks + 1, members + 1))
    # An allowed pair gains its weight (> 0) over leaving the task unassigned (0); a pair
    # that is not allowed costs more than that, so it is never used.
    cost[:tasks, :members] = np.where(allowed, -(scaled + bonus[:, None]), 1.0)
    supply = np.append(np.ones(tasks), capacity.sum())
    demand = np.append(capacity, float(tasks))
    # Imported here: POT (with scipy) takes a second or two to load, and most commands
    # never assign in batch.
    from ot import emd  # type: ignore[import-untyped, unused-ignore]

    plan, log = emd(supply, demand, cost, numItermax=max(100_000, 20 * cost.size),
                    log=True)
    if log["result_code"] != 1:
        raise RuntimeError(f"batch assignment: the network simplex did not reach an "
                           f"optimum ({log['warning'] or log['result_code']})")
    rows, cols = np.nonzero(plan[:tasks, :members] > 0.5)
    return [(r, c) for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
            if allowed[r, c]]


def _urgency_ranks(tasks: Sequence[TaskSpec]) -> np.ndarray:
    """Per task, how urgent its class is: 0 for the least urgent (priority, deadline)."""
    keys = [(-t.priority, math.inf if t.deadline is None else t.deadline) for t in tasks]
    classes = sorted(set(keys), reverse=True)
    rank = {key: n for n, key in enumerate(classes)}
    return np.array([rank[key] for key in keys], dtype=float)
