"""Dispatch: give queued tasks to members.

Eligibility first — active, has the task type's skills, did not fail this task before,
its circuit breaker lets a task through (`charter.breakers`), has free capacity, and the
policy permits the task type's action for the member or can escalate it (decided once
per member and task type, until the org or the policies change; a denial only for
the subject and context it was about) — then the allocator's
choice among the eligible. Each assignment records the
strategy, the probability with which it picked the member and the explanation, so other
strategies can later be evaluated off-policy on the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from charter import breakers, tasks, tracing
from charter.allocator import Allocator, Candidate, Choice, NoEligibleMember, TaskSpec
from charter.authority import Authority
from charter.canonical import canonical_json
from charter.fallback import nearest_person
from charter.learning import Learner
from charter.ledger import Ledger
from charter.org import Org
from charter.outcomes import Outcome, engine_version
from charter.tasks import Task

BUSY = "at capacity"
DENIALS_KEPT = 10_000
"""Denied (member, task type, subject, context) requests remembered; then forgotten."""


class Dispatcher:
    """The allocator over one org and policy set, with what it has learned."""

    def __init__(self, authority: Authority, recorded: Sequence[Outcome], *,
                 strategy: str = "learned", lambda_cost: float = 1.0,
                 lambda_time: float = 0.0, seed: int | None = None,
                 agreement: Mapping[tuple[str, str], tuple[int, int]] | None = None) -> None:
        """`agreement`: per (member, task type), reviews of its self-reports and how
        many agreed (`charter.reviews.agreement`)."""
        self.authority = authority
        self.org: Org = authority.org
        self.learner = Learner.for_org(self.org)
        for (member, task_type), (reviewed, agreed) in (agreement or {}).items():
            self.learner.set_agreement(member, task_type, reviewed, agreed)
        for outcome in recorded:
            self.observe(outcome)
        self.allocator = Allocator(self.learner, strategy=strategy, lambda_cost=lambda_cost,
                                   lambda_time=lambda_time, rng=seed)
        self._permitted: set[tuple[str, str]] = set()
        self._denied: dict[tuple[str, str, str, str], str] = {}
        self.versions = {m.id: engine_version(self.org, m.id) for m in self.org.spec.members}
        """Each member's engine version, fixed for the org this dispatcher serves."""
        self._rosters: dict[str, list[tuple[str, str, int, str]]] = {}

    def observe(self, outcome: Outcome) -> None:
        """Learn from one outcome (verified ones weigh more)."""
        if outcome.member not in self.org.members:
            return
        self.learner.observe(outcome.member, outcome.engine_version, outcome.task_type,
                             outcome.success, verified=outcome.verified,
                             cost=None if outcome.cost is None else float(outcome.cost),
                             duration_s=outcome.duration_s)

    def observe_review(self, member: str, task_type: str, agreed: bool) -> None:
        """Learn from a review of one of the member's self-reports."""
        if member in self.org.members:
            self.learner.observe_review(member, task_type, agreed)

    def self_reports(self, member: str, task_type: str) -> str:
        """What the member's self-reports on the task type count for, and why."""
        reviewed, agreed = self.learner.agreement(member, task_type)
        return (f"self-reports of {member} on {task_type} count "
                f"{self.learner.self_report_weight(member, task_type):.3g} each "
                f"({agreed} of {reviewed} reviews agreed with them)")

    def candidates(self, conn: Connection, task: Task, now: datetime,
                   held: dict[str, int] | None = None,
                   seen: breakers.Overlay | None = None) -> list[Candidate]:
        """Every member, each eligible or with the rule that rules it out (`held`: the
        tasks each member holds, `seen`: the breakers, when the caller has read them
        already)."""
        held = tasks.loads(conn) if held is None else held
        seen = breakers.overlay(conn) if seen is None else seen
        found = []
        for member, version, capacity, fixed in self._roster(task.type):
            reason = ("suspended" if member in self.authority.suspended else fixed
                      or self._refusal(task, member, version, capacity, now, held, seen))
            found.append(Candidate(member, version, not reason, reason))
        return found

    def _refusal(self, task: Task, member: str, version: str, capacity: int, now: datetime,
                 held: dict[str, int], seen: breakers.Overlay) -> str:
        """Why a member the org file allows is ruled out of `task` now, or ""."""
        if member in task.excluded:
            return "failed this task before"
        if not (let := seen.admission(self.org, member, version, now)).eligible:
            return let.reason
        if held.get(member, 0) >= capacity:
            return f"{BUSY} ({capacity})"
        return self._policy_refusal(member, task, now)

    def _roster(self, task_type: str) -> list[tuple[str, str, int, str]]:
        """Every member for tasks of `task_type`: (id, engine version, capacity, and why
        the org file alone rules it out, or "")."""
        roster = self._rosters.get(task_type)
        if roster is None:
            skills = self.org.task_types[task_type].skills
            roster = self._rosters[task_type] = []
            for member in self.org.spec.members:
                missing = [s for s in skills if s not in member.skills]
                fixed = (member.status if member.status != "active"
                         else f"lacks skill {', '.join(missing)}" if missing else "")
                roster.append((member.id, self.versions[member.id], member.capacity, fixed))
        return roster

    def _policy_refusal(self, member: str, task: Task, now: datetime) -> str:
        """Why the policy keeps `member` from `task`, or "" when it permits or can
        escalate it. A permission holds for every task of the type (the action path
        checks each real request again); a denial may be about this task's subject or
        context alone (a frozen vendor), so it is remembered for that request only."""
        if (member, task.type) in self._permitted:
            return ""
        spec = self.org.task_types[task.type]
        context = action_context(self.org, task)
        key = (member, task.type, task.subject, canonical_json(context))
        if key in self._denied:
            return self._denied[key]
        decision = self.authority.decide(member, spec.action, task.subject, context,
                                         task_type=task.type, now=now)
        if decision.outcome != "deny":
            self._permitted.add((member, task.type))
            return ""
        if len(self._denied) >= DENIALS_KEPT:
            self._denied.clear()
        refusal = self._denied[key] = (f"policy denies {spec.action}: "
                                       + decision.reasons[0].message)
        return refusal

    def choose(self, conn: Connection, task: Task, now: datetime, *,
               strategy: str | None = None) -> Choice:
        """The allocator's pick for one task; raises `NoEligibleMember`."""
        return self.allocator.choose(task_spec(task), self.candidates(conn, task, now),
                                     strategy=strategy)

    def dispatch(self, conn: Connection, ledger: Ledger, task: Task, now: datetime, *,
                 strategy: str | None = None, held_here: bool = False) -> Task:
        """Assign one queued task. With nobody eligible it goes to a person's queue (the
        requester if a person, else the nearest person above it), never silently
        nowhere. `held_here`: this transaction submitted `task` or holds its row, so it
        is known as it stands and nobody else can change it."""
        started = time.time_ns()
        moved = self._place(conn, ledger, task, now, strategy, held_here)
        if moved.state != "queued":  # a task left waiting is tried again: no span each time
            tracing.task_step(conn, "charter.task.allocate", moved, member=moved.assignee,
                              start_ns=started, state=moved.state, reason=moved.reason)
        return moved

    def _place(self, conn: Connection, ledger: Ledger, task: Task, now: datetime,
               strategy: str | None, held_here: bool) -> Task:
        seen = breakers.overlay(conn)
        held = tasks.loads(conn)
        candidates = self.candidates(conn, task, now, held, seen)
        try:
            choice = self.allocator.choose(task_spec(task), candidates, strategy=strategy)
        except NoEligibleMember as refused:
            if _only_busy(candidates):
                return task  # someone able is just busy: it waits for a free slot
            return _to_person(conn, ledger, self.org, task, refused)
        explained = explanation(choice)
        if self.org.task_types[task.type].evaluation is not None:
            explained["text"] += "\n  " + self.self_reports(choice.member, task.type)
        assigned = tasks.assign(conn, ledger, self.org, task.id, choice.member,
                                actor="charter", strategy=choice.strategy,
                                probability=choice.probability, explanation=explained,
                                holds=held.get(choice.member, 0),
                                current=task if held_here else None)
        breakers.note_assigned(conn, ledger, self.org, seen, choice.member, task.id, now)
        return assigned

    def dispatch_batch(self, conn: Connection, ledger: Ledger, waiting: Sequence[Task],
                       now: datetime, *, strategy: str | None = None) -> list[Task]:
        """Assign many queued tasks, whose rows this transaction holds, at once over the
        members' free slots, maximising the total (`Allocator.assign_batch`) after
        priority and deadline; tasks nobody is eligible for go to a person's queue; the
        rest wait for free slots."""
        started = time.time_ns()
        by_id = {task.id: task for task in waiting}
        held = tasks.loads(conn)
        seen = breakers.overlay(conn)
        slates = {task.id: self.candidates(conn, task, now, held, seen) for task in waiting}
        slots = {m.id: m.capacity - held.get(m.id, 0) for m in self.org.spec.members
                 if m.status == "active" and m.capacity > held.get(m.id, 0)}
        for member in list(slots):  # a half-open breaker lets one probe through
            if seen.admission(self.org, member, self.versions[member], now).probe:
                slots[member] = 1
        result = self.allocator.assign_batch(
            [task_spec(task) for task in waiting], slots,
            lambda spec: slates[spec.id], strategy=strategy)
        chosen = strategy or self.allocator.default_strategy
        wanted = []
        for placed in result.assignments:
            others = _batch_runners_up(slates[placed.task.id], placed.member)
            explained: dict[str, Any] = {
                "text": (f"task {placed.task.id} → {placed.member} in a batch of "
                         f"{len(waiting)} tasks over {sum(slots.values())} free slots "
                         f"(best total over the batch, strategy `{chosen}`): "
                         f"{placed.terms.describe()}" + _batch_losers(others)),
                "method": "batch", "version": placed.version, **others}
            if self.org.task_types[placed.task.task_type].evaluation is not None:
                explained["text"] += "\n  " + self.self_reports(placed.member,
                                                                 placed.task.task_type)
            wanted.append(tasks.Assignment(by_id[placed.task.id], placed.member, chosen,
                                           placed.probability, explained,
                                           held.get(placed.member, 0)))
            held[placed.member] = held.get(placed.member, 0) + 1
        moved = tasks.assign_all(conn, ledger, self.org, wanted, actor="charter")
        for assigned in moved:
            member = assigned.assignee or ""
            breakers.note_assigned(conn, ledger, self.org, seen, member, assigned.id, now)
            tracing.task_step(conn, "charter.task.allocate", assigned, member=member,
                              start_ns=started, state=assigned.state, reason=assigned.reason,
                              batch=len(waiting))
        for spec in result.unassigned:
            if not any(c.eligible for c in slates[spec.id]) and not _only_busy(
                    slates[spec.id]):
                refused = NoEligibleMember(f"no eligible member for task type "
                                           f"`{spec.task_type}`", details="; ".join(
                                               f"{c.member}: {c.reason}"
                                               for c in slates[spec.id]))
                moved.append(_to_person(conn, ledger, self.org, by_id[spec.id], refused))
        return [task for task in moved if task.state == "assigned"]


def action_context(org: Org, task: Task) -> dict[str, Any]:
    """The request context of a task's action: the payload's `context`, else the payload
    fields the action declares (e.g. `amount`)."""
    given = task.payload.get("context")
    if isinstance(given, dict):
        return given
    declared = org.spec.actions[org.task_types[task.type].action].context
    return {name: task.payload[name] for name in declared if name in task.payload}


def task_spec(task: Task) -> TaskSpec:
    deadline = None
    if task.deadline is not None:
        deadline = datetime.strptime(task.deadline, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
    return TaskSpec(task.type, float(task.value), task.id, task.priority, deadline)


def explanation(choice: Choice) -> dict[str, Any]:
    """What the ledger keeps of a choice: enough to explain it and to evaluate other
    strategies off-policy."""
    def terms(value: Any) -> dict[str, float] | None:
        if value is None:
            return None
        return {"p_success": value.p_success, "value": value.value, "cost": value.cost,
                "duration_s": value.duration_s, "utility": value.utility}

    return {"text": choice.explain(limit=len(choice.runners_up)), "method": choice.method,
            "version": choice.version,
            "terms": terms(choice.terms),
            "runners_up": [{"member": r.member, "version": r.version, "reason": r.reason,
                            "probability": r.probability, "terms": terms(r.terms)}
                           for r in choice.runners_up]}


def _batch_runners_up(slate: Sequence[Candidate], chosen: str) -> dict[str, Any]:
    """Who else a batch could have given the task to (`runners_up`, each with an empty
    reason) and who it could not, grouped by why (`ruled_out`: reason → members)."""
    eligible: list[dict[str, str]] = []
    ruled_out: dict[str, list[str]] = {}
    for candidate in slate:
        if candidate.member == chosen:
            continue
        if candidate.eligible:
            eligible.append({"member": candidate.member, "reason": ""})
        else:
            ruled_out.setdefault(candidate.reason, []).append(candidate.member)
    return {"runners_up": eligible, "ruled_out": ruled_out}


def _batch_losers(others: dict[str, Any], shown: int = 5) -> str:
    """Why the others did not get the task, in a few lines of the explanation."""
    def some(members: list[str]) -> str:
        more = f" and {len(members) - shown} more" if len(members) > shown else ""
        return ", ".join(members[:shown]) + more

    lines = []
    eligible = [runner["member"] for runner in others["runners_up"]]
    if eligible:
        lines.append(f"runners-up, eligible: {some(eligible)} — the batch's best total "
                     "placed the task with the winner")
    lines += [f"ruled out, {why}: {some(who)}" for why, who in others["ruled_out"].items()]
    return "".join(f"\n  {line}" for line in lines)


def _only_busy(candidates: Sequence[Candidate]) -> bool:
    """Whether some member could take the task but for being at capacity."""
    return any(c.reason.startswith(BUSY) for c in candidates)


def _to_person(conn: Connection, ledger: Ledger, org: Org, task: Task,
               refused: NoEligibleMember) -> Task:
    person = nearest_person(org, task.requester) or next(
        (m for m in org.roots() if org.members[m].kind == "human"), None)
    if person is None:
        return task
    spec = org.members[person]
    if tasks.load(conn, person) >= spec.capacity:
        return task  # stays queued; the next dispatch tries again
    return tasks.assign(conn, ledger, org, task.id, person, actor="charter",
                        strategy="nobody-eligible", probability=1.0,
                        explanation={"text": f"{refused.message}: queued for {person}",
                                     "details": refused.details})
