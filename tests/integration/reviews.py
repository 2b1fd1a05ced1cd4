"""Building a member's verified track record through the real task verbs."""

from __future__ import annotations

from datetime import timedelta

from charter import ManualClock
from charter.system import Charter


def review_work(system: Charter, member: str, verdicts: list[bool], *, task_type: str,
                subject: str, reviewer: str, clock: ManualClock | None = None) -> None:
    """One task of `task_type` on `subject` per verdict: assigned to `member` by
    `reviewer`, claimed and completed (a self-reported success), then verified by
    `reviewer` with the verdict. With `clock`, a second passes after each task."""
    for success in verdicts:
        task = system.submit_task(task_type, subject, requester=reviewer)
        system.assign_task(task.id, member, actor=reviewer)
        claim = system.claim_next(member)
        assert claim is not None
        system.complete_task(task.id, member=member, fencing=claim.fencing)
        system.record_outcome(task.id, success=success, reported_by=reviewer,
                              verified=True)
        if clock is not None:
            clock.advance(timedelta(seconds=1))
