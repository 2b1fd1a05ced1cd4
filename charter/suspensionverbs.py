"""Kill-switch verbs of the `Charter` facade: suspend and resume members, freeze and
unfreeze actions. Each is one transaction; decisions see it at once in this process and
within `governance_refresh` seconds on other nodes."""

from __future__ import annotations

from collections.abc import Callable

from charter import suspensions
from charter.clock import Clock
from charter.ledger import Ledger
from charter.org import Org
from charter.store import Store
from charter.suspensions import Stop, Suspension


class SuspensionVerbs:
    """Mixed into `Charter`; expects its store, ledger and clock."""

    store: Store
    ledger: Ledger
    clock: Clock
    _require_org: Callable[[], Org]
    _keep_org_handles: Callable[[], None]

    def suspend_member(self, member: str, *, reason: str, by: str) -> Suspension:
        """Stop a member now: no new task, every request denied, its tasks moved on by
        their fallback, its leases released, the approvals it asked for withdrawn."""
        org = self._require_org()
        with self.store.transaction() as conn:
            done = suspensions.suspend(conn, self.ledger, self.clock, org, member,
                                       reason=reason, by=by)
        self._keep_org_handles()
        return done

    def resume_member(self, member: str, *, by: str) -> Stop:
        """Lift a suspension: the member is dispatched to and decided for again."""
        with self.store.transaction() as conn:
            lifted = suspensions.resume(conn, self.ledger, member, by=by)
        self._keep_org_handles()
        return lifted

    def freeze_action(self, action: str, *, reason: str, by: str) -> Stop:
        """Deny `action` to everyone (e.g. all payments) until `unfreeze_action`."""
        org = self._require_org()
        with self.store.transaction() as conn:
            frozen = suspensions.freeze(conn, self.ledger, org, action, reason=reason, by=by)
        self._keep_org_handles()
        return frozen

    def unfreeze_action(self, action: str, *, by: str) -> Stop:
        with self.store.transaction() as conn:
            lifted = suspensions.unfreeze(conn, self.ledger, action, by=by)
        self._keep_org_handles()
        return lifted

    def stops(self) -> tuple[list[Stop], list[Stop]]:
        """The suspensions and the freezes in force."""
        with self.store.reading() as conn:
            return suspensions.stops(conn)
