"""Arbitration rules: how disagreeing proposals on one subject and key are weighed.

`authority`: rank = how many managers the proposer has; fewer wins; equal ranks
escalate. `track_record`: score = confidence (None counts as 0.5) times the proposer's
calibrated success on the task type, the posterior mean (s + 1) / (n + 2) of its
verified outcomes (the latest verdict per task) under a Beta(1, 1) prior; the higher
score wins; equal scores (to 9 decimals) escalate. Each value counts its best backer
(the earliest among equals). A rule answers a `Verdict`: the winning proposal, or None
to escalate, with the evidence it weighed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from charter.org import Org
from charter.store.schema import outcomes

if TYPE_CHECKING:
    from charter.proposals import Proposal


@dataclass(frozen=True)
class Verdict:
    """A rule's answer: the winning proposal, or None to escalate; and its evidence."""

    winner: str | None
    evidence: dict[str, Any]


def weigh_authority(org: Org, parties: list[Proposal]) -> Verdict:
    """Higher in the chain of command wins; equal ranks escalate."""
    ranks = {p.member: len(org.chain_of_command(p.member)) for p in parties}
    return verdict("authority", parties, lambda p: -ranks[p.member],
                    lambda p: {"rank": ranks[p.member]})


def weigh_track_record(record: dict[str, tuple[int, int]],
                       parties: list[Proposal]) -> Verdict:
    """Confidence weighted by calibrated success; the higher score wins, ties escalate.
    `record` holds each member's (verified outcomes, successes) on the task type."""
    def terms(p: Proposal) -> dict[str, Any]:
        n, successes = record.get(p.member, (0, 0))
        calibrated = (successes + 1) / (n + 2)
        weight = 0.5 if p.confidence is None else p.confidence
        return {"confidence": p.confidence, "verified": n, "successes": successes,
                "calibrated": round(calibrated, 9), "score": round(weight * calibrated, 9)}

    return verdict("track_record", parties, lambda p: terms(p)["score"], terms)


def verdict(rule: str, parties: list[Proposal], score: Callable[[Proposal], float],
             terms: Callable[[Proposal], dict[str, Any]]) -> Verdict:
    """Each value counts its best backer's score (the earliest on equal scores); the
    best value wins unless another value scores the same."""
    best: dict[str, Proposal] = {}
    for p in parties:
        if p.value_json not in best or score(p) > score(best[p.value_json]):
            best[p.value_json] = p
    ranked = sorted(best.values(), key=score, reverse=True)
    tie = len(ranked) > 1 and score(ranked[0]) == score(ranked[1])
    evidence = {"rule": rule, "tie": tie,
                "parties": [{**party(p), **terms(p)} for p in parties]}
    return Verdict(None if tie else ranked[0].id, evidence)


def records(conn: Connection, task_type: str, members: Iterable[str]
            ) -> dict[str, tuple[int, int]]:
    """Each member's verified outcomes and successes on `task_type`, counting the latest
    verdict per task."""
    latest: dict[tuple[str, str], bool] = {}
    query = select(outcomes.c.member, outcomes.c.task_id, outcomes.c.success).where(
        outcomes.c.task_type == task_type, outcomes.c.verified.is_(True),
        outcomes.c.member.in_(sorted(set(members)))).order_by(outcomes.c.at, outcomes.c.id)
    for row in conn.execute(query):
        latest[(row.member, row.task_id)] = bool(row.success)
    counts: dict[str, tuple[int, int]] = {}
    for (member, _task), success in latest.items():
        n, wins = counts.get(member, (0, 0))
        counts[member] = (n + 1, wins + success)
    return counts


def party(p: Proposal) -> dict[str, Any]:
    return {"proposal": p.id, "member": p.member, "value": p.value}
