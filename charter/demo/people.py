"""The simulated people: they answer approvals, work through their queues, review their
agents' work and now and then propose a price themselves.

People work through their queues and review in office hours (08:00 to 18:00, every day
of the month) and answer approvals from 07:00 to 23:00. An approval is answered after
a delay of minutes to hours (the next morning when it comes in at night; past its SLA
Charter moves it up the chain); most are approved, and an approver who looks at a wrong
result usually rejects it. Budget overrides are granted about half the time. Disputes
escalated to a manager are settled for the proposal nearer the right price, mostly. A
person does one task at a time from their queue, through the same verbs an agent's
worker uses (claim, authorize, complete), and a manager reviews a sample of each of
their agents' completed tasks: verified outcomes, which earned autonomy and the
allocator weigh.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from charter.budgets import OverBudget
from charter.demo.agents import MONEY_ACTIONS
from charter.demo.world import Completion, World, reference
from charter.dispatch import action_context
from charter.errors import CharterError
from charter.fallback import nearest_person
from charter.proposals import SETTLE_ACTION
from charter.system import Charter
from charter.tasks import Claim

Schedule = Callable[[datetime, Callable[[], None]], None]
"""Run a callable when the simulated clock reaches a time."""

OPENS, CLOSES = 8, 18
"""Office hours (UTC): when people work through their queues and review."""
ON_CALL = (7, 23)
"""When people answer approvals (on their phones, outside office hours too)."""
APPROVAL_DELAY_MINUTES = 35.0
"""Median time a person takes to answer an approval in office hours."""
REVIEW_RATE = {"refund-bot": 0.5}
DEFAULT_REVIEW_RATE = 0.4
"""Share of an agent's completed tasks its manager reviews."""
PRICE_PROPOSER = "nina.kapoor"
PRICE_PROPOSAL_RATE = 0.35
"""Share of price changes on which the pricing manager proposes a price herself."""
PEOPLE_BUDGETS = {"purchase.create": "purchasing-spend", "refund.issue": "refunds",
                  "payment.release": "finance-payables"}
"""The envelope a person's spend on each money action comes from."""
REJECTIONS = {
    "purchase.create": "the quantity does not match the request",
    "invoice.approve": "this invoice does not match its purchase order",
    "payment.release": "the bank details need checking first",
    "vendor.onboard": "their insurance certificate has expired",
    "refund.issue": "outside the returns window",
    "price.propose": "this would undercut our own channel partners",
}


@dataclass
class PeopleCounts:
    """What the people did, beyond what their votes and outcomes record."""

    overrides_granted: int = 0
    proposals: int = 0
    reviews: int = 0


class People:
    """Every person of the org, simulated."""

    def __init__(self, system: Charter, world: World, schedule: Schedule, seed: int) -> None:
        self.system = system
        self.world = world
        self.schedule = schedule
        self.draw = random.Random(f"charter-demo-people:{seed}")
        self.counts = PeopleCounts()
        self._asked: set[tuple[str, str]] = set()
        self._busy: dict[str, datetime] = {}
        self._running: dict[str, tuple[str, int]] = {}

    @property
    def humans(self) -> list[str]:
        return [m.id for m in self.system.org.spec.members if m.kind == "human"]

    # -- planning, at every tick -------------------------------------------------------

    def plan(self, now: datetime, holders: set[str], *, approvals: bool = True) -> None:
        """See what waits for people now: approvals to answer (when `approvals` says some
        are pending), queued tasks (`holders`: who has tasks waiting to be claimed),
        agents' work to review."""
        if approvals:
            self._plan_votes(now)
        if in_office(now):
            for person in self.humans:
                if person in holders and self._busy.get(person, now) <= now:
                    self._start(person, now)
        for completion in self.world.take_completions():
            self._plan_review(completion)

    def heartbeat(self) -> None:
        """Keep the leases of the tasks people are working on."""
        for task_id, (person, fencing) in list(self._running.items()):
            try:
                self.system.heartbeat(task_id, member=person, fencing=fencing)
            except CharterError:
                self._running.pop(task_id, None)

    def price_proposal(self, at: datetime, subject: str) -> None:
        """Maybe propose a price for `subject` a little after `at` (a price change came
        in for it)."""
        if self.draw.random() >= PRICE_PROPOSAL_RATE:
            return
        when = office_time(at + timedelta(minutes=self.draw.uniform(20, 180)), self.draw)
        self.schedule(when, partial(self._propose_price, subject))

    # -- approvals ----------------------------------------------------------------------

    def _plan_votes(self, now: datetime) -> None:
        humans = set(self.humans)
        for approval in self.system.approvals(status="pending"):
            voted = {vote.approver for vote in approval.votes}
            for approver in approval.approvers:
                key = (approval.id, approver)
                if approver in humans and approver not in voted and key not in self._asked:
                    self._asked.add(key)
                    minutes = APPROVAL_DELAY_MINUTES * math.exp(self.draw.gauss(0, 1.0))
                    when = office_time(now + timedelta(minutes=minutes), self.draw, ON_CALL)
                    self.schedule(when, partial(self._vote, approval.id, approver))

    def _vote(self, approval_id: str, approver: str) -> None:
        approval = self.system.approval(approval_id)
        if approval.status != "pending" or approver not in approval.approvers or \
                any(vote.approver == approver for vote in approval.votes):
            return
        request = approval.request
        action = str(request.get("action"))
        try:
            if action == SETTLE_ACTION:
                self._settle(approval.id, request, approver)
                return
            if action == "budget.spend":
                grant = self.draw.random() < 0.5
                why = "the envelope is spent for this month; send it elsewhere"
            else:
                right = self.world.pending_good(request.get("task"))
                grant = self.draw.random() < (0.97 if right else 0.3)
                why = REJECTIONS.get(action, "not as it stands")
            if not grant:
                self.system.reject(approval_id, approver=approver, comment=why)
                return
            voted = self.system.approve(approval_id, approver=approver, comment="ok")
            if action == "budget.spend" and voted.status == "approved":
                self._grant_override(voted.id, approval.requester, request)
        except CharterError:
            return  # it moved on meanwhile (settled, withdrawn, escalated past them)

    def _grant_override(self, approval_id: str, requester: str, request: dict[str, Any]) -> None:
        """An approved override raises the envelope by the shortfall: the agent's runtime
        takes it up at once (the task it was for has moved on, so the hold is let go and
        the room stays for its next spend)."""
        context = request.get("context") or {}
        held = self.system.reserve_spend(requester, str(context.get("amount")),
                                         str(context.get("purpose")), approval_id=approval_id)
        if held.reservation is not None:
            self.system.release_spend(held.reservation.id, actor=requester,
                                      reason="override taken up; its task had moved on")
        self.counts.overrides_granted += 1

    def _settle(self, approval_id: str, request: dict[str, Any], manager: str) -> None:
        context = request.get("context") or {}
        parties = list(context.get("proposals") or [])
        if not parties:
            return
        best = self.world.best_change(str(context.get("subject", "")))
        parties.sort(key=lambda p: abs(int(p["value"].get("change_percent", 0)) - best))
        winner = parties[0] if self.draw.random() < 0.85 or len(parties) == 1 else parties[1]
        resolution = str(request.get("resource", "")).split("::", 1)[-1]
        self.system.settle_proposals(resolution, winner["id"], by=manager)

    def _propose_price(self, subject: str) -> None:
        if self._proposed_lately(PRICE_PROPOSER, subject):
            return
        best = self.world.best_change(subject)
        change = max(-10, min(10, best + self.draw.choice((-3, -2, 2, 3, 0))))
        try:
            self.system.propose(PRICE_PROPOSER, subject, "price", {"change_percent": change},
                                task_type="price_change", confidence=0.8,
                                context={"change_percent": change},
                                rationale="what our key accounts will accept")
            self.counts.proposals += 1
        except CharterError:
            return

    # -- their own queues ---------------------------------------------------------------

    def _start(self, person: str, now: datetime) -> None:
        """Take the next task from the person's queue, if any, and finish it later."""
        claim = self.system.claim_next(person)
        if claim is None:
            return
        spec = self.system.org.member(person)
        attempt = self.world.person_attempt(person, float(spec.cost.per_hour), claim.task)
        resumed = bool((claim.resume or {}).get("approval"))
        minutes = 3.0 if resumed else attempt.minutes  # back from approval: just do it
        done = now + timedelta(minutes=minutes)
        self._busy[person] = done
        self._running[claim.task.id] = (person, claim.fencing)
        self.schedule(done, partial(self._finish, person, claim, attempt.good,
                                    0.0 if resumed else attempt.cost, minutes))

    def _finish(self, person: str, claim: Claim, good: bool, cost: float,
                minutes: float) -> None:
        """The person is done with the attempt: act, then complete (or it waits for an
        approval, or fails); then on to the next task while the office is open."""
        task = claim.task
        self._running.pop(task.id, None)
        self.world.spent(task.id, cost)
        try:
            if (claim.resume or {}).get("approval"):
                good = self.world.pending_good(task.id)  # the result was made before
                carried_out = self._approved(person, claim)
            else:
                carried_out = self._act(person, claim, good)
            if carried_out:
                self.system.complete_task(task.id, member=person, fencing=claim.fencing,
                                          result={"ref": reference(task)}, cost=cost,
                                          duration_s=minutes * 60)
                self.world.finished(task, person, good, self.system.clock.now(), agent=False)
        except CharterError:
            pass  # the task moved on meanwhile (e.g. its assignee was suspended)
        now = self.system.clock.now()
        if in_office(now):
            self._start(person, now)

    def _act(self, person: str, claim: Claim, good: bool) -> bool:
        """Ask Charter and act as the person: whether the task is done (False when it
        was refused, waits for an approval or ran out of budget)."""
        task, org = claim.task, self.system.org
        action = org.task_types[task.type].action
        call = action_context(org, task)
        if task.type == "price_change":
            call = {"change_percent": self._price_for(task.subject, good)}
            self._propose_own(person, task.subject, call)
        decision = self.system.authorize(person, action, task.subject, call,
                                         task_type=task.type, task_id=task.id)
        if decision.outcome == "deny":
            because = "; ".join(r.message for r in decision.reasons)
            self.system.cancel_task(task.id, actor=person,
                                    reason=f"Charter denied {action}: {because}")
            return False
        if decision.outcome == "escalate" and decision.approval_id is not None:
            self.world.paused(task.id, good)
            self.system.await_approval(task.id, member=person, fencing=claim.fencing,
                                       approval_ids=[decision.approval_id],
                                       resume={"approval": decision.approval_id})
            return False
        return self._paid(person, claim, action, call)

    def _approved(self, person: str, claim: Claim) -> bool:
        """Back from approval: do exactly what was approved (or fail, if it was not)."""
        task, org = claim.task, self.system.org
        approval_id = str((claim.resume or {})["approval"])
        approval = self.system.approval(approval_id)
        if approval.status != "approved":
            self.system.fail_task(task.id, member=person, fencing=claim.fencing,
                                  reason=f"approval {approval_id} was {approval.status}")
            return False
        action = org.task_types[task.type].action
        call = action_context(org, task)
        if task.type == "price_change":
            call = dict(approval.request.get("context") or {})
        self.system.execute_approved(approval_id, person, action, task.subject, call,
                                     task_type=task.type, task_id=task.id)
        return self._paid(person, claim, action, call)

    def _paid(self, person: str, claim: Claim, action: str, call: dict[str, Any]) -> bool:
        """Pay for a money action from the person's envelope; over budget, fail the task."""
        if action not in MONEY_ACTIONS or self._pay(person, action, call, claim.task.id):
            return True
        self.system.fail_task(claim.task.id, member=person, fencing=claim.fencing,
                              reason="over budget")
        return False

    def _pay(self, person: str, action: str, call: dict[str, Any], task_id: str) -> bool:
        amount = Decimal(str(call.get("amount", 0)))
        if amount <= 0:
            return True
        try:
            held = self.system.reserve_spend(person, amount, f"{action} for task {task_id}",
                                             budget=PEOPLE_BUDGETS[action])
        except OverBudget:
            return False
        assert held.reservation is not None
        self.system.commit_spend(held.reservation.id, amount, actor=person)
        return True

    def _price_for(self, subject: str, good: bool) -> int:
        best = self.world.best_change(subject)
        return best if good else max(-10, min(10, best + self.draw.choice((-4, 4))))

    def _propose_own(self, person: str, subject: str, call: dict[str, Any]) -> None:
        if self._proposed_lately(person, subject):
            return
        try:
            self.system.propose(person, subject, "price", dict(call), task_type="price_change",
                                confidence=0.8, context=dict(call))
        except CharterError:
            return

    def _proposed_lately(self, person: str, subject: str) -> bool:
        """Whether `person` has a price for `subject` standing within the conflict window
        (a person does not argue with themselves)."""
        window = self.system.org.task_types["price_change"].conflict.window
        since = self.system.clock.now() - window
        return any(_moment(p.created_at) > since for p in self.system.proposals(
            subject=_product(subject), key="price", member=person))

    # -- reviews ------------------------------------------------------------------------

    def _plan_review(self, completion: Completion) -> None:
        rate = REVIEW_RATE.get(completion.member, DEFAULT_REVIEW_RATE)
        if self.draw.random() >= rate:
            return
        org = self.system.org
        reviewer = nearest_person(org, org.members[completion.member].reports_to)
        if reviewer is None:
            return
        hours = 6.0 * math.exp(self.draw.gauss(0, 0.7))
        when = office_time(completion.at + timedelta(hours=hours), self.draw)
        self.schedule(when, lambda: self._review(completion, reviewer))

    def _review(self, completion: Completion, reviewer: str) -> None:
        found = self.world.result(completion.task_id)
        if found is None or found[0] != completion.member:
            return
        verdict = found[1] if self.draw.random() >= 0.03 else not found[1]
        try:
            self.system.record_outcome(completion.task_id, success=verdict,
                                       reported_by=reviewer, verified=True,
                                       member=completion.member)
            self.counts.reviews += 1
        except CharterError:
            return


def _product(subject: str) -> str:
    """A product as proposals record it (`sku:sku-9` → `Sku::sku-9`)."""
    return f"Sku::{subject.rsplit(':', 1)[-1]}"


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def in_office(at: datetime, hours: tuple[int, int] = (OPENS, CLOSES)) -> bool:
    return hours[0] <= at.hour < hours[1]


def office_time(at: datetime, draw: random.Random,
                hours: tuple[int, int] = (OPENS, CLOSES)) -> datetime:
    """`at` when it falls within `hours`, else a few minutes after they next begin."""
    if in_office(at, hours):
        return at
    opening = at.replace(hour=hours[0], minute=0, second=0, microsecond=0)
    if at.hour >= hours[1]:
        opening += timedelta(days=1)
    return opening + timedelta(minutes=draw.uniform(0, 50))
