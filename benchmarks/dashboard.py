"""How fast are the dashboard's pages with 100,000 tasks in the database?

The claim: every page renders in <= 300 ms server time on this machine with 100,000 tasks
(and the ~800,000 ledger events, outcomes and approvals their history leaves). The
database is filled through Charter's own verbs on the example org, over 60 days of a
manual clock: tasks of five types submitted and dispatched, claimed, completed (some
failing first and following their fallback, some cancelled), outcomes recorded (one in
ten verified), purchases over a buyer's limit escalated (most approved and done, some
rejected, the last ones still waiting), and queued tasks at the end. Filling takes
minutes, so the file is kept (`--db`) and reused when it already holds the tasks.

Each page is requested in-process through the ASGI app (FastAPI's test client, signed in
as a person) once cold and then `--repeat` times; the first, the median and the worst
are reported, and the claim holds when none, the first included, is over the target.
Baseline, in the same run: the same pages over a database of `--small` tasks filled the
same way — the ratio says how the pages scale with the size of the history.

Run:  python benchmarks/dashboard.py [--tasks 100000] [--db PATH] [--repeat 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from charter import ManualClock, Settings, stats
from charter.api import create_app
from charter.store import open_store
from charter.store.schema import outcomes
from charter.system import Charter

ROOT = Path(__file__).resolve().parent.parent
ORG = ROOT / "examples" / "acme" / "charter.yaml"
TARGET_MS = 300.0
HISTORY = timedelta(days=60)
SECRET = "dashboard-benchmark"
MIX = (("ticket_triage", 0.40, "Customer::{n}", {}),
       ("ticket_resolution", 0.20, "Customer::{n}", {}),
       ("purchase_order", 0.20, "Vendor::globex", {"vendor": "Vendor::globex", "amount": 300}),
       ("refund", 0.10, "Customer::{n}", {"amount": 40}),
       ("invoice_approval", 0.10, "Vendor::globex", {"amount": 900}))
"""Task types of the fill: (type, share, subject, payload)."""


def open_system(db: Path, clock: ManualClock | None = None) -> Charter:
    settings = Settings(secret=SECRET, org=ORG)
    return Charter(open_store(f"sqlite:///{db}", settings), settings, clock)


def task_count(db: Path) -> int:
    if not db.exists():
        return 0
    with open_system(db) as system:
        return sum(stats.take(system.store, system.clock).tasks.values())


def fill(db: Path, count: int, seed: int = 7) -> float:
    """Fill `db` with `count` tasks through the verbs; return the seconds it took."""
    started = time.perf_counter()
    rng = random.Random(seed)
    clock = ManualClock(datetime.now(UTC) - HISTORY)
    step = HISTORY / (count * 1.05)
    waiting_purchases = min(20, max(5, count // 1000))  # buyer-bot-1 holds 25 at most
    queued_at_end = max(10, count // 100)
    flowing = count - waiting_purchases - queued_at_end
    with open_system(db, clock) as system:
        system.load_org(ORG)
        for n in range(flowing):
            clock.advance(step)
            kind = rng.random()
            if kind < 0.005:
                _escalated_purchase(system, rng, settle=True)
            elif kind < 0.015:
                task = _submit(system, rng, n, dispatch=True)
                system.cancel_task(task.id, actor="dana.whitfield", reason="not needed")
            else:
                _run_through(system, _submit(system, rng, n, dispatch=True), rng)
            if n and n % 10_000 == 0:
                print(f"  filled {n:,} tasks ({time.perf_counter() - started:.0f}s)",
                      flush=True)
        for _ in range(waiting_purchases):
            clock.advance(step)
            _escalated_purchase(system, rng, settle=False)
        for n in range(queued_at_end):
            clock.advance(step)
            _submit(system, rng, flowing + n, dispatch=False)
        clock.set(datetime.now(UTC))
        system.flush_decisions()
    return time.perf_counter() - started


def _submit(system: Charter, rng: random.Random, n: int, *, dispatch: bool) -> Any:
    pick = rng.random()
    task_type, subject, payload = MIX[-1][0], MIX[-1][2], MIX[-1][3]
    for kind, share, spelt, body in MIX:
        if pick < share:
            task_type, subject, payload = kind, spelt, body
            break
        pick -= share
    return system.submit_task(task_type, subject.format(n=n % 5000), dict(payload),
                              requester="james.liu", priority=rng.choice((0, 0, 1, 2)),
                              dispatch=dispatch)


def _run_through(system: Charter, task: Any, rng: random.Random) -> None:
    """Claim and finish a dispatched task, failing some attempts first."""
    for _ in range(4):
        if task.state != "assigned" or task.assignee is None:
            return
        claim = system.claim_next(task.assignee)
        if claim is None or claim.task.id != task.id:
            return
        cost = round(rng.uniform(0.01, 2.0), 2)
        if rng.random() < 0.08:
            task = system.fail_task(task.id, member=task.assignee, fencing=claim.fencing,
                                    reason="the engine gave up", cost=cost)
            continue
        system.complete_task(task.id, member=task.assignee, fencing=claim.fencing,
                             cost=cost, duration_s=rng.uniform(1, 90))
        if rng.random() < 0.1:
            system.record_outcome(task.id, success=rng.random() < 0.9,
                                  reported_by="sofia.alvarez", verified=True)
        return


def _escalated_purchase(system: Charter, rng: random.Random, *, settle: bool) -> None:
    task = system.submit_task("purchase_order", "vendor:globex",
                              {"vendor": "Vendor::globex", "amount": 8000},
                              requester="james.liu", priority=3)
    system.assign_task(task.id, "buyer-bot-1", actor="james.liu")
    claim = system.claim_next("buyer-bot-1")
    assert claim is not None and claim.task.id == task.id
    decision = system.authorize("buyer-bot-1", "purchase.create", "Vendor::globex",
                                {"amount": 8000}, task_type="purchase_order", task_id=task.id)
    assert decision.approval_id is not None, decision
    system.await_approval(task.id, member="buyer-bot-1", fencing=claim.fencing,
                          approval_ids=[decision.approval_id], resume={})
    if not settle:
        return
    if rng.random() < 0.2:
        system.reject(decision.approval_id, approver="james.liu", comment="not this quarter")
    else:
        system.approve(decision.approval_id, approver="james.liu", comment="ok")
    again = system.task(task.id)
    if again.state == "assigned" and (claim := system.claim_next("buyer-bot-1")) is not None:
        system.complete_task(task.id, member="buyer-bot-1", fencing=claim.fencing, cost=1)


def pages(system: Charter) -> list[str]:
    """The dashboard's pages, with real ids from the database."""
    done = system.task_page(limit=1, state="done")
    waiting = system.approval_page(limit=1, status="pending")
    newest = system.tail(1)[0].seq
    with system.store.reading() as conn:  # the member with the longest record
        busiest = conn.execute(select(outcomes.c.member, func.count()).group_by(
            outcomes.c.member).order_by(func.count().desc()).limit(1)).first()
    paths = ["/", "/overview/live", "/approvals", "/tasks", "/tasks?state=done",
             "/tasks?assignee=triage-bot", "/members", "/members/triage-bot",
             "/members/buyer-bot-1", *([f"/members/{busiest[0]}"] if busiest else []),
             "/ledger", "/ledger?kind=task.completed",
             "/ledger?actor=buyer-bot-1", f"/ledger/{newest}", "/org"]
    if done:
        paths += [f"/tasks/{done[0].id}", f"/ledger?subject=task:{done[0].id}"]
    if waiting:
        paths += [f"/approvals/{waiting[0].id}", f"/tasks/{waiting[0].request['task']}"]
    return paths


def measure(db: Path, repeat: int) -> dict[str, dict[str, float]]:
    """Median and worst milliseconds per page, signed in as james.liu (an approver) with
    an admin token, so the ledger pages search every actor."""
    with open_system(db) as system, TestClient(create_app(system)) as client:
        secret = system.create_token("james.liu", admin=True).secret
        client.post("/signin", data={"token": secret})
        timings: dict[str, dict[str, float]] = {}
        for path in pages(system):
            samples = []
            for _ in range(repeat + 1):  # the first request warms caches; not counted
                started = time.perf_counter()
                response = client.get(path)
                samples.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{path} answered {response.status_code}: "
                                     f"{response.text[:300]}")
            timings[path] = {"first_ms": samples[0],
                             "median_ms": statistics.median(samples[1:]),
                             "worst_ms": max(samples[1:])}
        return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--db", type=Path, default=Path(tempfile.gettempdir())
                        / "charter-dashboard-benchmark" / "charter.db")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    filled = None
    if task_count(args.db) < args.tasks:
        for stale in args.db.parent.glob(args.db.name + "*"):
            stale.unlink()
        print(f"filling {args.db} with {args.tasks:,} tasks (kept for the next run)...")
        filled = fill(args.db, args.tasks)
    with tempfile.TemporaryDirectory() as folder:
        small = Path(folder) / "small.db"
        fill(small, args.small)
        baseline = measure(small, args.repeat)
    big = measure(args.db, args.repeat)
    with open_system(args.db) as system:
        counts = stats.take(system.store, system.clock)
    report = {"tasks": sum(counts.tasks.values()), "ledger_events": counts.ledger_events,
              "fill_seconds": filled, "target_ms": TARGET_MS, "pages": {
                  path: {**big[path], "baseline_median_ms": baseline[path]["median_ms"]
                         if path in baseline else None} for path in big}}
    # The first request of each page is counted too: it pays for cold caches (the
    # members' figures, compiled templates), as the first person to open it would.
    worst = max(max(page["worst_ms"], page["first_ms"]) for page in big.values())
    report["worst_ms"] = worst
    report["holds"] = worst <= TARGET_MS
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['tasks']:,} tasks, {counts.ledger_events:,} ledger events"
          + (f" (filled in {filled:.0f}s)" if filled else ""))
    print(f"{'page':58} {'first':>8} {'median':>8} {'worst':>8} {'small db':>9} {'ratio':>6}")
    for path, page in report["pages"].items():
        base = page["baseline_median_ms"]
        ratio = f"{page['median_ms'] / base:5.1f}x" if base else "     -"
        shown = path if len(path) <= 58 else path[:55] + "..."
        print(f"{shown:58} {page['first_ms']:7.1f}ms {page['median_ms']:7.1f}ms "
              f"{page['worst_ms']:7.1f}ms "
              f"{(base or 0):8.1f}ms {ratio}")
    print(f"worst page {worst:.1f} ms; target <= {TARGET_MS:.0f} ms: "
          f"{'holds' if report['holds'] else 'does NOT hold'}")


if __name__ == "__main__":
    main()
