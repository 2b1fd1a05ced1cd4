"""The hidden truth of the demo: what each member really achieves on each task type.

The allocator sees only what the org declares (skill levels, cost models) and the
outcomes Charter records. This table is what the simulated world draws those outcomes
from: per member (and, for an agent, per engine) and task type, the probability that an
attempt's result is right, what an attempt costs and how long it takes. Some
declarations are wrong on purpose (the trainee buyer is the better buyer, the LLM clerk
the better clerk, but costlier), one agent gets a better engine mid-month and one agent
gets worse, so that learning from outcomes matters.

The table is seeded: each figure is jittered a little by the seed, the same seed giving
the same table.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

AGENTS_MODULE = "charter.demo.agents"


@dataclass(frozen=True)
class Talent:
    """What one member really does on one task type."""

    quality: float
    """Probability that an attempt's result is right."""
    cost: float
    """What an attempt costs, in the org's currency (an agent's model and tool fees; a
    person's time at their hourly rate)."""
    minutes: float
    """How long an attempt takes."""
    candour: float = 1.0
    """Probability that a wrong result is noticed and reported as a failure (the rest
    are reported as successes: only a reviewer finds them out)."""


@dataclass(frozen=True)
class EngineChange:
    """An agent's engine swapped on `day` for `target`, which does better."""

    member: str
    target: str
    day: float
    talents: dict[str, Talent]


@dataclass(frozen=True)
class Drift:
    """An agent whose real quality on a task type falls from `day` on."""

    member: str
    task_type: str
    day: float
    quality: float
    candour: float


# Agents on their first engine. Declared in the org, for contrast: buyer-bot-1 0.8,
# buyer-bot-2 0.6; ap-bot-1 0.775, ap-bot-2 0.65 (the better clerk, but its model costs
# far more than its declared 0.08 a task). The allocator has to find out.
AGENT_TALENT: dict[tuple[str, str], Talent] = {
    ("buyer-bot-1", "purchase_order"): Talent(0.94, 0.03, 4, 0.5),
    ("buyer-bot-2", "purchase_order"): Talent(0.96, 0.02, 6, 0.6),
    ("ap-bot-1", "invoice_approval"): Talent(0.72, 0.04, 3, 0.9),
    ("ap-bot-2", "invoice_approval"): Talent(0.97, 6.00, 5, 0.7),
    ("treasury-bot", "payment_release"): Talent(0.97, 0.05, 2, 0.8),
    ("vendor-bot", "vendor_onboarding"): Talent(0.90, 0.25, 40, 0.6),
    ("refund-bot", "refund"): Talent(0.96, 0.03, 3, 0.5),
    ("triage-bot", "ticket_triage"): Talent(0.97, 0.01, 1, 0.5),
    ("support-bot", "ticket_resolution"): Talent(0.945, 0.03, 8, 0.5),
    ("pricing-bot", "price_change"): Talent(0.86, 0.10, 10, 0.5),
}

ENGINE_CHANGE = EngineChange(
    "support-bot", f"{AGENTS_MODULE}:support_v2", 15.0,
    {"ticket_resolution": Talent(0.985, 0.12, 6, 0.7)})
"""Mid-month, support-bot gets a better (and dearer) engine: same identity."""

DRIFT = Drift("refund-bot", "refund", 8.0, 0.5, 0.5)
"""From day 8 refund-bot gets half its refunds wrong, and notices only half of those."""

PERSON_MINUTES: dict[str, float] = {
    "ticket_triage": 6, "ticket_resolution": 25, "refund": 15, "invoice_approval": 20,
    "purchase_order": 30, "payment_release": 15, "vendor_onboarding": 150,
    "price_change": 40,
}
PERSON_QUALITY = 0.96
UNKNOWN = Talent(0.5, 0.05, 10, 0.5)
"""An agent on a task type the table does not name (the org changed under the demo)."""


class HiddenTable:
    """The seeded table: agents by engine and task type, people by task type."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        draw = random.Random(f"charter-demo-truth:{seed}")
        self._agents = {key: _jitter(talent, draw) for key, talent in
                        sorted(AGENT_TALENT.items())}
        self._upgrade = {kind: _jitter(talent, draw) for kind, talent in
                         sorted(ENGINE_CHANGE.talents.items())}
        self._people_quality = round(PERSON_QUALITY + draw.uniform(-0.02, 0.02), 3)
        self._people_minutes = {kind: minutes * draw.uniform(0.85, 1.15)
                                for kind, minutes in sorted(PERSON_MINUTES.items())}

    def agent(self, member: str, target: str, task_type: str, day: float) -> Talent:
        """What the agent `member` running engine `target` does on `task_type` on `day`
        of the month."""
        if (member, target) == (ENGINE_CHANGE.member, ENGINE_CHANGE.target) and \
                task_type in self._upgrade:
            return self._upgrade[task_type]
        talent = self._agents.get((member, task_type), UNKNOWN)
        if (member, task_type) == (DRIFT.member, DRIFT.task_type) and day >= DRIFT.day:
            return replace(talent, quality=DRIFT.quality, candour=DRIFT.candour)
        return talent

    def person(self, task_type: str, per_hour: float) -> Talent:
        """What a person does on `task_type`, at their hourly rate."""
        minutes = self._people_minutes.get(task_type, 30.0)
        return Talent(self._people_quality, per_hour * minutes / 60.0, minutes, 0.0)

    def agents(self) -> dict[tuple[str, str], Talent]:
        """The agents' talents on their first engines, as jittered by the seed."""
        return dict(self._agents)

    def upgraded(self, task_type: str) -> Talent | None:
        """The swapped-in engine's talent on `task_type`."""
        return self._upgrade.get(task_type)


def _jitter(talent: Talent, draw: random.Random) -> Talent:
    quality = min(0.99, max(0.05, talent.quality + draw.uniform(-0.015, 0.015)))
    return Talent(round(quality, 3), round(talent.cost * draw.uniform(0.9, 1.1), 4),
                  round(talent.minutes * draw.uniform(0.8, 1.2), 1), talent.candour)
