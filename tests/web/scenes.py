"""A populated Charter for dashboard tests: buyer-bot-1 with a Python engine whose
purchases over its limit escalate to james.liu."""

from __future__ import annotations

from pathlib import Path

from charter.system import Charter
from tests.engines.orgs import edit_org
from tests.engines.shop import order, work

BUYER = {"kind": "python", "target": "tests.engines.agents:buyer"}


def buying_org(system: Charter, workspace: Path) -> None:
    """Give buyer-bot-1 its engine and purchases a performer, and load that org."""
    system.load_org(edit_org(workspace, engines={"buyer-bot-1": BUYER},
                             performers={"purchase.create": "tests.engines.shop:purchase"}))


def escalated_purchases(system: Charter, shop_file: Path, *amounts: int) -> list[str]:
    """Purchase tasks run until each waits for approval; their ids, in order."""
    task_ids = [order(system, shop_file, "globex", amount) for amount in amounts]
    work(system, max_tasks=len(task_ids))
    return task_ids
