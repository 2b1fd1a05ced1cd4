"""Policy replay: what a candidate policy set would have decided on the requests Charter
recorded, before it goes live.

Every recorded decision (`decision.made`) in a window is decided again under the
candidate set, built against the org in force, at the time it was recorded and with the
delegations and earned autonomy levels the ledger had then. The report counts what
would change — by action and by transition (allow→deny, escalate→allow, changed
approvers, …) — with each changed decision's before and after and their reasons.

Only decisions that a policy made are replayed: a request that was invalid, a budget
decision, the use of an approved request and a refusal because the member was
suspended or the action frozen are counted as skipped. Nothing is written but one
`replay.policies` event with the report's summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from charter import autonomy, delegations, readmodel
from charter.authority import Authority
from charter.decisions import Decision
from charter.delegations import Delegation
from charter.errors import NoOrgLoaded
from charter.governance import DECISION
from charter.ledger import Event, Ledger, format_time
from charter.policy import PolicyEngine
from charter.store.schema import events
from charter.types import AutonomyLevel

if TYPE_CHECKING:
    from charter.system import Charter

REPLAYED = "replay.policies"
_NOT_BY_POLICY = {
    "invalid": "invalid request",
    "budget": "budget decision",
    "approval": "approved request used",
    "suspended": "member suspended or inactive",
    "frozen": "action frozen",
}
"""Reason kinds of recorded decisions that no policy made, and how the skip is named."""
_CIRCUMSTANCES = (delegations.GRANTED, delegations.REVOKED, autonomy.PROMOTED,
                  autonomy.DEMOTED)


@dataclass(frozen=True)
class PolicyChange:
    """One recorded decision that the candidate set decides differently."""

    seq: int
    at: str
    member: str
    action: str
    resource: str
    context: dict[str, Any]
    before: str
    after: str
    before_approvers: tuple[str, ...]
    after_approvers: tuple[str, ...]
    before_reasons: tuple[str, ...]
    after_reasons: tuple[str, ...]

    @property
    def transition(self) -> str:
        """`allow→deny`, `escalate→allow`, …, or `changed approvers`."""
        return ("changed approvers" if self.before == self.after
                else f"{self.before}→{self.after}")

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "member": self.member,
                "action": self.action, "resource": self.resource, "context": self.context,
                "transition": self.transition,
                "before": {"outcome": self.before, "approvers": list(self.before_approvers),
                           "reasons": list(self.before_reasons)},
                "after": {"outcome": self.after, "approvers": list(self.after_approvers),
                          "reasons": list(self.after_reasons)}}


@dataclass(frozen=True)
class PolicyReplay:
    """What the candidate set would have changed among the decisions in the window."""

    candidate_digest: str
    files: tuple[str, ...]
    since: str | None
    until: str | None
    org_version: int | None
    policy_version: int | None
    policy_digest: str | None
    decisions: int
    """Recorded decisions in the window, replayed or skipped."""
    replayed: dict[str, int]
    """Decisions replayed, by action."""
    skipped: dict[str, int]
    other_org: int
    """Replayed decisions recorded under another org version than the one in force: a
    change among them may come from the org rather than the policies."""
    changes: tuple[PolicyChange, ...]
    event_seq: int | None = None

    def by_transition(self) -> dict[str, int]:
        return dict(Counter(change.transition for change in self.changes).most_common())

    def by_action(self) -> dict[str, dict[str, int]]:
        changed = Counter(change.action for change in self.changes)
        return {action: {"replayed": count, "changed": changed[action]}
                for action, count in sorted(self.replayed.items())}

    def summary(self) -> dict[str, Any]:
        """The report without its examples: what the ledger keeps of it."""
        return {"candidate": {"digest": self.candidate_digest, "files": list(self.files)},
                "in_force": {"org_version": self.org_version,
                             "policy_version": self.policy_version,
                             "policy_digest": self.policy_digest},
                "window": {"since": self.since, "until": self.until},
                "decisions": self.decisions, "replayed": sum(self.replayed.values()),
                "skipped": self.skipped, "recorded_under_other_org": self.other_org,
                "changed": len(self.changes), "by_transition": self.by_transition(),
                "by_action": self.by_action()}

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "event_seq": self.event_seq,
                "changes": [change.to_json() for change in self.changes]}


def replay_policies(system: Charter, files: dict[str, str], since: datetime | None = None,
                    until: datetime | None = None, *, actor: str = "system") -> PolicyReplay:
    """Decide every request recorded from `since` up to `until` again under the policy
    files `files` (name -> text); report what changes. An invalid set raises
    `PolicyInvalid` (file, line, reason) and writes nothing."""
    current = system.current_org()
    if current is None:
        raise NoOrgLoaded()
    engine = PolicyEngine.build(current.org, files)
    in_force = system.current_policies()
    system.flush_decisions()
    window = (None if since is None else format_time(since),
              None if until is None else format_time(until))
    decided, replayed, skipped, other_org = 0, Counter[str](), Counter[str](), 0
    changes = []
    with system.store.reading() as conn:
        circumstances = _Circumstances(engine, _read_circumstances(conn, system.ledger))
        for event in _recorded_decisions(conn, *window):
            decided += 1
            redecided = _redecide(circumstances, event)
            if isinstance(redecided, str):
                skipped[redecided] += 1
                continue
            payload = event.payload or {}
            replayed[payload["action"]] += 1
            other_org += payload.get("org_version") not in (None, current.version)
            change = _compare(event, redecided)
            if change is not None:
                changes.append(change)
    report = PolicyReplay(
        engine.policies.digest, tuple(files), window[0], window[1],
        current.version,
        None if in_force is None else in_force.version,
        None if in_force is None else in_force.digest, decided, dict(replayed),
        dict(skipped), other_org, tuple(changes))
    with system.store.transaction() as conn:
        recorded = readmodel.record(conn, system.ledger, kind=REPLAYED, actor=actor,
                                    subject=f"policies:{report.candidate_digest[:16]}",
                                    payload=report.summary())
    return replace(report, event_seq=recorded.seq)


class _Circumstances:
    """The delegations and autonomy levels in force at a point of the ledger, moved
    forward through it."""

    def __init__(self, engine: PolicyEngine, changes: list[Event]) -> None:
        self.engine = engine
        self.changes = changes
        self.applied = 0
        self.delegations: dict[str, Delegation] = {}
        self.levels: dict[tuple[str, str], AutonomyLevel] = {}
        self.authority = Authority(engine)

    def at(self, seq: int) -> Authority:
        """The decision-maker as of just before event `seq`."""
        moved = False
        while self.applied < len(self.changes) and self.changes[self.applied].seq < seq:
            self._apply(self.changes[self.applied])
            self.applied += 1
            moved = True
        if moved:
            self.authority = Authority(self.engine, list(self.delegations.values()),
                                       dict(self.levels))
        return self.authority

    def _apply(self, event: Event) -> None:
        p = event.payload or {}
        if event.kind == delegations.GRANTED and "id" in p:
            self.delegations[p["id"]] = Delegation(p["id"], p["from"], p["to"],
                                                   tuple(p["actions"]), p["until"], event.at)
        elif event.kind == delegations.REVOKED:
            self.delegations.pop(p.get("id", ""), None)
        elif "member" in p:
            self.levels[(p["member"], p["task_type"])] = p["to"]


def _read_circumstances(conn: Connection, ledger: Ledger) -> list[Event]:
    """Delegations granted and revoked, autonomy promoted and demoted, in ledger order."""
    found = [event for kind in _CIRCUMSTANCES for event in ledger.read(conn, kind=kind)]
    return sorted(found, key=lambda event: event.seq)


def _recorded_decisions(conn: Connection, since: str | None,
                        until: str | None) -> Iterator[Event]:
    query = select(events).where(events.c.kind == DECISION)
    if since is not None:
        query = query.where(events.c.at >= since)
    if until is not None:
        query = query.where(events.c.at < until)
    for row in conn.execute(query.order_by(events.c.seq).execution_options(yield_per=2000)):
        yield Event.from_row(row)


def _redecide(circumstances: _Circumstances, event: Event) -> Decision | str:
    """The candidate's decision on a recorded one, or why it is not replayed."""
    why = _not_by_policy(event.payload)
    if why is not None or event.payload is None:
        return why or "redacted"
    p = event.payload
    decision = circumstances.at(event.seq).decide(
        p["member"], p["action"], p["resource"], p.get("context") or {},
        task_type=p.get("task_type"), now=_moment(event.at))
    if any(reason.kind == "invalid" for reason in decision.reasons):
        return "no longer valid under the org in force"
    return decision


def _not_by_policy(payload: dict[str, Any] | None) -> str | None:
    """Why a recorded decision is not replayed (None when it is)."""
    if payload is None:
        return "redacted"
    kinds = [reason.get("kind") for reason in payload.get("reasons") or []]
    for kind, why in _NOT_BY_POLICY.items():
        if kind in kinds:
            return why
    if payload.get("action") == "budget.spend":
        return _NOT_BY_POLICY["budget"]
    return None


def _moment(at: str) -> datetime:
    return datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _compare(event: Event, after: Decision) -> PolicyChange | None:
    """The change between the recorded decision and the candidate's (None if none)."""
    p = event.payload or {}
    before_approvers = tuple(p.get("approvers") or ())
    same = p["outcome"] == after.outcome and (
        after.outcome != "escalate" or (before_approvers == after.approvers
                                        and p.get("quorum", 1) == after.quorum))
    if same:
        return None
    return PolicyChange(event.seq, event.at, p["member"], p["action"], p["resource"],
                        p.get("context") or {}, p["outcome"], after.outcome,
                        before_approvers, after.approvers,
                        tuple(f"{r['kind']}: {r['message']}" for r in p.get("reasons") or []),
                        tuple(f"{r.kind}: {r.message}" for r in after.reasons))
