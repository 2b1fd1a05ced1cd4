"""Performers for engine tests: each carried-out action is a line in a file, so a test
(or another process) can count how often it really happened."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from charter.engines import ActionCall
from charter.system import Charter
from charter.tasks import Task
from charter.worker import Worker, WorkerCounts


def purchase(call: ActionCall, task: Task) -> dict[str, object]:
    """Raise a purchase order: append it to the shop file the task names."""
    record = {"key": call.key, "task": task.id, "vendor": call.resource,
              "amount": call.context.get("amount")}
    with Path(task.payload["shop_file"]).open("a") as shop:
        shop.write(json.dumps(record) + "\n")
        shop.flush()
        os.fsync(shop.fileno())
    return {"order": f"PO-{call.key[:8]}", **record}


def orders(shop_file: Path) -> list[dict[str, object]]:
    if not shop_file.exists():
        return []
    return [json.loads(line) for line in shop_file.read_text().splitlines() if line]


def order(system: Charter, shop_file: Path, vendor: str = "globex", amount: int = 300,
          **payload: Any) -> str:
    """A purchase order task for buyer-bot-1, its orders going to `shop_file`."""
    task = system.submit_task("purchase_order", f"vendor:{vendor}", {
        "vendor": f"Vendor::{vendor}", "amount": amount, "shop_file": str(shop_file),
        **payload}, requester="james.liu")
    system.assign_task(task.id, "buyer-bot-1", actor="james.liu")
    return task.id


def work(system: Charter, *, max_tasks: int | None = None,
         member: str = "buyer-bot-1") -> WorkerCounts:
    """Run the member's worker in this process: for `max_tasks` claims, or until idle."""
    worker = Worker(system, member, poll_seconds=0.01)
    return asyncio.run(worker.run(max_tasks=max_tasks, until_idle=max_tasks is None))
