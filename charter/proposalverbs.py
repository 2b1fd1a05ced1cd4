"""Proposal verbs of the `Charter` facade: propose, settle, and read proposals and their
resolutions. Each state change is one transaction."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from charter import proposals
from charter.authority import Authority
from charter.canonical import canonical_json
from charter.clock import Clock
from charter.errors import InvalidInput
from charter.ledger import Ledger
from charter.org import Org
from charter.proposals import Proposal, Resolution
from charter.store import Store, ids_starting
from charter.store.schema import proposals as proposals_table
from charter.store.schema import resolutions as resolutions_table

MAX_VALUE = 65_536
"""Characters of canonical JSON a proposed value may take."""
MAX_RATIONALE = 10_000


class ProposalVerbs:
    """Mixed into `Charter`; expects its store, ledger and clock."""

    store: Store
    ledger: Ledger
    clock: Clock
    authority: Callable[[], Authority]
    """The decision-maker in force (GovernanceVerbs provides it)."""

    def propose(self, member: str, subject: str, key: str, value: Any, *, task_type: str,
                confidence: float | None = None, rationale: str = "",
                context: dict[str, Any] | None = None) -> Proposal:
        """Put forward `value` for `key` of `subject` (e.g. `Sku::sku-9`, `price`) as a
        decision of `task_type`; returns the proposal as arbitrated (see
        `charter.proposals` for the rules).

        Proposing is governed: policy must permit `member` the task type's action on
        the subject (checked with `context`, the request context that action takes),
        as if it were to act. Its autonomy level is not applied: a proposal is not the
        action, which goes through `authorize` when the winner acts. Anything but an
        allow refuses with `Forbidden` (an escalation names who could approve); invalid
        input with `InvalidInput`; either way nothing is recorded."""
        authority = self.authority()
        org = authority.org
        _check_proposal(org, member, subject, key, value, task_type, confidence, rationale)
        decision = authority.decide(member, org.task_types[task_type].action, subject,
                                    context, task_type=task_type, now=self.clock.now(),
                                    autonomy="autonomous")
        if decision.outcome != "allow":
            raise decision.refusal(f"propose {task_type} on {decision.resource}",
                                   then="ask them to propose it")
        with self.store.transaction() as conn:
            made = proposals.propose(
                conn, self.ledger, self.clock, org, decision, key=key, value=value,
                confidence=None if confidence is None else float(confidence),
                rationale=rationale)
            return proposals.get(conn, made)

    def settle_proposals(self, resolution_id: str, winner_proposal_id: str, *,
                         by: str) -> Resolution:
        """Settle an escalated dispute: `by`, the manager its approval names (never one
        of the proposers), picks the winning proposal. The approval is the authority
        (it is voted and executed, once); no policy is consulted. Proposals backing the
        winner's value win; the others lose."""
        with self.store.transaction() as conn:
            return proposals.settle(conn, self.ledger, self.clock, resolution_id,
                                    winner_proposal_id, by=by)

    def proposal(self, proposal_id: str) -> Proposal:
        """A proposal, its status and its resolution (what its proposer learns)."""
        with self.store.reading() as conn:
            return proposals.get(conn, proposal_id)

    def proposals(self, *, subject: str | None = None, key: str | None = None,
                  member: str | None = None, status: str | None = None) -> list[Proposal]:
        """Proposals, oldest first; `subject` as recorded (`Type::id`)."""
        with self.store.reading() as conn:
            return proposals.listing(conn, subject=subject, key=key, member=member,
                                     status=status)

    def proposal_page(self, *, after: tuple[str, str] | None = None, limit: int = 100,
                      subject: str | None = None, key: str | None = None,
                      member: str | None = None, status: str | None = None) -> list[Proposal]:
        """Proposals oldest first, after the (created_at, id) of the last one seen;
        `subject` as recorded (`Type::id`)."""
        with self.store.reading() as conn:
            return proposals.page(conn, after=after, limit=limit, subject=subject, key=key,
                                  member=member, status=status)

    def resolution(self, resolution_id: str) -> Resolution:
        """How a dispute was arbitrated: rule, winner, losers, evidence, approval."""
        with self.store.reading() as conn:
            return proposals.get_resolution(conn, resolution_id)

    def find_proposal_ids(self, prefix: str) -> list[str]:
        """Ids of proposals starting with `prefix` (two at most: enough to tell whether
        a short id is unique)."""
        with self.store.reading() as conn:
            return ids_starting(conn, proposals_table.c.id, prefix)

    def find_resolution_ids(self, prefix: str) -> list[str]:
        """Ids of resolutions starting with `prefix` (two at most)."""
        with self.store.reading() as conn:
            return ids_starting(conn, resolutions_table.c.id, prefix)


def _check_proposal(org: Org, member: str, subject: str, key: str, value: Any,
                    task_type: str, confidence: float | None, rationale: str) -> None:
    """Refuse malformed input with what is wrong and how to fix it."""
    if member not in org.members:
        raise InvalidInput(f"no member {member!r} in org {org.id}")
    if task_type not in org.task_types:
        raise InvalidInput(f"unknown task type {task_type!r}: the org declares "
                           f"{', '.join(org.task_types)}")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 256:
        raise InvalidInput("a proposal needs a subject of 1 to 256 characters, written "
                           "Type::id (e.g. Sku::sku-9)")
    if not isinstance(key, str) or not key.strip() or len(key) > 256:
        raise InvalidInput("a proposal needs a key of 1 to 256 characters (e.g. price)")
    try:
        size = len(canonical_json(value))
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"the proposed value is not JSON: {error}") from None
    if size > MAX_VALUE:
        raise InvalidInput(f"the proposed value takes {size} characters as JSON; at most "
                           f"{MAX_VALUE}: propose a reference to it instead")
    if confidence is not None and (
            isinstance(confidence, bool) or not isinstance(confidence, int | float)
            or not math.isfinite(confidence) or not 0 <= confidence <= 1):
        raise InvalidInput(f"confidence is a number from 0 to 1, or None for no claim; "
                           f"got {confidence!r}")
    if not isinstance(rationale, str) or len(rationale) > MAX_RATIONALE:
        raise InvalidInput(f"a rationale is text of at most {MAX_RATIONALE} characters")

