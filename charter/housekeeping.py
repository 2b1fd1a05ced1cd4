"""Housekeeping: the time-driven changes nobody asks for.

A lease that ran out (a crashed or hung holder) sends its task down the fallback
protocol; a task past its deadline fails; an approval past its SLA is denied or moves
one level up, and one past its expiry expires. These happen only when something runs
`sweep`: a worker between claims, and `charter serve` every `housekeeping_interval`
seconds. Several processes may sweep at once: each change is one transaction, and a
task or approval already moved is not moved again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from charter.approvals import Approval
from charter.errors import NoOrgLoaded
from charter.system import Charter
from charter.tasks import Task

log = logging.getLogger("charter.housekeeping")


@dataclass(frozen=True)
class Swept:
    """What one sweep changed."""

    tasks: tuple[Task, ...] = ()
    """Tasks re-routed (lease expired) or failed (deadline missed)."""
    approvals: tuple[Approval, ...] = ()
    """Approvals denied, escalated further or expired."""


def sweep(system: Charter) -> Swept:
    """Apply every time-driven change that is due now; nothing when no org is loaded."""
    try:
        changed = system.expire_tasks()
        moved = system.apply_approval_timeouts()
    except NoOrgLoaded:
        return Swept()
    for task in changed:
        log.info("task %s: %s", task.id, task.reason)
    for approval in moved:
        log.info("approval %s: %s", approval.id, approval.status)
    return Swept(tuple(changed), tuple(moved))


async def keep(system: Charter, interval: float) -> None:
    """Sweep every `interval` seconds until cancelled, off the event loop's thread. A
    failed sweep is logged and tried again at the next round."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(sweep, system)
        except Exception:  # the next round tries again; the server keeps serving
            log.exception("housekeeping failed; trying again in %ss", interval)
