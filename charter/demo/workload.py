"""A month of Acme's work: the seeded stream of tasks the demo submits.

Every task type of the org, from four departments (support, finance, procurement and
operations), spread over the month: customer tickets day and night with a daytime
peak, the back office in working hours. The same seed and size give the same stream.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

MIX: dict[str, float] = {
    "ticket_triage": 0.27, "ticket_resolution": 0.21, "refund": 0.14,
    "invoice_approval": 0.15, "purchase_order": 0.11, "payment_release": 0.04,
    "price_change": 0.06, "vendor_onboarding": 0.02,
}
"""Each task type's share of the month's tasks."""

REQUESTERS: dict[str, str] = {
    "ticket_triage": "ben.kowalski", "ticket_resolution": "ben.kowalski",
    "refund": "aisha.mensah", "invoice_approval": "tom.brennan",
    "purchase_order": "james.liu", "payment_release": "elena.petrova",
    "price_change": "nina.kapoor", "vendor_onboarding": "sofia.alvarez",
}
"""Who submits each task type (the person who owns that flow of work)."""

SUPPLIERS = ("globex", "umbrella-supplies", "northwind", "acme-logistics")
SUPPLIER_WEIGHTS = (0.38, 0.28, 0.2, 0.14)
"""Vendors Acme buys from and pays."""
PROSPECTS = ("contoso", "fabrikam", "tailspin", "wingtip", "litware", "adventure-works",
             "proseware", "lucerne", "margie-travel", "alpine-ski", "coho-winery",
             "fourth-coffee")
"""New vendors waiting to be checked and onboarded."""
CUSTOMERS = 400
PRODUCTS = 60
TICKETS = ("cannot log in", "invoice shows the wrong address", "parcel arrived damaged",
           "wants to change the delivery date", "card was charged twice",
           "asks how to export reports", "app crashes on start", "missing items")


@dataclass(frozen=True)
class WorkItem:
    """One task of the month: when it arrives and what it is."""

    at: timedelta
    """Since the month began."""
    task_type: str
    subject: str
    payload: dict[str, Any] = field(hash=False)
    requester: str
    priority: int = 0


def month_of_work(seed: int, tasks: int, days: int = 30) -> list[WorkItem]:
    """`tasks` tasks over `days` days, in arrival order; the same for the same seed."""
    draw = random.Random(f"charter-demo-work:{seed}")
    counts = _counts(tasks)
    items = []
    for task_type, count in counts.items():
        for number in range(1, count + 1):
            ref = f"{_PREFIX[task_type]}-{number:04d}"
            at = _arrival(draw, days, around_the_clock=task_type.startswith("ticket"))
            subject, payload, priority = _content(draw, task_type)
            items.append(WorkItem(at, task_type, subject, {"ref": ref, **payload},
                                  REQUESTERS[task_type], priority))
    items.sort(key=lambda item: (item.at, item.payload["ref"]))
    return items


_PREFIX = {"ticket_triage": "TKT", "ticket_resolution": "RES", "refund": "RFD",
           "invoice_approval": "INV", "purchase_order": "PO", "payment_release": "PAY",
           "price_change": "PRC", "vendor_onboarding": "VND"}


def _counts(tasks: int) -> dict[str, int]:
    """Split `tasks` by the mix, each type at least once, summing to `tasks`."""
    if tasks < len(MIX):
        raise ValueError(f"a month needs at least {len(MIX)} tasks (one of each type)")
    counts = {kind: max(1, math.floor(share * tasks)) for kind, share in MIX.items()}
    order = sorted(MIX, key=lambda kind: -MIX[kind])
    index = 0
    while sum(counts.values()) != tasks:
        kind = order[index % len(order)]
        if sum(counts.values()) < tasks:
            counts[kind] += 1
        elif counts[kind] > 1:
            counts[kind] -= 1
        index += 1
    return counts


def _arrival(draw: random.Random, days: int, *, around_the_clock: bool) -> timedelta:
    day = draw.randrange(days)
    if around_the_clock and draw.random() < 0.3:
        hour = draw.uniform(0, 24)
    else:
        hour = min(17.99, max(8.0, draw.gauss(12.5, 2.6)))
    return timedelta(days=day, hours=hour)


def _amount(draw: random.Random, median: float, spread: float, low: int, high: int) -> int:
    return int(min(high, max(low, round(median * math.exp(draw.gauss(0, spread))))))


def _content(draw: random.Random, task_type: str) -> tuple[str, dict[str, Any], int]:
    """The task's subject, payload and priority."""
    customer = f"c-{draw.randrange(1, CUSTOMERS + 1):04d}"
    supplier = draw.choices(SUPPLIERS, SUPPLIER_WEIGHTS)[0]
    if task_type == "ticket_triage":
        return f"customer:{customer}", {"summary": draw.choice(TICKETS)}, 1
    if task_type == "ticket_resolution":
        return f"customer:{customer}", {"summary": draw.choice(TICKETS)}, 0
    if task_type == "refund":
        return f"customer:{customer}", {"amount": _amount(draw, 55, 0.8, 5, 2000)}, 0
    if task_type == "invoice_approval":
        return f"vendor:{supplier}", {"amount": _amount(draw, 700, 0.9, 40, 90000)}, 0
    if task_type == "purchase_order":
        return f"vendor:{supplier}", {"amount": _amount(draw, 650, 0.9, 20, 60000)}, 0
    if task_type == "payment_release":
        return f"vendor:{supplier}", {"amount": _amount(draw, 2600, 0.8, 100, 120000)}, 1
    if task_type == "price_change":
        change = draw.randint(-9, 9) if draw.random() < 0.9 else draw.choice((-14, 12, 15))
        return f"sku:sku-{draw.randrange(1, PRODUCTS + 1)}", {"change_percent": change}, 0
    return f"vendor:{draw.choice(PROSPECTS)}", {}, 0
