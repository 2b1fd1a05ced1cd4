"""The hand-off packet: what the next holder of a task is given when it moves.

When a task is retried, reassigned or escalated to a person's queue, whoever takes it
next gets one structure: the task, every earlier attempt (who, when, how it ended and
why, and the outcomes recorded for it), the approvals asked for the task so far, and the
memories kept about its subject — those the holder may read under the policies
(`memory.read` on the subject); when it may not, the packet says so instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from charter import approvals, memory, outcomes
from charter.approvals import Approval
from charter.authority import Authority
from charter.errors import InvalidInput
from charter.ledger import Event, Ledger
from charter.memory import Memory
from charter.outcomes import Outcome
from charter.tasks import Task

MEMORIES = 20
"""Memories of the subject a packet carries (the latest first)."""

_ENDINGS = {
    "task.completed": "completed",
    "task.attempt_failed": "failed",
    "task.lease_expired": "lease expired",
    "task.cancelled": "cancelled",
    "task.awaiting_approval": "paused for approval",
    "task.released": "released unfinished",
}


@dataclass(frozen=True)
class Attempt:
    """One claim of the task and how it ended."""

    number: int
    member: str
    fencing: int
    started_at: str
    ended_at: str | None = None
    ended: str = "running"
    """running, completed, failed, lease expired, cancelled, paused for approval or
    released unfinished."""
    error: str | None = None
    """What the holder reported when it failed (or why the attempt ended)."""
    next_step: str | None = None
    """The fallback step taken after it, with its reason."""
    outcomes: tuple[Outcome, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "member": self.member, "fencing": self.fencing,
                "started_at": self.started_at, "ended_at": self.ended_at,
                "ended": self.ended, "error": self.error, "next_step": self.next_step,
                "outcomes": [_outcome_json(o) for o in self.outcomes]}


@dataclass(frozen=True)
class HandoffPacket:
    """Everything the next holder of a task needs to pick it up."""

    task: Task
    holder: str | None
    attempts: tuple[Attempt, ...]
    approvals: tuple[Approval, ...]
    memories: tuple[Memory, ...] = ()
    memories_withheld: str | None = None
    """Why the subject's memories are not in the packet, when they are not."""
    moves: tuple[str, ...] = ()
    """Each fallback step the task went through, with its reason, in order."""

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task.to_json(), "holder": self.holder,
                "attempts": [a.to_json() for a in self.attempts],
                "approvals": [a.to_json() for a in self.approvals],
                "memories": [m.to_json() for m in self.memories],
                "memories_withheld": self.memories_withheld, "moves": list(self.moves)}


def build_packet(conn: Connection, ledger: Ledger, authority: Authority, task: Task,
                 holder: str | None, *, now: datetime,
                 memory_limit: int = MEMORIES) -> HandoffPacket:
    """The packet for `holder` (the task's assignee when None) as the task stands."""
    holder = holder if holder is not None else task.assignee
    recorded = outcomes.listing(conn, task_id=task.id)
    attempts, moves = _attempts(ledger.read(conn, subject=f"task:{task.id}"), recorded)
    found, withheld = _memories(conn, authority, task, holder, now, memory_limit)
    return HandoffPacket(task, holder, attempts,
                         tuple(approvals.listing(conn, task_id=task.id)), found, withheld,
                         moves)


def _attempts(history: Iterable[Event], recorded: list[Outcome]
              ) -> tuple[tuple[Attempt, ...], tuple[str, ...]]:
    attempts: list[dict[str, Any]] = []
    moves: list[str] = []
    for event in history:
        payload = event.payload or {}
        if event.kind == "task.claimed":
            attempts.append({"number": len(attempts) + 1, "member": payload["member"],
                             "fencing": payload["fencing"], "started_at": event.at})
        elif event.kind in _ENDINGS and attempts and "ended_at" not in attempts[-1]:
            attempts[-1].update(ended_at=event.at, ended=_ENDINGS[event.kind],
                                error=_why(event))
        elif event.kind.startswith("task.fallback."):
            reason = (payload.get("set") or {}).get("reason") or event.kind
            moves.append(reason)
            if attempts and attempts[-1].get("next_step") is None:
                attempts[-1]["next_step"] = reason
    # An outcome belongs to its member's latest attempt that began before it was recorded
    # (outcomes may arrive long after the attempt ended).
    owned: dict[int, list[Outcome]] = {}
    for outcome in recorded:
        owners = [a["number"] for a in attempts
                  if a["member"] == outcome.member and a["started_at"] <= outcome.at]
        if owners:
            owned.setdefault(owners[-1], []).append(outcome)
    built = tuple(Attempt(**a, outcomes=tuple(owned.get(a["number"], ())))
                  for a in attempts)
    return built, tuple(moves)


def _why(event: Event) -> str | None:
    payload = event.payload or {}
    if event.kind == "task.attempt_failed":
        return str(payload.get("reason") or "")
    if event.kind == "task.lease_expired":
        return "the lease expired without a heartbeat"
    if event.kind == "task.cancelled":
        return str(payload.get("reason") or "")
    return None


def _memories(conn: Connection, authority: Authority, task: Task, holder: str | None,
              now: datetime, limit: int) -> tuple[tuple[Memory, ...], str | None]:
    org = authority.org
    if holder is None:
        return (), "nobody holds the task yet"
    if "memory.read" not in org.spec.actions:
        return (), "the org declares no memory.read action"
    try:
        subject = memory.canonical_subject(org, task.subject)
    except InvalidInput as error:
        return (), (f"the subject {task.subject} is not a resource memory is kept on: "
                    f"{error.message}")
    decision = authority.decide(holder, "memory.read", subject, {}, now=now)
    if decision.outcome != "allow":
        return (), (f"{holder} may not read memory about {subject}: "
                    + "; ".join(reason.message for reason in decision.reasons))
    return tuple(memory.subject_memories(conn, subject, reader=holder, limit=limit)), None


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {**outcome.__dict__, "cost": None if outcome.cost is None else str(outcome.cost)}
