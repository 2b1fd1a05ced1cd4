"""A task paused for approval: its attempt waits, keeping its assignee, until none of the
approvals it asked for is pending; then it goes back to the assignee, whose engine goes
on from what it saved (`charter.worker`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from charter import tasks, tracing
from charter.canonical import canonical_json, json_safe
from charter.errors import InvalidInput
from charter.ledger import Ledger
from charter.store.schema import approvals
from charter.tasks import Task


def await_approval(conn: Connection, ledger: Ledger, task_id: str, *, member: str,
                   fencing: int, approval_ids: list[str], resume: dict[str, Any]) -> Task:
    """Pause a running attempt until the approvals it asked for are settled; `resume` is
    what its engine needs to go on. The task keeps its assignee and has no lease while it
    waits; it comes back to the assignee when no approval of it is pending any more."""
    if not approval_ids:
        raise InvalidInput("a task awaits at least one approval")
    tasks.held(conn, task_id, member, fencing)
    waiting = ", ".join(approval_ids)
    tasks.record_event(conn, ledger, "task.awaiting_approval", member, task_id, {
        "fencing": fencing, "approvals": approval_ids,
        "set": {"state": "awaiting_approval", "lease_until": None,
                "approval_id": approval_ids[0], "resume": canonical_json(json_safe(resume)),
                "reason": f"waiting for approval {waiting}"}})
    settled = resume_if_settled(conn, ledger, task_id)
    return settled or tasks.get(conn, task_id)


def resume_if_settled(conn: Connection, ledger: Ledger, task_id: str) -> Task | None:
    """Give a task awaiting approval back to its assignee once none of its approvals is
    pending (approved, rejected or expired: its engine decides what follows)."""
    task = tasks.get(conn, task_id, lock=True)
    if task.state != "awaiting_approval":
        return None
    pending = conn.execute(select(approvals.c.id).where(
        approvals.c.task_id == task_id, approvals.c.status == "pending").limit(1)).first()
    if pending is not None:
        return None
    resumed = tasks.record_event(conn, ledger, "task.resumed", "charter", task_id, {
        "set": {"state": "assigned", "approval_id": None,
                "reason": f"its approvals are settled; back to {task.assignee}"}})
    tracing.record("charter.task.approval_wait",
                   parent=tracing.task_parent(conn, task_id, task.trace_id),
                   start_ns=tracing.nanoseconds(task.updated_at),
                   end_ns=tracing.nanoseconds(resumed.at), task_id=task_id,
                   task_type=task.type, member=task.assignee, attempt=task.attempts)
    return tasks.get(conn, task_id)
