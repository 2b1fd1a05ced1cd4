"""Fallback protocols: what happens to a task when its holder fails it.

A task type's protocol is an ordered list of steps, e.g. `[retry: 1, reassign: 2,
escalate: supervisor]`. On each failure (or lease expiry) the next unused step applies:
`retry` gives the same member another attempt, `reassign` re-queues the task excluding
every member that failed it, `escalate` puts it in a person's queue. When the protocol
is used up the task goes to the nearest person above the last holder, so a task never
disappears silently; only when nobody can take it does it end as failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from charter.org import Org
from charter.types import FallbackStep

Move = Literal["retry", "reassign", "person", "give_up"]


@dataclass(frozen=True)
class FallbackMove:
    """The next step for a failed task, and the protocol position after it."""

    move: Move
    step: int
    used: int
    person: str | None = None
    reason: str = ""


def nearest_person(org: Org, member: str | None) -> str | None:
    """The member itself if a person, else the first person up its chain of command."""
    if member is None or member not in org.members:
        return None
    if org.members[member].kind == "human" and org.members[member].status == "active":
        return member
    for manager in org.chain_of_command(member):
        spec = org.members[manager]
        if spec.kind == "human" and spec.status == "active":
            return manager
    return None


def next_move(org: Org, protocol: tuple[FallbackStep, ...], step: int, used: int,
              failed_member: str | None) -> FallbackMove:
    """Apply the first step of `protocol` from position (`step`, `used`) that has uses
    left; past the end, the nearest person above `failed_member`."""
    while step < len(protocol):
        current = protocol[step]
        if current.action == "escalate":
            target = (nearest_person(org, _manager(org, failed_member))
                      if current.to == "supervisor" else current.to)
            if target is not None and target != failed_member:
                return FallbackMove("person", len(protocol), 0, target,
                                    f"escalated to {target} ({current.to})")
        elif used < current.count:
            return FallbackMove(current.action, step, used + 1, None,
                                f"{current.action} {used + 1} of {current.count}")
        step, used = step + 1, 0
    person = nearest_person(org, _manager(org, failed_member))
    if person is not None and person != failed_member:
        return FallbackMove("person", step, 0, person,
                            f"fallback protocol used up: queued for {person}")
    return FallbackMove("give_up", step, 0, None,
                        "fallback protocol used up and no person above the last holder")


def _manager(org: Org, member: str | None) -> str | None:
    if member is None or member not in org.members:
        return None
    return org.members[member].reports_to
