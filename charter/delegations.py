"""Delegations: a member lends part of its authority to another, for a bounded time."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from charter import readmodel
from charter.clock import Clock
from charter.errors import Conflict, InvalidInput, NotFound
from charter.ledger import Event, Ledger, format_time
from charter.org import Org
from charter.store.schema import delegations

GRANTED = "delegation.granted"
REVOKED = "delegation.revoked"


@dataclass(frozen=True, slots=True)
class Delegation:
    """`to_member` may act with `from_member`'s authority for `actions` until `until`."""

    id: str
    from_member: str
    to_member: str
    actions: tuple[str, ...]
    until: str
    created_at: str
    revoked_at: str | None = None

    def covers(self, action: str, now: datetime) -> bool:
        """Live (not revoked, not expired at `now`) and for this action."""
        return (self.revoked_at is None and action in self.actions
                and format_time(now) < self.until)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "from": self.from_member, "to": self.to_member,
                "actions": list(self.actions), "until": self.until,
                "created_at": self.created_at, "revoked_at": self.revoked_at}


def delegate(conn: Connection, ledger: Ledger, clock: Clock, org: Org, *, from_member: str,
             to_member: str, actions: Sequence[str], until: datetime,
             actor: str) -> Delegation:
    """Grant a delegation (a ledger event)."""
    for member in (from_member, to_member):
        if member not in org.members:
            raise NotFound(f"no member {member!r}")
    if from_member == to_member:
        raise InvalidInput("a member cannot delegate to itself")
    unknown = [a for a in actions if a not in org.spec.actions]
    if not actions or unknown:
        raise InvalidInput(f"delegate at least one declared action; unknown: {unknown}")
    if until.tzinfo is None or until <= clock.now():
        raise InvalidInput("a delegation's `until` must be a timezone-aware time in the future")
    granted = Delegation(str(uuid.uuid4()), from_member, to_member,
                         tuple(sorted(set(actions))), format_time(until), "")
    payload = {"id": granted.id, "from": from_member, "to": to_member,
               "actions": list(granted.actions), "until": granted.until}
    event = readmodel.record(conn, ledger, kind=GRANTED, actor=actor,
                             subject=f"member:{to_member}", payload=payload)
    return replace(granted, created_at=event.at)


def revoke(conn: Connection, ledger: Ledger, delegation_id: str, *, actor: str) -> None:
    row = conn.execute(select(delegations).where(delegations.c.id == delegation_id)).first()
    if row is None:
        raise NotFound(f"no delegation {delegation_id}")
    if row.revoked_at is not None:
        raise Conflict(f"delegation {delegation_id} was already revoked")
    readmodel.record(conn, ledger, kind=REVOKED, actor=actor, subject=f"member:{row.to_member}",
           payload={"id": delegation_id})


def load_delegations(conn: Connection, now: datetime, *,
                     member: str | None = None) -> list[Delegation]:
    """Delegations not revoked and not yet expired at `now`, oldest first; with
    `member`, those it gave or received."""
    query = (select(delegations)
             .where(delegations.c.revoked_at.is_(None), delegations.c.until > format_time(now))
             .order_by(delegations.c.created_at, delegations.c.id))
    if member is not None:
        query = query.where((delegations.c.from_member == member)
                            | (delegations.c.to_member == member))
    return [_from_row(row) for row in conn.execute(query)]


def get(conn: Connection, delegation_id: str) -> Delegation:
    """One delegation, live or not; `NotFound` if there is none with this id."""
    row = conn.execute(select(delegations).where(delegations.c.id == delegation_id)).first()
    if row is None:
        raise NotFound(f"no delegation {delegation_id}")
    return _from_row(row)


def _from_row(row: Row[Any]) -> Delegation:
    return Delegation(row.id, row.from_member, row.to_member, tuple(json.loads(row.actions)),
                      row.until, row.created_at, row.revoked_at)


def project_granted(conn: Connection, event: Event) -> None:
    payload = event.payload or {}
    conn.execute(insert(delegations).values(
        id=payload["id"], from_member=payload["from"], to_member=payload["to"],
        actions=json.dumps(payload["actions"]), until=payload["until"], created_at=event.at))


def project_revoked(conn: Connection, event: Event) -> None:
    payload = event.payload or {}
    conn.execute(update(delegations).where(delegations.c.id == payload["id"])
                 .values(revoked_at=event.at))
