"""Lease verbs of the `Charter` facade: acquire, renew and release holds on resources,
each one transaction; who holds what; and whether a fencing token is stale."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import timedelta

from charter import leases
from charter.authority import Authority
from charter.clock import Clock
from charter.decisions import Decision
from charter.errors import InvalidInput
from charter.leases import MODES, Lease, LeaseHeld, Mode
from charter.ledger import Ledger
from charter.org import Org
from charter.requests import RequestInvalid, resource_name
from charter.store import Store, ids_starting
from charter.store.schema import leases as leases_table

LEASE_ACTION = "lease"
"""The Cedar action a member must be allowed on a resource to hold it."""
DEFAULT_TTL = timedelta(minutes=1)
"""How long a lease lasts when the caller does not say."""
MAX_TTL = timedelta(days=366)
"""The longest a lease may be taken or renewed for: a lease is a bounded hold."""
_FIRST_POLL, _LAST_POLL = 0.005, 0.05
"""Seconds between tries while waiting for a holder to go: short, then backing off."""
_CACHED_DECISIONS = 10_000
"""Decisions kept per authority snapshot before the cache starts over."""

LeaseDecisions = dict[tuple[str, str], Decision]
"""Decisions by (member, resource as written)."""


class LeaseVerbs:
    """Mixed into `Charter`; expects its store, ledger and clock, and the authority in
    force (GovernanceVerbs provides it)."""

    store: Store
    ledger: Ledger
    clock: Clock
    authority: Callable[[], Authority]
    _require_org: Callable[[], Org]
    _lease_decisions: tuple[Authority, LeaseDecisions] | None = None
    """Lease decisions per (member, resource) for one authority snapshot: a hot loop of
    acquires pays for Cedar once per snapshot, not once per call."""

    def acquire_lease(self, resource: str, member: str, *, mode: Mode = "exclusive",
                      ttl: timedelta | float = DEFAULT_TTL, wait: float = 0.0,
                      task_id: str | None = None) -> Lease:
        """Hold `resource` (e.g. `Customer::42`) for `ttl`, with a fencing token greater
        than any granted on it before.

        The member must be allowed the `lease` action on the resource (else
        `Forbidden`, with the decision's reasons). An exclusive lease excludes every
        other; shared leases coexist and keep out an exclusive one. When held, raises
        `Conflict` (`LeaseHeld`) naming the holders and when they expire — at once, or
        after waiting up to `wait` seconds for them to go. With `task_id`, the lease is
        released when that task fails or its own lease expires.
        """
        length = _duration(ttl, "ttl")
        if mode not in MODES:
            raise InvalidInput(f"a lease's mode is exclusive or shared, not {mode!r}")
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not (
                math.isfinite(wait) and wait >= 0):
            raise InvalidInput(f"wait is a number of seconds, 0 or more, not {wait!r}")
        decision = self._lease_decision(member, resource)
        policies = tuple(p for reason in decision.reasons for p in reason.policies)
        deadline = time.monotonic() + wait
        pause = _FIRST_POLL
        while True:
            try:
                with self.store.transaction() as conn:
                    return leases.acquire(conn, self.ledger, self.clock,
                                          resource=decision.resource, member=member,
                                          mode=mode, ttl=length, task_id=task_id,
                                          policies=policies)
            except LeaseHeld as held:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if wait > 0:
                        raise LeaseHeld(f"{held.message} (waited {wait:g}s)",
                                        details=held.details) from None
                    raise
                # The clock decides expiry; real sleeps only pace the retries.
                time.sleep(min(pause, remaining))
                pause = min(pause * 2, _LAST_POLL)

    def renew_lease(self, lease_id: str, member: str,
                    ttl: timedelta | float = DEFAULT_TTL) -> Lease:
        """Extend a live lease to `ttl` from now. Only its holder may, while the policy
        still allows it the resource; an expired lease cannot be renewed (`Conflict`)."""
        length = _duration(ttl, "ttl")
        with self.store.reading() as conn:
            current = leases.get(conn, lease_id)
        if current.member == member:  # a non-holder is refused inside, naming the holder
            self._lease_decision(member, current.resource)
        with self.store.transaction() as conn:
            return leases.renew(conn, self.ledger, self.clock, lease_id, member, length)

    def release_lease(self, lease_id: str, member: str) -> Lease:
        """End a lease (only its holder may: else `Forbidden`; an unknown id is
        `NotFound`). Its fencing token stays spent."""
        with self.store.transaction() as conn:
            return leases.release(conn, self.ledger, lease_id, member)

    def expire_leases(self) -> list[Lease]:
        """Record the expiry of every lease whose time has passed; returns them. Run it
        periodically (acquiring a resource also expires its lapsed holders)."""
        with self.store.transaction() as conn:
            return leases.expire(conn, self.ledger, self.clock)

    def lease_holders(self, resource: str) -> list[Lease]:
        """The live leases on `resource`, oldest first."""
        target = self._lease_resource(resource)
        with self.store.reading() as conn:
            return leases.holders(conn, self.clock, target)

    def leases(self, *, member: str | None = None,
               resource: str | None = None) -> list[Lease]:
        """Live leases, by resource, optionally of one member or on one resource."""
        target = None if resource is None else self._lease_resource(resource)
        with self.store.reading() as conn:
            return leases.listing(conn, self.clock, member=member, resource=target)

    def lease_page(self, *, after: tuple[str, int, str] | None = None, limit: int = 100,
                   member: str | None = None, resource: str | None = None) -> list[Lease]:
        """Live leases by resource, after the (resource, token, id) of the last one
        seen."""
        target = None if resource is None else self._lease_resource(resource)
        with self.store.reading() as conn:
            return leases.page(conn, self.clock, after=after, limit=limit, member=member,
                               resource=target)

    def lease(self, lease_id: str) -> Lease:
        """One held lease (`NotFound` once released or expired)."""
        with self.store.reading() as conn:
            return leases.get(conn, lease_id)

    def find_lease_ids(self, prefix: str) -> list[str]:
        """Ids of held leases starting with `prefix` (two at most: enough to tell whether
        a short id is unique)."""
        with self.store.reading() as conn:
            return ids_starting(conn, leases_table.c.id, prefix)

    def fenced(self, resource: str, token: int) -> bool:
        """True when `token` is older than the newest fencing token granted on
        `resource`: whoever presents it was superseded, and a downstream system must
        refuse its write."""
        if isinstance(token, bool) or not isinstance(token, int):
            raise InvalidInput(f"a fencing token is a whole number, not {token!r}")
        target = self._lease_resource(resource)
        with self.store.reading() as conn:
            return leases.fenced(conn, target, token)

    def _lease_decision(self, member: str, resource: str) -> Decision:
        """The allow for `member` to lease `resource` (its resource normalised to
        `Type::id`), from the cache for the authority in force; refusals raise."""
        if not isinstance(resource, str) or not resource.strip():
            raise InvalidInput(f"a lease names a resource such as Customer::42, not "
                               f"{resource!r}")
        if not isinstance(member, str):
            raise InvalidInput(f"a lease is held by a member id, not {member!r}")
        authority = self.authority()
        cached = self._lease_decisions
        if cached is None or cached[0] is not authority:
            cached = self._lease_decisions = (authority, {})
        decisions = cached[1]
        decision = decisions.get((member, resource))
        if decision is None:
            decision = authority.decide(member, LEASE_ACTION, resource, None,
                                        now=self.clock.now())
            # A delegation lapses at its own time, inside the snapshot: decide again.
            if all(reason.kind != "delegation" for reason in decision.reasons):
                if len(decisions) >= _CACHED_DECISIONS:
                    decisions.clear()
                decisions[(member, resource)] = decision
        if decision.outcome != "allow":
            raise decision.refusal(f"lease {decision.resource}")
        return decision

    def _lease_resource(self, resource: str) -> str:
        """`resource` as leases record it (`Type::id`), or `InvalidInput`."""
        if not isinstance(resource, str):
            raise InvalidInput(f"a resource is text such as Customer::42, not {resource!r}")
        try:
            return resource_name(self._require_org(), LEASE_ACTION, resource)
        except RequestInvalid as error:
            raise InvalidInput(f"not a resource that can be leased: {error}") from None


def _duration(value: timedelta | float, name: str) -> timedelta:
    if isinstance(value, timedelta):
        length = value
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
            value) and abs(value) <= MAX_TTL.total_seconds():
        length = timedelta(seconds=value)
    else:
        raise InvalidInput(f"{name} is a duration (a timedelta or seconds, at most "
                           f"{MAX_TTL.days} days), not {value!r}")
    if not timedelta(0) < length <= MAX_TTL:
        raise InvalidInput(f"{name} must be longer than zero and at most {MAX_TTL.days} "
                           f"days, not {length}")
    return length
