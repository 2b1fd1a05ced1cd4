"""The buyers of the crash run and the shop they order from.

`buyer` is a Python engine: it reserves the order's amount on its member's budget
envelope, raises the order through the action gate, then commits the spend once the
order is placed (or releases it). `purchase` is the action's performer: the shop keeps
one order per idempotency key, as a real supplier's API would, and logs every call it
receives, so a test can tell how often an order was asked for from how often it was
placed.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from charter.engines import ActionCall, EngineResult, RunContext
from charter.handoff import HandoffPacket
from charter.tasks import Task

HOLD_SPEND = timedelta(seconds=30)
"""How long a reservation outlives a worker killed before it could settle it."""


async def buyer(task: Task, handoff: HandoffPacket | None,
                context: RunContext) -> EngineResult:
    """Reserve, order, then commit the spend (or give it back)."""
    system = context.gate.system
    member = context.member.id
    placed = system.performed_actions(task_id=task.id)
    if placed:  # an earlier attempt ordered, and died before it finished the task
        return EngineResult(outputs=placed[0].output)
    amount = task.payload["amount"]
    spend = system.request_spend(member, amount, f"purchase order {task.payload['n']} "
                                 f"(task {task.id})", ttl=HOLD_SPEND)
    if spend.reservation is None:
        because = "; ".join(reason.message for reason in spend.decision.reasons)
        return EngineResult(success=False, reason=f"over budget: {because}")
    reservation = spend.reservation.id
    result = await context.act("purchase.create", task.payload["vendor"], {"amount": amount})
    # "already done" means an attempt that lost its lease placed the order in the
    # meantime: that attempt's spend is its own, so this one's is given back.
    if result.status == "performed" and "already done" not in result.message:
        system.commit_spend(reservation, amount, actor=member)
    else:
        system.release_spend(reservation, actor=member, reason=f"not ordered: {result.status}")
    return EngineResult(success=result.status == "performed", outputs=result.output,
                        reason=result.message, actions=(result,))


def purchase(call: ActionCall, task: Task) -> dict[str, Any]:
    """Place the order once per key in the shop folder the task names."""
    shop = Path(task.payload["shop"])
    # `call.key` names the call within its task; across tasks the same order (vendor and
    # amount) has the same one, so the key the shop dedupes on is the task's and the
    # call's, as Charter records it.
    key = f"{task.id}:{call.key}"
    record = {"key": key, "task": task.id, "n": task.payload["n"],
              "vendor": call.resource, "amount": call.context.get("amount"),
              "pid": os.getpid()}
    line = (json.dumps(record) + "\n").encode()
    with (shop / "calls.jsonl").open("ab") as calls:  # one small append: not interleaved
        calls.write(line)
    # Written aside, then linked into place: the link is atomic and refuses an existing
    # name, so a kill leaves either no order or a whole one, never a second.
    order = shop / "orders" / f"{key}.json"
    draft = shop / "drafts" / f"{key}.{uuid.uuid4().hex}"
    draft.write_bytes(line)  # a killed process loses no written page: no fsync needed
    try:
        os.link(draft, order)
    except FileExistsError:  # asked again for an order it already holds: not placed twice
        return dict(json.loads(order.read_text()), repeated=True)
    finally:
        draft.unlink()
    return record


def orders(shop: Path) -> list[dict[str, Any]]:
    """The orders the shop holds, one per key."""
    return [json.loads(path.read_text()) for path in sorted((shop / "orders").glob("*.json"))]


def calls(shop: Path) -> list[dict[str, Any]]:
    """Every call the shop received, repeats included."""
    path = shop / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
