"""Leases: time-bounded exclusive or shared holds on named resources, with fencing tokens.

A lease is granted with the next fencing token of its resource (`lease_tokens` keeps the
last one granted, so tokens strictly increase across releases and expiries). An
exclusive lease excludes every other; shared leases coexist and keep out an exclusive
one. A holder whose `expires_at` has passed no longer counts: the command that finds it
records its expiry first. A downstream system that receives a write carrying a token
older than the newest granted refuses it (`fenced`), so a holder that lost its lease
cannot overwrite the work of the one that followed.

Every change is a ledger event (subject: the resource) applied by the projectors below,
which read nothing but the event and the tables, so a replay rebuilds `leases` and
`lease_tokens`. Lock order: the ledger head first, then the resource's token row, as
every other command does, so writers never deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Row, Select, bindparam, delete, insert, select, update

from charter import readmodel, tasks
from charter.clock import Clock
from charter.errors import Conflict, Forbidden, NotFound
from charter.ledger import Event, EventDraft, Ledger, format_time
from charter.store.dialect import Dialect
from charter.store.driverstatement import DriverStatement
from charter.store.schema import lease_tokens, leases

Mode = Literal["exclusive", "shared"]
MODES: tuple[Mode, ...] = ("exclusive", "shared")

ACQUIRED = "lease.acquired"
RENEWED = "lease.renewed"
RELEASED = "lease.released"
EXPIRED = "lease.expired"
SYSTEM_ACTOR = "charter"
"""Who records the expiry of a lease nobody released."""

# Built once: acquire and release run in hot loops, and building statements costs.
_HOLDERS = select(leases).where(leases.c.resource == bindparam("resource"))
_TOKEN_ROW = select(lease_tokens.c.token, lease_tokens.c.resource).where(
    lease_tokens.c.resource == bindparam("resource"))
_LEASE = select(leases).where(leases.c.id == bindparam("lease_id"))
_OF_TASK = select(leases).where(leases.c.task_id == bindparam("task_id")).order_by(
    leases.c.acquired_at, leases.c.id)
_OF_MEMBER = select(leases).where(leases.c.member == bindparam("member")).order_by(
    leases.c.acquired_at, leases.c.id)
_LAPSED = select(leases).where(leases.c.expires_at <= bindparam("now")).order_by(
    leases.c.expires_at, leases.c.id)
# Grants and releases are the hot path: their writes run on the driver.
_SET_TOKEN = DriverStatement(update(lease_tokens).where(
    lease_tokens.c.resource == bindparam("key")).values(token=bindparam("new_token")))
_FIRST_TOKEN = DriverStatement(insert(lease_tokens), ("resource", "token"))
_INSERT = DriverStatement(insert(leases), ("id", "resource", "member", "mode", "token",
                                           "task_id", "acquired_at", "expires_at"))
_DELETE = DriverStatement(delete(leases).where(leases.c.id == bindparam("lease_id")))
_EXTEND = update(leases).where(leases.c.id == bindparam("lease_id"))


@dataclass(frozen=True, slots=True)
class Lease:
    """A hold on `resource` by `member` until `expires_at`, granted with `token`."""

    id: str
    resource: str
    member: str
    mode: Mode
    token: int
    task_id: str | None
    acquired_at: str
    expires_at: str

    @classmethod
    def from_row(cls, row: Row[Any]) -> Lease:
        return cls(row.id, row.resource, row.member, row.mode, row.token, row.task_id,
                   row.acquired_at, row.expires_at)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "resource": self.resource, "member": self.member,
                "mode": self.mode, "token": self.token, "task_id": self.task_id,
                "acquired_at": self.acquired_at, "expires_at": self.expires_at}


class LeaseHeld(Conflict):
    """The resource is held by a lease this one cannot coexist with."""


def acquire(conn: Connection, ledger: Ledger, clock: Clock, *, resource: str, member: str,
            mode: Mode, ttl: timedelta, task_id: str | None = None,
            policies: Sequence[str] = ()) -> Lease:
    """Grant `member` a lease on `resource` with the resource's next fencing token, or
    raise `LeaseHeld` naming the holders in the way. Holders past their expiry are
    recorded as expired first. `policies` are the ids of the policies that permitted it
    (recorded with the grant)."""
    ledger.hold_head(conn)
    if task_id is not None:
        task = tasks.get(conn, task_id)
        if task.state not in tasks.OPEN_STATES:
            raise Conflict(f"task {task_id} is {task.state}: a lease is taken only for an "
                           "open task (its leases are released when it fails)")
    # One statement: the token row, locked, with the resource's holders (none when no
    # row comes back: nothing was ever granted on it).
    rows = conn.execute(_token_and_holders(ledger.store.dialect),
                        {"resource": resource}).all()
    now = clock.now()
    stamp = format_time(now)
    drafts: list[EventDraft] = []
    blocking = []
    for row in rows:
        if row.id is None:
            continue
        if row.expires_at <= stamp:
            drafts.append(_expired_draft(Lease.from_row(row)))
        elif mode == "exclusive" or row.mode == "exclusive":
            blocking.append(Lease.from_row(row))
    if blocking:
        raise _held(resource, mode, blocking)
    token = (rows[0].last_token if rows else 0) + 1
    lease_id = str(uuid.uuid4())
    expires_at = format_time(now + ttl)
    drafts.append(EventDraft(ACQUIRED, member, resource, {
        "id": lease_id, "resource": resource, "member": member, "mode": mode,
        "token": token, "task_id": task_id, "acquired_at": stamp, "expires_at": expires_at,
        "policies": list(policies)}))
    readmodel.record_drafts(conn, ledger, drafts)
    return Lease(lease_id, resource, member, mode, token, task_id, stamp, expires_at)


_BUILT: dict[tuple[str, str], Select[Any]] = {}
"""Statements that lock rows, built once per dialect."""


def _token_and_holders(dialect: Dialect) -> Select[Any]:
    built = _BUILT.get((dialect.name, "token_and_holders"))
    if built is None:
        # The lock sits in a subquery: PostgreSQL refuses FOR UPDATE on the nullable
        # side of an outer join, and only the token row needs it.
        granted = dialect.lock_for_update(_TOKEN_ROW).subquery("granted")
        built = _BUILT[dialect.name, "token_and_holders"] = select(
            granted.c.token.label("last_token"), leases).select_from(
            granted.outerjoin(leases, leases.c.resource == granted.c.resource))
    return built


def _locked(dialect: Dialect, name: str, query: Select[Any]) -> Select[Any]:
    """`query` (known as `name`), holding its rows until the transaction ends."""
    built = _BUILT.get((dialect.name, name))
    if built is None:
        built = _BUILT[dialect.name, name] = dialect.lock_for_update(query)
    return built


def renew(conn: Connection, ledger: Ledger, clock: Clock, lease_id: str, member: str,
          ttl: timedelta) -> Lease:
    """Extend a live lease to `ttl` from now; only its holder may, and an expired lease
    cannot be renewed (acquire the resource again)."""
    ledger.hold_head(conn)
    lease = _holder_lease(conn, ledger, lease_id, member, "renew")
    now = clock.now()
    if lease.expires_at <= format_time(now):
        raise Conflict(f"lease {lease_id} on {lease.resource} expired at {lease.expires_at}"
                       f" and cannot be renewed; acquire {lease.resource} again",
                       details=lease.to_json())
    expires_at = format_time(now + ttl)
    readmodel.record(conn, ledger, kind=RENEWED, actor=member, subject=lease.resource,
                     payload={"id": lease_id, "resource": lease.resource,
                              "token": lease.token, "expires_at": expires_at})
    return Lease(lease.id, lease.resource, lease.member, lease.mode, lease.token,
                 lease.task_id, lease.acquired_at, expires_at)


def release(conn: Connection, ledger: Ledger, lease_id: str, member: str,
            reason: str = "released by its holder") -> Lease:
    """End a lease; only its holder may. Its token stays spent."""
    ledger.hold_head(conn)
    lease = _holder_lease(conn, ledger, lease_id, member, "release")
    readmodel.record_draft(conn, ledger, _released_draft(lease, member, reason))
    return lease


def release_task_leases(conn: Connection, ledger: Ledger, clock: Clock, task_id: str,
                        reason: str) -> list[Lease]:
    """Release every live lease taken for task `task_id` (as events carrying `reason`),
    e.g. when the task fails or its own lease expires; returns the leases released.
    Leases of the task already past their expiry are recorded as expired instead."""
    ledger.hold_head(conn)
    rows = conn.execute(_locked(ledger.store.dialect, "of_task", _OF_TASK),
                        {"task_id": task_id}).all()
    return _release_rows(conn, ledger, clock, rows, reason)


def release_member_leases(conn: Connection, ledger: Ledger, clock: Clock, member: str,
                          reason: str) -> int:
    """Release every lease `member` holds (a suspended member holds nothing); returns
    how many were live."""
    ledger.hold_head(conn)
    rows = conn.execute(_locked(ledger.store.dialect, "of_member", _OF_MEMBER),
                        {"member": member}).all()
    return len(_release_rows(conn, ledger, clock, rows, reason))


def _release_rows(conn: Connection, ledger: Ledger, clock: Clock, rows: Any,
                  reason: str) -> list[Lease]:
    stamp = format_time(clock.now())
    released: list[Lease] = []
    drafts = []
    for lease in map(Lease.from_row, rows):
        if lease.expires_at <= stamp:
            drafts.append(_expired_draft(lease))
        else:
            drafts.append(_released_draft(lease, SYSTEM_ACTOR, reason))
            released.append(lease)
    readmodel.record_drafts(conn, ledger, drafts)
    return released


def expire(conn: Connection, ledger: Ledger, clock: Clock) -> list[Lease]:
    """Record the expiry of every lease whose time has passed; returns them."""
    ledger.hold_head(conn)
    rows = conn.execute(_locked(ledger.store.dialect, "lapsed", _LAPSED),
                        {"now": format_time(clock.now())}).all()
    lapsed = [Lease.from_row(row) for row in rows]
    readmodel.record_drafts(conn, ledger, [_expired_draft(lease) for lease in lapsed])
    return lapsed


def holders(conn: Connection, clock: Clock, resource: str) -> list[Lease]:
    """The live leases on `resource`, oldest first."""
    stamp = format_time(clock.now())
    found = [Lease.from_row(row) for row in conn.execute(_HOLDERS, {"resource": resource})
             if row.expires_at > stamp]
    return sorted(found, key=lambda lease: (lease.token, lease.id))


def listing(conn: Connection, clock: Clock, *, member: str | None = None,
            resource: str | None = None) -> list[Lease]:
    """Live leases, by resource then token, optionally of one member or resource."""
    query = select(leases).where(leases.c.expires_at > format_time(clock.now()))
    if member is not None:
        query = query.where(leases.c.member == member)
    if resource is not None:
        query = query.where(leases.c.resource == resource)
    query = query.order_by(leases.c.resource, leases.c.token, leases.c.id)
    return [Lease.from_row(row) for row in conn.execute(query)]


def page(conn: Connection, clock: Clock, *, after: tuple[str, int, str] | None, limit: int,
         member: str | None = None, resource: str | None = None) -> list[Lease]:
    """Live leases by resource, token and id, from just after `after` (that key of the
    last one seen): keyset pages, optionally of one member or resource."""
    query = select(leases).where(leases.c.expires_at > format_time(clock.now()))
    if after is not None:
        last_resource, last_token, last_id = after
        query = query.where(
            (leases.c.resource > last_resource)
            | ((leases.c.resource == last_resource) & (leases.c.token > last_token))
            | ((leases.c.resource == last_resource) & (leases.c.token == last_token)
               & (leases.c.id > last_id)))
    if member is not None:
        query = query.where(leases.c.member == member)
    if resource is not None:
        query = query.where(leases.c.resource == resource)
    query = query.order_by(leases.c.resource, leases.c.token, leases.c.id).limit(limit)
    return [Lease.from_row(row) for row in conn.execute(query)]


def get(conn: Connection, lease_id: str) -> Lease:
    row = conn.execute(_LEASE, {"lease_id": lease_id}).first()
    if row is None:
        raise NotFound(_missing(lease_id))
    return Lease.from_row(row)


def last_token(conn: Connection, resource: str) -> int:
    """The newest fencing token granted on `resource` (0 when none ever was)."""
    token = conn.execute(_TOKEN_ROW, {"resource": resource}).scalar()
    return 0 if token is None else int(token)


def fenced(conn: Connection, resource: str, token: int) -> bool:
    """True when `token` is older than the newest granted on `resource`: a write
    carrying it comes from a holder that has been superseded and must be refused."""
    return token < last_token(conn, resource)


def _holder_lease(conn: Connection, ledger: Ledger, lease_id: str, member: str,
                  verb: str) -> Lease:
    row = conn.execute(_locked(ledger.store.dialect, "lease", _LEASE),
                       {"lease_id": lease_id}).first()
    if row is None:
        raise NotFound(_missing(lease_id))
    lease = Lease.from_row(row)
    if lease.member != member:
        raise Forbidden(f"lease {lease_id} on {lease.resource} is held by {lease.member}; "
                        f"only its holder may {verb} it, not {member}")
    return lease


def _missing(lease_id: str) -> str:
    return (f"no live lease {lease_id}: it was never granted, or it was already released "
            "or expired (see `charter leases list`)")


def _held(resource: str, mode: Mode, blocking: list[Lease]) -> LeaseHeld:
    blocking.sort(key=lambda lease: (lease.expires_at, lease.token))
    named = "; ".join(f"{lease.member} ({lease.mode}, token {lease.token}, until "
                      f"{lease.expires_at})" for lease in blocking)
    return LeaseHeld(f"cannot take a{'n' if mode == 'exclusive' else ''} {mode} lease on "
                     f"{resource}: held by {named}; retry after {blocking[0].expires_at}, "
                     "or wait for it", details={
                         "resource": resource, "mode": mode,
                         "holders": [lease.to_json() for lease in blocking]})


def _expired_draft(lease: Lease) -> EventDraft:
    return EventDraft(EXPIRED, SYSTEM_ACTOR, lease.resource, {
        "id": lease.id, "resource": lease.resource, "member": lease.member,
        "token": lease.token, "expires_at": lease.expires_at})


def _released_draft(lease: Lease, actor: str, reason: str) -> EventDraft:
    return EventDraft(RELEASED, actor, lease.resource, {
        "id": lease.id, "resource": lease.resource, "member": lease.member,
        "token": lease.token, "reason": reason})


def project_acquired(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    # The token row exists after the first grant on a resource: one UPDATE then.
    if _SET_TOKEN.run(conn, {"key": p["resource"], "new_token": p["token"]}) == 0:
        _FIRST_TOKEN.run(conn, {"resource": p["resource"], "token": p["token"]})
    _INSERT.run(conn, {
        "id": p["id"], "resource": p["resource"], "member": p["member"], "mode": p["mode"],
        "token": p["token"], "task_id": p["task_id"], "acquired_at": p["acquired_at"],
        "expires_at": p["expires_at"]})


def project_renewed(conn: Connection, event: Event) -> None:
    p = event.payload or {}
    conn.execute(_EXTEND, {"lease_id": p["id"], "expires_at": p["expires_at"]})


def project_ended(conn: Connection, event: Event) -> None:
    """A release or an expiry: the lease is gone; its token stays spent."""
    _DELETE.run(conn, {"lease_id": (event.payload or {})["id"]})


PROJECTORS: dict[str, Callable[[Connection, Event], None]] = {
    ACQUIRED: project_acquired, RENEWED: project_renewed,
    RELEASED: project_ended, EXPIRED: project_ended,
}
"""What this concept's events do to the read tables."""
