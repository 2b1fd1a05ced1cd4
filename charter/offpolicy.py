"""Off-policy evaluation: the utility another allocation strategy would have had on the
work Charter recorded, estimated without running it.

Every assignment records the probability with which its strategy picked the member it
picked (`task.assigned`), and outcomes record what happened. Reweighting each recorded
utility by how much likelier the candidate strategy was to make the same choice
(inverse propensity scoring, w = π(a|x) / μ(a|x)) estimates the candidate's utility:

- **doubly robust**: a reward model's prediction for the candidate's choices, corrected
  by the weighted error of the prediction on the recorded choice. Unbiased when the
  recorded probabilities are right, whatever the model; the better the model, the
  narrower the interval. Its interval is the normal one of a mean of per-record terms
  (a martingale difference when the model uses only earlier outcomes).
- **self-normalised IPS**: Σ w·r / Σ w, with its interval by the delta method.

The estimators are pure functions over arrays. `replay_strategy` builds the arrays from
the ledger: it replays the outcomes into a learner in ledger order, so at each recorded
assignment the candidate sees the estimates the allocator had then, and the learner's
expected utilities are the reward model.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from charter.allocator import TaskSpec
from charter.errors import InvalidInput
from charter.learning import Learner
from charter.ledger import Event, format_time
from charter.outcomes import RECORDED, engine_version
from charter.pooling import Array
from charter.strategies import Slate, make_strategy

if TYPE_CHECKING:
    from charter.org import Org
    from charter.system import Charter

SUBMITTED = "task.submitted"
ASSIGNED = "task.assigned"
NOT_ALLOCATED = frozenset({"manual", "nobody-eligible"})
"""Assignments no strategy chose among candidates: by hand, or to a person's queue."""


@dataclass(frozen=True)
class Estimate:
    """A utility per task with its confidence interval, from `records` records."""

    method: str
    value: float
    low: float
    high: float
    records: int
    effective_records: float
    """How many records the estimate effectively rests on: (Σw)² / Σw² of the weights
    (all of them for the recorded strategy itself)."""

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "value": self.value, "low": self.low,
                "high": self.high, "records": self.records,
                "effective_records": self.effective_records}


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise InvalidInput(f"a confidence level is between 0 and 1, not {level}")
    return NormalDist().inv_cdf(0.5 + level / 2)


def _checked(*arrays: Array) -> int:
    sizes = {len(a) for a in arrays}
    if len(sizes) != 1:
        raise InvalidInput("every array needs one entry per record")
    (size,) = sizes
    if size < 2:
        raise InvalidInput("an estimate needs at least 2 records with outcomes")
    return size


def importance_weights(target: Array, propensity: Array) -> Array:
    """w = π(a|x) / μ(a|x): the candidate's probability of each recorded choice over the
    probability with which it was recorded."""
    if np.any(propensity <= 0) or np.any(propensity > 1):
        raise InvalidInput("recorded probabilities must be in (0, 1]")
    if np.any(target < 0) or np.any(target > 1):
        raise InvalidInput("the candidate's probabilities must be in [0, 1]")
    weights: Array = target / propensity
    return weights


def effective_records(weights: Array) -> float:
    """(Σw)² / Σw²: as many records as an unweighted sample this precise would need."""
    squares = float(np.sum(weights * weights))
    return 0.0 if squares == 0 else float(np.sum(weights)) ** 2 / squares


def recorded_utility(rewards: Array, level: float = 0.95) -> Estimate:
    """The mean utility the recorded choices had, with its normal interval."""
    n = _checked(rewards)
    mean = float(np.mean(rewards))
    half = _z(level) * float(np.std(rewards, ddof=1)) / np.sqrt(n)
    return Estimate("recorded", mean, mean - half, mean + half, n, float(n))


def self_normalised_ips(rewards: Array, target: Array, propensity: Array,
                        level: float = 0.95) -> Estimate:
    """Σ w·r / Σ w, with the delta-method interval. Undefined (NaN) when the candidate
    never makes a recorded choice."""
    n = _checked(rewards, target, propensity)
    weights = importance_weights(target, propensity)
    mean_weight = float(np.mean(weights))
    if mean_weight == 0:
        nan = float("nan")
        return Estimate("self-normalised IPS", nan, nan, nan, n, 0.0)
    value = float(np.sum(weights * rewards)) / float(np.sum(weights))
    influence = weights * (rewards - value) / mean_weight
    half = _z(level) * float(np.sqrt(np.sum(influence * influence))) / n
    return Estimate("self-normalised IPS", value, value - half, value + half, n,
                    effective_records(weights))


def doubly_robust(rewards: Array, target: Array, propensity: Array, predicted: Array,
                  direct: Array, level: float = 0.95) -> Estimate:
    """The doubly robust estimate: per record, `direct` (the model's utility of the
    candidate's choice, Σ_a π(a|x) r̂(x, a)) plus w · (r - `predicted`), `predicted`
    being the model's utility of the recorded choice."""
    n = _checked(rewards, target, propensity, predicted, direct)
    weights = importance_weights(target, propensity)
    terms = direct + weights * (rewards - predicted)
    value = float(np.mean(terms))
    half = _z(level) * float(np.std(terms, ddof=1)) / np.sqrt(n)
    return Estimate("doubly robust", value, value - half, value + half, n,
                    effective_records(weights))


def choice_terms(probabilities: Array, predicted: Array, chosen: int) -> tuple[float, float,
                                                                                   float]:
    """For one record: the candidate's probability of the recorded choice, the model's
    utility of that choice, and the model's utility of the candidate's choice."""
    return (float(probabilities[chosen]), float(predicted[chosen]),
            float(np.dot(probabilities, predicted)))


# -- from the ledger ------------------------------------------------------------------


@dataclass
class _Record:
    """One recorded assignment, what the candidate would have done, and its outcomes."""

    member: str
    value: float
    propensity: float
    target: float
    predicted: float
    direct: float
    cost: float
    duration: float
    agrees: bool
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def utility(self, lambda_cost: float, lambda_time: float) -> float:
        """The realised utility: a verified outcome outranks self-reports, the latest
        wins; a cost or duration not reported is the one expected at the time."""
        verified = [o for o in self.outcomes if o.get("verified")]
        outcome = (verified or self.outcomes)[-1]
        cost = self.cost if outcome.get("cost") is None else float(outcome["cost"])
        duration = (self.duration if outcome.get("duration_s") is None
                    else float(outcome["duration_s"]))
        return (float(bool(outcome["success"])) * self.value - lambda_cost * cost
                - lambda_time * duration)


@dataclass(frozen=True)
class StrategyReplay:
    """What the candidate strategy would have earned per task, beside what the recorded
    choices earned, on the same recorded assignments."""

    candidate: str
    since: str | None
    until: str | None
    lambda_cost: float
    lambda_time: float
    recorded_strategies: dict[str, int]
    skipped: dict[str, int]
    agreement: float
    """Share of the records where the candidate's likeliest choice is the recorded one."""
    recorded: Estimate
    doubly_robust: Estimate
    self_normalised: Estimate

    def to_json(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "window": {"since": self.since,
                                                        "until": self.until},
                "lambda_cost": self.lambda_cost, "lambda_time": self.lambda_time,
                "recorded_strategies": self.recorded_strategies, "skipped": self.skipped,
                "agreement": self.agreement, "recorded": self.recorded.to_json(),
                "doubly_robust": self.doubly_robust.to_json(),
                "self_normalised_ips": self.self_normalised.to_json()}


def replay_strategy(system: Charter, candidate: str, *, since: datetime | None = None,
                    until: datetime | None = None, lambda_cost: float = 1.0,
                    lambda_time: float = 0.0, seed: int = 0,
                    level: float = 0.95) -> StrategyReplay:
    """Estimate the utility per task `candidate` (a strategy name) would have had on the
    assignments recorded from `since` up to `until`, from their outcomes. Reads only."""
    strategy = make_strategy(candidate)
    org = system.org
    window = (None if since is None else format_time(since),
              None if until is None else format_time(until))
    learner = Learner.for_org(org)
    rng = np.random.default_rng(seed)
    tasks: dict[str, TaskSpec] = {}
    open_records: dict[tuple[str, str], _Record] = {}
    records: list[_Record] = []
    logged: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for event in _history(system):
        payload = event.payload
        if payload is None:
            if event.kind == ASSIGNED and _in_window(event.at, window):
                skipped["redacted"] += 1
            continue
        if event.kind == SUBMITTED:
            tasks[payload["task"]] = TaskSpec(payload["type"], float(payload["value"]),
                                              payload["task"], int(payload["priority"]))
        elif event.kind == RECORDED:
            _observe(learner, org, payload)
            record = open_records.get((payload["task"], payload["member"]))
            if record is not None:
                record.outcomes.append(payload)
        elif _in_window(event.at, window):
            task = tasks.get(payload["task"])
            why = _unusable(org, payload, task)
            if why or task is None:
                skipped[why or "task not found"] += 1
                continue
            units = _units(org, payload)
            slate = Slate(task, tuple(m for m, _ in units), tuple(v for _, v in units),
                          learner.estimates(task.task_type, units), learner, rng,
                          lambda_cost, lambda_time)
            chosen = slate.members.index(payload["member"])
            probabilities = strategy.pick(slate).probabilities
            chance, predicted, direct = choice_terms(probabilities, slate.utility, chosen)
            record = _Record(payload["member"], task.value, float(payload["probability"]),
                             chance, predicted, direct, float(slate.estimates.cost[chosen]),
                             float(slate.estimates.duration[chosen]),
                             int(np.argmax(probabilities)) == chosen)
            open_records[(task.id, record.member)] = record
            records.append(record)
            logged[payload["strategy"]] += 1
    done = [r for r in records if r.outcomes]
    skipped["no outcome yet"] += len(records) - len(done)
    if len(done) < 2:
        raise InvalidInput(f"{len(done)} recorded assignment(s) in the window have outcomes; "
                           "an estimate needs at least 2")
    rewards = np.array([r.utility(lambda_cost, lambda_time) for r in done])
    target = np.array([r.target for r in done])
    propensity = np.array([r.propensity for r in done])
    return StrategyReplay(
        strategy.name, window[0], window[1], lambda_cost, lambda_time, dict(logged),
        dict(skipped), sum(r.agrees for r in done) / len(done),
        recorded_utility(rewards, level),
        doubly_robust(rewards, target, propensity, np.array([r.predicted for r in done]),
                      np.array([r.direct for r in done]), level),
        self_normalised_ips(rewards, target, propensity, level))


def _history(system: Charter) -> list[Event]:
    """Submissions, assignments and outcomes, in ledger order."""
    with system.store.reading() as conn:
        kinds = [list(system.ledger.read(conn, kind=kind))
                 for kind in (SUBMITTED, ASSIGNED, RECORDED)]
    return list(heapq.merge(*kinds, key=lambda event: event.seq))


def _in_window(at: str, window: tuple[str | None, str | None]) -> bool:
    since, until = window
    return (since is None or at >= since) and (until is None or at < until)


def _observe(learner: Learner, org: Org, payload: dict[str, Any]) -> None:
    if payload["member"] not in org.members or payload["task_type"] not in org.task_types:
        return
    learner.observe(payload["member"], payload["engine_version"], payload["task_type"],
                    bool(payload["success"]), verified=bool(payload["verified"]),
                    cost=None if payload["cost"] is None else float(payload["cost"]),
                    duration_s=payload["duration_s"])


def _unusable(org: Org, payload: dict[str, Any], task: TaskSpec | None) -> str:
    """Why a recorded assignment cannot be replayed ('' when it can)."""
    if payload.get("strategy") in NOT_ALLOCATED:
        return "not chosen by a strategy"
    if not 0 < float(payload.get("probability") or 0) <= 1:
        return "no recorded probability"
    if task is None:
        return "task not found"
    if task.task_type not in org.task_types:
        return "task type no longer declared"
    if payload["member"] not in org.members:
        return "member no longer in the org"
    return ""


def _units(org: Org, payload: dict[str, Any]) -> list[tuple[str, str]]:
    """The eligible candidates of a recorded choice, (member, engine version), in the
    org's order (the order the allocator saw them in, which breaks ties)."""
    explained = payload.get("explanation") or {}
    batch = explained.get("method") == "batch"
    chosen = payload["member"]
    found = {chosen: explained.get("version") or engine_version(org, chosen)}
    for runner in explained.get("runners_up") or []:
        member = runner.get("member")
        # A single choice keeps utility terms for its eligible runners-up; a batch lists
        # its eligible ones without a reason (and, before `ruled_out`, every member).
        eligible = runner.get("reason") == "" if batch else runner.get("terms") is not None
        if eligible and member in org.members and member not in found:
            found[member] = runner.get("version") or engine_version(org, member)
    order = {member.id: n for n, member in enumerate(org.spec.members)}
    return sorted(found.items(), key=lambda unit: order[unit[0]])
