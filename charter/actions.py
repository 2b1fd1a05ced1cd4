"""Actions performed: what members did in the world after Charter allowed it.

Each is an `action.performed` ledger event with an idempotency key (one action per key,
ever), so an engine that runs again after a crash or a pause finds what it already did
instead of doing it twice.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select

from charter import readmodel
from charter.canonical import canonical_json, json_safe
from charter.ledger import Event, Ledger
from charter.store.schema import actions

PERFORMED = "action.performed"

_BY_KEY = select(actions).where(actions.c.key == bindparam("key"))


@dataclass(frozen=True)
class PerformedAction:
    id: str
    key: str
    task_id: str | None
    member: str
    action: str
    resource: str
    context: dict[str, Any]
    approval_id: str | None
    output: Any
    at: str

    @classmethod
    def from_row(cls, row: Row[Any]) -> PerformedAction:
        return cls(row.id, row.key, row.task_id, row.member, row.action, row.resource,
                   json.loads(row.context), row.approval_id,
                   None if row.output is None else json.loads(row.output), row.at)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def record(conn: Connection, ledger: Ledger, *, key: str, task_id: str | None, member: str,
           action: str, resource: str, context: dict[str, Any], approval_id: str | None,
           output: Any) -> PerformedAction:
    """Record an action as performed (its key must be new)."""
    readmodel.record(conn, ledger, kind=PERFORMED, actor=member, subject=resource, payload={
        "id": str(uuid.uuid4()), "key": key, "task": task_id, "action": action,
        "context": context, "approval_id": approval_id, "output": json_safe(output)})
    found = find(conn, key)
    assert found is not None
    return found


def find(conn: Connection, key: str) -> PerformedAction | None:
    row = conn.execute(_BY_KEY, {"key": key}).first()
    return None if row is None else PerformedAction.from_row(row)


def listing(conn: Connection, *, task_id: str | None = None, member: str | None = None,
            limit: int = 1000) -> list[PerformedAction]:
    query = select(actions).order_by(actions.c.at, actions.c.id)
    if task_id is not None:
        query = query.where(actions.c.task_id == task_id)
    if member is not None:
        query = query.where(actions.c.member == member)
    return [PerformedAction.from_row(row) for row in conn.execute(query.limit(limit))]


def project_performed(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    conn.execute(insert(actions), {
        "id": p["id"], "key": p["key"], "task_id": p["task"], "member": event.actor,
        "action": p["action"], "resource": event.subject,
        "context": canonical_json(p["context"]), "approval_id": p["approval_id"],
        "output": canonical_json(p["output"]), "at": event.at})


PROJECTORS = {PERFORMED: project_performed}
