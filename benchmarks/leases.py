"""What does a governed, fenced, ledgered lease cost? `Charter` against a bare row.

The claim measured: acquire+release pairs per second through `Charter.acquire_lease` and
`Charter.release_lease`, in-process on an SQLite file (the example org, the `lease`
action decided by its Cedar policies), reach 2,000 per second. Each acquire is one
transaction that checks the member's permission (cached per authority snapshot), locks
the resource's token row, reads its holders, appends a hash-chained ledger event and
projects it into `lease_tokens` and `leases`; each release is one transaction that
checks the holder, appends an event and deletes the lease.

The baseline, in the same process on the same engine (so the same connection settings
and BEGIN IMMEDIATE): bare SQLAlchemy Core inserting a row into a table identical to
`leases` (same columns, key and indexes) in one transaction, then deleting it in
another. Both sides run in alternating rounds so they see the same machine.

Also printed: the statements each verb executes (BEGIN included), and one uncached
lease decision through Cedar, which the governance cache saves on every call after the
first of a snapshot.

Run:  python benchmarks/leases.py [--count N] [--rounds N] [--profile] [--json]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    event,
    insert,
)

from charter import Settings
from charter.clock import SystemClock
from charter.ledger import format_time
from charter.system import Charter, open_charter
from charter.testing import example_org

TARGET = 2000.0
"""Acquire+release pairs per second the claim asks for."""
WARMUP = 200
"""Pairs run on each side before any timing starts."""
RESOURCE = "Customer::42"
MEMBER = "triage-bot"
TTL = 30.0
CLOCK = SystemClock()

plain_metadata = MetaData()
plain_leases = Table(
    "bench_plain_leases", plain_metadata,
    Column("id", String(36), primary_key=True),
    Column("resource", String(256), nullable=False),
    Column("member", String(64), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("token", BigInteger, nullable=False),
    Column("task_id", String(36), nullable=True),
    Column("acquired_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Index("ix_bench_plain_leases_resource", "resource"),
    Index("ix_bench_plain_leases_member", "member"),
    Index("ix_bench_plain_leases_task", "task_id"),
)
"""The `leases` table's columns, key and indexes, without Charter."""
_PLAIN_INSERT = insert(plain_leases)
_PLAIN_DELETE = delete(plain_leases).where(plain_leases.c.id == bindparam("lease_id"))


def charter_pairs(system: Charter, count: int) -> None:
    for _ in range(count):
        lease = system.acquire_lease(RESOURCE, MEMBER, ttl=TTL)
        system.release_lease(lease.id, MEMBER)


def bare_pairs(engine: Engine, count: int, first_token: int) -> None:
    stamp = format_time(CLOCK.now())
    for token in range(first_token, first_token + count):
        lease_id = str(uuid.uuid4())
        with engine.begin() as conn:
            conn.execute(_PLAIN_INSERT, {
                "id": lease_id, "resource": RESOURCE, "member": MEMBER, "mode": "exclusive",
                "token": token, "task_id": None, "acquired_at": stamp, "expires_at": stamp})
        with engine.begin() as conn:
            conn.execute(_PLAIN_DELETE, {"lease_id": lease_id})


def timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


@contextmanager
def counting_statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement SQLite runs for the block, as SQLite traces them (so statements
    sent to the driver directly are counted too), each transaction's BEGIN (seen as the
    transaction begins) and COMMIT included."""
    seen: list[str] = []
    traced: list[Any] = []

    def trace(conn: Any) -> None:
        seen.append("BEGIN")
        driver = conn.connection.driver_connection
        driver.set_trace_callback(lambda sql: seen.append(sql.split()[0]))
        traced.append(driver)

    event.listen(engine, "begin", trace)
    try:
        yield seen
    finally:
        event.remove(engine, "begin", trace)
        for driver in traced:
            driver.set_trace_callback(None)


def measure_leases(count: int, *, rounds: int = 5, profile: bool = False) -> dict[str, Any]:
    """Acquire+release pairs per second through `Charter` and bare, on a fresh SQLite
    file in a temporary directory; `count` pairs on each side, in `rounds` alternating
    rounds."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        org = example_org(directory)
        settings = Settings(secret="bench-leases", org=org)
        with open_charter(f"sqlite:///{directory / 'bench.db'}", org,
                          settings=settings) as system:
            engine = system.store.engine
            plain_metadata.create_all(engine)
            charter_pairs(system, WARMUP)
            bare_pairs(engine, WARMUP, 1)
            per_round = max(1, count // rounds)
            charter_s: list[float] = []
            bare_s: list[float] = []
            for number in range(rounds):
                charter_s.append(timed(lambda: charter_pairs(system, per_round)))
                bare_s.append(timed(lambda n=number: bare_pairs(
                    engine, per_round, WARMUP + 1 + n * per_round)))
            pairs = per_round * rounds
            system.authority()  # not a snapshot refresh inside the counted statements
            with counting_statements(engine) as acquired:
                lease = system.acquire_lease(RESOURCE, MEMBER, ttl=TTL)
            with counting_statements(engine) as released:
                system.release_lease(lease.id, MEMBER)
            authority = system.authority()
            decisions = []
            for _ in range(200):
                start = time.perf_counter()
                authority.decide(MEMBER, "lease", RESOURCE, None, now=CLOCK.now())
                decisions.append(time.perf_counter() - start)
            profiled = _profile(lambda: charter_pairs(system, 500)) if profile else None
            events = len(system.events(kind="lease.acquired"))
            verified = system.verify_ledger().ok
    charter_rate = pairs / sum(charter_s)
    bare_rate = pairs / sum(bare_s)
    return {
        "pairs": pairs, "rounds": rounds,
        "charter_pairs_per_s": charter_rate, "bare_pairs_per_s": bare_rate,
        "ratio": charter_rate / bare_rate,
        "charter_round_pairs_per_s": [per_round / s for s in charter_s],
        "bare_round_pairs_per_s": [per_round / s for s in bare_s],
        "statements_per_acquire": acquired, "statements_per_release": released,
        "uncached_decision_us_p50": statistics.median(decisions) * 1e6,
        "target_pairs_per_s": TARGET, "target_holds": charter_rate >= TARGET,
        "lease_events": events, "ledger_verifies": verified, "profile": profiled,
    }


def _profile(work: Callable[[], Any]) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(work)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(15)
    return text.getvalue()


def leases_table(result: dict[str, Any]) -> str:
    """The figures of `measure_leases`, as printed."""
    lines: list[str] = []
    out = lines.append
    out(f"acquire+release pairs on SQLite, in-process ({result['pairs']:,} per side, "
          f"{result['rounds']} alternating rounds)")
    out(f"  Charter (governed, fenced, ledgered): {result['charter_pairs_per_s']:8,.0f} "
          "pairs/s")
    out(f"  bare SQLAlchemy Core insert+delete:   {result['bare_pairs_per_s']:8,.0f} "
          "pairs/s")
    out(f"  ratio Charter / bare:                 {result['ratio']:8.2f}")
    out("  per round, Charter: " + ", ".join(
        f"{rate:,.0f}" for rate in result["charter_round_pairs_per_s"]))
    out("  per round, bare:    " + ", ".join(
        f"{rate:,.0f}" for rate in result["bare_round_pairs_per_s"]))
    out(f"  statements per acquire: {len(result['statements_per_acquire'])} "
          f"({' '.join(result['statements_per_acquire'])})")
    out(f"  statements per release: {len(result['statements_per_release'])} "
          f"({' '.join(result['statements_per_release'])})")
    out(f"  one uncached lease decision (Cedar): "
          f"{result['uncached_decision_us_p50']:,.0f} µs p50 (cached: once per snapshot)")
    out(f"  target >= {TARGET:,.0f} pairs/s: "
          f"{'holds' if result['target_holds'] else 'NOT met'}")
    out(f"  ledger: {result['lease_events']:,} lease.acquired events, verifies: "
          f"{result['ledger_verifies']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3000,
                        help="Acquire+release pairs timed on each side.")
    parser.add_argument("--rounds", type=int, default=5,
                        help="Alternating rounds the pairs are split into.")
    parser.add_argument("--profile", action="store_true",
                        help="Also print cProfile of 500 pairs (top 15 by cumulative).")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args(argv)
    result = measure_leases(args.count, rounds=args.rounds, profile=args.profile)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(leases_table(result))
    if result["profile"]:
        print(result["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
