"""How proposal events change the `proposals` and `resolutions` read tables (see
`charter.proposals` for what the events mean)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, insert, select, update

from charter.canonical import canonical_json
from charter.ledger import Event
from charter.proposals import PROPOSED, RESOLVED, SETTLED, Status
from charter.store.schema import proposals, resolutions


def _set_status(conn: Connection, ids: list[str], status: Status,
                resolution_id: str | None = None) -> None:
    if ids:
        values: dict[str, Any] = {"status": status}
        if resolution_id is not None:
            values["resolution_id"] = resolution_id
        conn.execute(update(proposals).where(proposals.c.id.in_(ids)).values(**values))


def _project_made(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    conn.execute(insert(proposals).values(
        id=p["id"], task_type=p["task_type"], subject=p["subject"], key=p["key"],
        value=canonical_json(p["value"]), member=p["member"], confidence=p["confidence"],
        rationale=p["rationale"], status=p["status"], resolution_id=p["resolution"],
        created_at=event.at))
    _set_status(conn, p["agrees"], "agreed")


def _project_resolved(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    conn.execute(insert(resolutions).values(
        id=p["id"], task_type=p["task_type"], subject=p["subject"], key=p["key"],
        rule=p["rule"], status=p["status"], winner=p["winner"],
        losers=canonical_json(p["losers"]), evidence=canonical_json(p["evidence"]),
        approval_id=p["approval_id"], at=event.at))
    if p["status"] == "escalated":
        _set_status(conn, p["parties"], "escalated", p["id"])
    else:
        _set_status(conn, p["winners"], "won", p["id"])
        _set_status(conn, p["losers"], "lost", p["id"])


def _project_settled(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    row = conn.execute(select(resolutions.c.evidence)
                       .where(resolutions.c.id == p["id"])).one()
    evidence = {**json.loads(row.evidence), "settled": {"by": p["by"], "at": event.at}}
    conn.execute(update(resolutions).where(resolutions.c.id == p["id"]).values(
        status="decided", winner=p["winner"], losers=canonical_json(p["losers"]),
        evidence=canonical_json(evidence)))
    _set_status(conn, p["winners"], "won")
    _set_status(conn, p["losers"], "lost")


PROJECTORS: dict[str, Callable[[Connection, Event], None]] = {
    PROPOSED: _project_made,
    RESOLVED: _project_resolved,
    SETTLED: _project_settled,
}
"""How proposal events change the `proposals` and `resolutions` read tables."""
