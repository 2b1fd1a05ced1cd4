"""How task events change the `tasks` read table (see `charter.tasks` for what the
events mean): a submission inserts the task's row; every other task event carries the
columns it sets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, insert, update

from charter.canonical import canonical_json
from charter.ledger import Event
from charter.store.driverstatement import DriverStatement
from charter.store.schema import tasks

_INSERT = DriverStatement(insert(tasks), [column.key for column in tasks.c])
_UPDATE = update(tasks).where(tasks.c.id == bindparam("task_id"))
_CHANGES: dict[tuple[str, ...], DriverStatement] = {}
"""`_UPDATE` setting each set of columns a task event has set so far."""


def project_submitted(conn: Connection, event: Event) -> None:
    _INSERT.run(conn, submitted_row(event))


def submitted_row(event: Event) -> dict[str, Any]:
    """The `tasks` row a submission starts."""
    p = event.payload or {}
    return {
        "id": p["task"], "type": p["type"], "subject": p["subject"],
        "payload": canonical_json(p["payload"]), "value": Decimal(p["value"]),
        "priority": p["priority"], "deadline": p["deadline"], "requester": event.actor,
        "state": "queued", "assignee": None, "fencing": 0, "attempts": 0,
        "lease_until": None, "fallback_step": 0, "fallback_used": 0, "excluded": "[]",
        "approval_id": None, "result": None, "reason": "submitted", "resume": None,
        "trace_id": (p.get("trace") or {}).get("trace_id"),
        "created_at": event.at, "updated_at": event.at}


def project_change(conn: Connection, event: Event) -> None:
    """Every other task event carries the columns it sets."""
    p = event.payload or {}
    changes = {name: value for name, value in (p.get("set") or {}).items()
               if name in tasks.c}
    if changes:
        changes["updated_at"] = event.at
        columns = tuple(changes)
        statement = _CHANGES.get(columns)
        if statement is None:  # the columns are text and integers, as DriverStatement asks
            statement = _CHANGES[columns] = DriverStatement(_UPDATE, columns)
        statement.run(conn, {**changes, "task_id": p["task"]})


TASK_EVENTS = ("task.assigned", "task.claimed", "task.heartbeat", "task.completed",
               "task.attempt_failed", "task.cancelled", "task.lease_expired",
               "task.deadline_missed", "task.fallback.retry", "task.fallback.reassign",
               "task.fallback.person", "task.fallback.give_up", "task.awaiting_approval",
               "task.resumed", "task.released", "task.requeued")
PROJECTORS = {"task.submitted": project_submitted,
              **dict.fromkeys(TASK_EVENTS, project_change)}
