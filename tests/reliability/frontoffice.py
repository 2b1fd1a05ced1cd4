"""The front office of the crash run, a process of its own:

    python -m tests.reliability.frontoffice --db URL --orders N --shop DIR --seed S

It submits purchase orders numbered 0..N-1 (each given by hand to a buyer agent), then
keeps dispatching the tasks their fallback put back in the queue until SIGTERM. Killed
and started again, it first finishes what it was doing (a submitted order it had not
yet assigned) and submits only the orders it had not submitted.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

from charter import Settings
from charter.store import open_store
from charter.system import Charter

REQUESTER = "james.liu"
BUYERS = ("buyer-bot-1", "buyer-bot-1", "buyer-bot-1", "buyer-bot-2")
VENDORS = ("Vendor::globex", "Vendor::umbrella-supplies")
FROZEN = "Vendor::initech"
"""A frozen vendor: Charter denies every order from it, whoever asks."""


def order(n: int, seed: int, shop: Path) -> dict[str, Any]:
    """The payload of order `n`: the same on every start, so a restart submits the same."""
    draw = random.Random(f"{seed}:{n}")
    vendor = FROZEN if draw.random() < 0.02 else draw.choice(VENDORS)
    return {"n": n, "vendor": vendor, "amount": draw.randint(10, 100), "shop": str(shop)}


def buyer_for(n: int) -> str:
    return BUYERS[n % len(BUYERS)]


def submitted(system: Charter) -> dict[int, Any]:
    """The orders already submitted, by number."""
    found: dict[int, Any] = {}
    after = None
    while True:
        page = system.task_page(after=after, limit=500, requester=REQUESTER)
        if not page:
            return found
        for task in page:
            found[task.payload["n"]] = task
        after = (page[-1].created_at, page[-1].id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--orders", type=int, required=True)
    parser.add_argument("--shop", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    settings = Settings()
    with Charter(open_store(options.db, settings), settings) as system:
        known = submitted(system)
        for n, task in sorted(known.items()):
            if task.state == "queued" and task.attempts == 0 and not task.excluded:
                system.assign_task(task.id, buyer_for(n), actor=REQUESTER)
        print(f"front office: {len(known)} orders were submitted before", flush=True)
        for n in range(options.orders):
            if stopping:
                break
            if n in known:
                continue
            payload = order(n, options.seed, options.shop)
            task = system.submit_task("purchase_order", payload["vendor"], payload,
                                      requester=REQUESTER)
            system.assign_task(task.id, buyer_for(n), actor=REQUESTER)
            if n % 100 == 99:
                system.dispatch_queued()
                print(f"front office: submitted {n + 1}", flush=True)
        print("front office: all submitted; dispatching", flush=True)
        while not stopping:
            system.dispatch_queued()
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
