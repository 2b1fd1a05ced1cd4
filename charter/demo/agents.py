"""The simulated agents: the Python engines the example org names.

Each engine does its task the way a real agent would under Charter: it draws how well
it really did from the demo's hidden truth (`charter.demo.world`), asks Charter for the
money it is about to spend (its budget envelope; over budget, the owner is asked for an
override and the attempt fails), then acts through the action gate — allowed, the
action is done and recorded; denied, it reports why; escalated, the task waits for a
person's approval and the engine goes on from where it paused once it is settled. A
wrong result it notices is reported as a failure; one it does not notice is reported
as a success (a reviewer may find it out later).

The pricing agent also puts its price forward as a proposal, so that a person proposing
another price for the same product starts a dispute that Charter arbitrates.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from charter.budgets import envelope_for
from charter.demo.world import Attempt, World, current_world, reference
from charter.dispatch import action_context
from charter.engines import ActionResult, EngineResult, RunContext
from charter.errors import CharterError
from charter.handoff import HandoffPacket
from charter.system import Charter
from charter.tasks import Task

MONEY_ACTIONS = frozenset({"purchase.create", "refund.issue", "payment.release"})
"""Actions whose `amount` is money spent from the doer's budget envelope."""
HOLD_SPEND = timedelta(days=8)
"""How long spend stays reserved for an action waiting for approval (approvals expire
after 7 days)."""


class Refusal(str):
    """Why spend was refused (over budget)."""


NOTICED = {
    "purchase_order": "the quote does not match the catalogue price; not ordering",
    "invoice_approval": "three-way match failed: the receipt is missing",
    "payment_release": "bank details changed since the invoice; not paying",
    "vendor_onboarding": "the registration number does not check out",
    "refund": "the order is outside the returns policy",
    "ticket_triage": "could not classify the ticket",
    "ticket_resolution": "could not reproduce the customer's problem",
    "price_change": "not enough competitor data for this product",
}


async def invoice_clerk(task: Task, handoff: HandoffPacket | None,
                        context: RunContext) -> EngineResult:
    """Match a supplier invoice to its order and receipt, then approve it."""
    return await _work(task, context)


async def payments(task: Task, handoff: HandoffPacket | None,
                   context: RunContext) -> EngineResult:
    """Release a supplier payment."""
    return await _work(task, context)


async def buyer(task: Task, handoff: HandoffPacket | None, context: RunContext) -> EngineResult:
    """Raise a purchase order."""
    return await _work(task, context)


async def vendor_onboarding(task: Task, handoff: HandoffPacket | None,
                            context: RunContext) -> EngineResult:
    """Check a new supplier and onboard it."""
    return await _work(task, context)


async def triage(task: Task, handoff: HandoffPacket | None,
                 context: RunContext) -> EngineResult:
    """Classify, prioritise and route a customer ticket."""
    return await _work(task, context)


async def support(task: Task, handoff: HandoffPacket | None,
                  context: RunContext) -> EngineResult:
    """Answer the customer and close the ticket."""
    return await _work(task, context)


async def support_v2(task: Task, handoff: HandoffPacket | None,
                     context: RunContext) -> EngineResult:
    """The support agent's newer engine (the demo swaps it in mid-month)."""
    return await _work(task, context)


async def refunds(task: Task, handoff: HandoffPacket | None,
                  context: RunContext) -> EngineResult:
    """Decide and issue a customer refund."""
    return await _work(task, context)


async def pricing(task: Task, handoff: HandoffPacket | None,
                  context: RunContext) -> EngineResult:
    """Propose a new price for a product, then make the change."""
    return await _work(task, context)


async def _work(task: Task, context: RunContext) -> EngineResult:
    world = current_world()
    system = context.gate.system
    member = context.member.id
    if context.settled:  # back from approval: the approved call was just performed
        saved: dict[str, Any] = context.resume or {}
        return _finish(system, world, member, task, context.settled[0],
                       saved.get("reservation"), bool(saved.get("good", True)), Decimal(0))
    engine = context.member.engine
    target = getattr(engine, "target", "") if engine is not None else ""
    attempt = world.agent_attempt(member, target, task, system.clock.now())
    cost = _money(attempt.cost)
    action = context.org.task_types[task.type].action
    if action not in MONEY_ACTIONS and _named_in_envelope(system, member):
        # Its model use is paid from its envelope: no budget, no run.
        held = _spend(system, world, member, cost, f"model use for task {task.id}")
        if isinstance(held, Refusal):
            return EngineResult(success=False, reason=str(held))
        if held is not None:
            system.commit_spend(held, cost, actor=member)
    world.spent(task.id, attempt.cost)
    if not attempt.good and attempt.noticed:
        world.tally.noticed_failures += 1
        return EngineResult(success=False, reason=NOTICED.get(task.type, "it went wrong"),
                            cost=cost, outputs=_outputs(attempt))
    call = action_context(context.org, task)
    if task.type == "price_change":
        call = {"change_percent": _price_change(world, task, attempt)}
        _propose(system, member, task, call)
    reservation = None
    if action in MONEY_ACTIONS:
        held = _spend(system, world, member, call.get("amount", 0),
                      f"{action} for task {task.id} ({reference(task)})")
        if isinstance(held, Refusal):
            return EngineResult(success=False, reason=str(held), cost=cost)
        reservation = held
    result = await context.act(action, task.subject, call)
    if result.waiting:
        world.paused(task.id, attempt.good)
        return EngineResult(actions=(result,), cost=cost, outputs=_outputs(attempt),
                            resume={"reservation": reservation, "good": attempt.good})
    return _finish(system, world, member, task, result, reservation, attempt.good, cost)


def _finish(system: Charter, world: World, member: str, task: Task, result: ActionResult,
            reservation: str | None, good: bool, cost: Decimal) -> EngineResult:
    """Settle the spend held for the action (commit it if the action was done, else let
    it go) and report how the attempt went."""
    if result.status == "performed":
        if reservation is not None:
            amount = result.call.context.get("amount", 0)
            system.commit_spend(reservation, amount, actor=member)
        world.finished(task, member, good, system.clock.now(), agent=True)
        return EngineResult(success=True, cost=cost, actions=(result,),
                            outputs={"done": result.message, "ref": reference(task)})
    if reservation is not None and system.reservation(reservation).status == "reserved":
        system.release_spend(reservation, actor=member, reason=f"not done: {result.status}")
    return EngineResult(success=False, reason=result.message, cost=cost, actions=(result,))


def _spend(system: Charter, world: World, member: str, amount: Any,
           purpose: str) -> str | Refusal | None:
    """Reserve `amount` on the member's envelope: the reservation id; None when it spends
    from no envelope; over budget, why (the owner was asked for an override)."""
    if envelope_for(system.org, member) is None or not amount:
        return None
    asked = system.request_spend(member, _money(amount), purpose, ttl=HOLD_SPEND)
    if asked.reservation is not None:
        return asked.reservation.id
    world.tally.refused_spend += 1
    if asked.decision.approval_id is not None:
        world.tally.over_budget.append(asked.decision.approval_id)
    because = "; ".join(reason.message for reason in asked.decision.reasons)
    return Refusal(f"over budget: {because}")


def _named_in_envelope(system: Charter, member: str) -> bool:
    """Whether an envelope names the member among its spenders: an agent whose work
    spends no money then pays its model use from it (the LLM clerk's inference budget)."""
    return any(member in budget.members for budget in system.org.budgets.values())


def _price_change(world: World, task: Task, attempt: Attempt) -> int:
    sku = task.subject
    best = world.best_change(sku)
    if attempt.good:
        return best
    miss = 3 + int(world.chance("price-miss", reference(task), task.attempts) * 5)
    return max(-10, min(10, best + (miss if best <= 0 else -miss)))


def _propose(system: Charter, member: str, task: Task, call: dict[str, Any]) -> None:
    """Put the price forward; a dispute it starts is Charter's to arbitrate."""
    try:
        system.propose(member, task.subject, "price", dict(call), task_type=task.type,
                       confidence=0.7, context=dict(call),
                       rationale=f"margin and competitor review ({reference(task)})")
    except CharterError:
        return  # refused (e.g. outside the agent's authority): the action says why


def _money(amount: Any) -> Decimal:
    """An amount as exact money (costs are drawn as floats)."""
    return Decimal(str(amount)).quantize(Decimal("0.0001"))


def _outputs(attempt: Attempt) -> dict[str, float]:
    return {"minutes": round(attempt.minutes, 1)}
