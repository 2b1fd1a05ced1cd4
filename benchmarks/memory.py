"""What does governed, ranked recall cost? `Charter.recall` against the bare FTS5 query.

Two claims are measured. First: over 100,000 memories on SQLite, `Charter.recall(subject, query,
by=member)` (the subject and query checked, the member's `memory.read` decided by the
org's Cedar policies, the subject's matching memories ranked by FTS5 bm25 and read
back) answers in at most 20 ms at the median.

The memories are generated: notes, facts and summaries about 2,000 customers (most of
them), vendors and products, from templates filled with varied details (order and
invoice numbers, cities, months, plans, products, amounts), written by several agents,
a few private. How many a subject has is skewed as in real use (a few busy customers
hold thousands, most a few dozen). They are stored through the ledger in batches of
5,000 events per transaction (`readmodel.record_drafts`), so the full-text index is
filled by the same triggers as in use; the point is the recall path, not the insert.

Each sample is a realistic query of 1 to 3 words on a subject picked with the same
skew, by a member permitted to read it, timed through `Charter.recall` and, right
after, as the bare FTS5 query with the `sqlite3` module on the same file (the same
SQL Charter's SQLite dialect runs, so the ratio is what governance, checking and
reading the rows back add). For context, the naive bare query that ranks every match
in the table before filtering by subject is timed too, and a `Charter.forget` at this
size (which merges the full-text index and truncates the write-ahead log).

Second, from `leases.py` (see there): lease acquire+release pairs per second through
`Charter` in-process on SQLite (target >= 2,000/s), beside bare SQLAlchemy Core
insert+delete of a row in an identical table, one transaction each.

Run:  python benchmarks/memory.py [--memories N] [--samples N] [--lease-pairs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from leases import leases_table, measure_leases  # the script beside this one

from charter import Settings, memory, open_charter, readmodel
from charter.cli import example_dir
from charter.ledger import EventDraft
from charter.store.dialect import SQLITE_SEARCH_MEMORIES
from charter.system import Charter

BATCH = 5_000
"""Memories stored per transaction while filling the database."""
WARMUP = 200
"""Recalls (Charter and bare) made before any timing starts."""
CUSTOMERS = 2_000
TARGET_P50_MS = 20.0

WRITERS = ["support-bot", "triage-bot", "refund-bot", "ben.kowalski", "aisha.mensah"]
CITIES = ["Lyon", "Rotterdam", "Leipzig", "Porto", "Gdansk", "Turin", "Seville", "Ghent",
          "Brno", "Malmo", "Cork", "Bergen", "Tampere", "Graz", "Utrecht", "Bilbao"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
PLANS = ["Starter", "Team", "Business", "Enterprise", "Education", "Nonprofit"]
PRODUCTS = ["espresso machine", "coffee grinder", "water filter", "milk frother",
            "kettle", "toaster", "blender", "juicer", "rice cooker", "air fryer",
            "dishwasher", "fridge", "microwave", "vacuum cleaner", "dehumidifier"]
ISSUES = ["a cracked housing", "a leaking tank", "a faulty power switch", "missing parts",
          "a scratched panel", "a broken lid", "an error code on start", "loud noise"]
CHANNELS = ["email", "chat", "phone", "text message"]
TEMPLATES = [
    "Invoice {n} was disputed: charged twice for the {plan} plan in {month}.",
    "Asked to move the {plan} subscription to annual billing from {month}.",
    "Parcel for order {n} was delayed at the {city} depot; the courier promised delivery "
    "within {k} days.",
    "Returned a {product} with {issue}; a refund of {amount} EUR was approved.",
    "The {product} from order {n} arrived with {issue}; a replacement was shipped.",
    "Reset the account password after a lockout; login goes through single sign-on.",
    "Prefers to be contacted by {channel} and dislikes being called before noon.",
    "Contract renewal is due in {month}; they want a {k}% discount for a two-year term.",
    "Reported that the mobile app crashes when exporting reports to spreadsheets.",
    "Onboarding call held with their operations lead; they plan to add {k} seats.",
    "Complained about slow answers from first-line support during the {month} outage.",
    "Their API integration hit the rate limit; raised to {n} requests per minute.",
    "Finance asks for purchase order numbers on every invoice from {month} on.",
    "Visited the {city} showroom and asked for a demo of the {product}.",
    "Late payment of invoice {n}: reminder sent, they promise to pay by {month}.",
    "Warranty claim for a {product} bought in {month}: {issue}, repair booked.",
    "Moved their offices to {city}; the delivery address changed for order {n}.",
    "Summary of the quarter: {k} tickets, mostly about the {product} and billing.",
    "Asked whether the {plan} plan includes priority support and a named contact.",
    "Loyalty voucher of {amount} EUR offered after the {month} delivery problems.",
]
OTHER_SUBJECTS = {
    "Vendor::globex": [
        "Globex delivered {k} pallets of packaging {k} days late; penalty clause invoked.",
        "Globex quoted a {k}% price increase on cardboard from {month}.",
    ],
    "Vendor::umbrella-supplies": [
        "Umbrella Supplies ships from {city}; lead time is {k} days in {month}.",
        "Umbrella Supplies changed their bank details; verified with their controller.",
    ],
    "Sku::grinder-2": [
        "The coffee grinder sells {k}% above the competitor's price in {city}.",
        "Stock of the coffee grinder runs out in {k} days at the current sales rate.",
    ],
}
QUERIES = [
    "refund", "invoice", "delivery", "password", "renewal discount", "rate limit",
    "espresso machine", "espresso refund", "late payment", "Lyon depot", "warranty repair",
    "coffee grinder", "annual billing", "outage", "voucher", "purchase order",
    "leaking tank", "priority support", "showroom demo", "cracked housing refund",
    "Enterprise plan", "courier delayed", "mobile app crashes", "replacement shipped",
    "contacted by email", "seats", "offices moved", "dishwasher", "billing dispute",
    "error code", "air fryer warranty", "single sign-on",
]


# -- workload ---------------------------------------------------------------------------

def subject_weights() -> tuple[list[str], list[float]]:
    """Customers by activity (a few busy, most quiet), then vendors and a product."""
    subjects = [f"Customer::{n}" for n in range(1, CUSTOMERS + 1)] + list(OTHER_SUBJECTS)
    weights = [1 / rank ** 0.8 for rank in range(1, CUSTOMERS + 1)]
    weights += [sum(weights) / 30] * len(OTHER_SUBJECTS)
    return subjects, weights


def note(rng: random.Random, subject: str) -> str:
    templates = OTHER_SUBJECTS.get(subject, TEMPLATES)
    return rng.choice(templates).format(
        n=rng.randrange(1000, 99999), plan=rng.choice(PLANS), month=rng.choice(MONTHS),
        city=rng.choice(CITIES), product=rng.choice(PRODUCTS), issue=rng.choice(ISSUES),
        channel=rng.choice(CHANNELS), k=rng.randrange(2, 60),
        amount=rng.randrange(10, 900))


def drafts(count: int, seed: int = 11) -> Iterator[list[EventDraft]]:
    """`count` memory events, in batches of `BATCH`."""
    rng = random.Random(seed)
    subjects, weights = subject_weights()
    batch: list[EventDraft] = []
    for subject in rng.choices(subjects, weights, k=count):
        writer = "buyer-bot-1" if subject.startswith("Vendor") else rng.choice(WRITERS)
        payload = {"id": str(uuid.uuid4()), "subject": subject,
                   "kind": rng.choice(memory.KINDS), "text": note(rng, subject),
                   "tags": rng.sample(["billing", "shipping", "vip", "churn-risk", "api",
                                       "returns"], rng.randrange(0, 3)),
                   "private": rng.random() < 0.05, "permitted_by": ["memory-about-work"]}
        batch.append(EventDraft(memory.REMEMBERED, writer, subject, payload))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def fill(system: Charter, count: int) -> float:
    """Store `count` memories through the ledger; return the seconds it took."""
    start = time.perf_counter()
    for batch in drafts(count):
        with system.store.transaction() as conn:
            readmodel.record_drafts(conn, system.ledger, batch)
    return time.perf_counter() - start


def requests(samples: int, seed: int = 5) -> list[tuple[str, str, str]]:
    """(subject, query, reader) for each sample, subjects skewed like the memories."""
    rng = random.Random(seed)
    subjects, weights = subject_weights()
    return [(subject, rng.choice(QUERIES),
             "buyer-bot-1" if subject.startswith("Vendor") else rng.choice(WRITERS))
            for subject in rng.choices(subjects, weights, k=samples)]


# -- measuring --------------------------------------------------------------------------

NAIVE = ('SELECT m.id, m.seq, m.subject, m.member, m.kind, m.text, m.tags, m."by", '
         "m.created_at, -bm25(memories_fts) AS score FROM memories_fts "
         "JOIN memories AS m ON m.seq = memories_fts.rowid WHERE memories_fts MATCH ? "
         "AND m.subject = ? AND (m.member IS NULL OR m.member = ?) ORDER BY score DESC LIMIT ?")


@dataclass(frozen=True)
class Latency:
    name: str
    samples: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Claim:
    """One measured claim: its figure, its target and whether it holds."""

    claim: str
    figure: str
    target: str
    holds: bool


def latency(name: str, seconds: list[float]) -> Latency:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Latency(name, len(seconds), statistics.median(ordered) * 1000, p99 * 1000)


def match_expression(query: str) -> str:
    return " OR ".join(f'"{term}"' for term in memory.query_terms(query))


def measure_recall(system: Charter, path: Path, samples: int) -> list[Latency]:
    bare = sqlite3.connect(path)
    sql = str(SQLITE_SEARCH_MEMORIES)  # the dialect's statement, with named parameters
    work = requests(samples + WARMUP)
    timings: dict[str, list[float]] = {"charter": [], "bare": [], "naive": []}
    found = 0
    try:
        for index, (subject, query, reader) in enumerate(work):
            match = match_expression(query)
            params = {"match": match, "subject": subject, "reader": reader, "limit": 10}
            start = time.perf_counter()
            recalled = system.recall(subject, query, by=reader, limit=10)
            charter_s = time.perf_counter() - start
            start = time.perf_counter()
            ranked = bare.execute(sql, params).fetchall()
            bare_s = time.perf_counter() - start
            start = time.perf_counter()
            bare.execute(NAIVE, (match, subject, reader, 10)).fetchall()
            naive_s = time.perf_counter() - start
            if [m.seq for m in recalled] != [row[1] for row in ranked]:
                raise SystemExit(f"Charter and the bare query disagree on {subject} "
                                 f"{query!r}")
            if index >= WARMUP:
                found += len(recalled)
                timings["charter"].append(charter_s)
                timings["bare"].append(bare_s)
                timings["naive"].append(naive_s)
    finally:
        bare.close()
    if found == 0:
        raise SystemExit("no recall found anything: the workload is broken")
    return [latency("Charter.recall (governed, ranked, rows read back)", timings["charter"]),
            latency("bare FTS5 query, sqlite3 (same SQL as Charter's)", timings["bare"]),
            latency("naive bare FTS5 query: rank every match, then filter by subject",
                    timings["naive"])]


def measure_forget(system: Charter) -> float:
    """Seconds one `forget` takes at this size (redaction, index merge, WAL truncate)."""
    kept = system.remember("Customer::1", "Temporary note to forget.", by="support-bot")
    start = time.perf_counter()
    system.forget(kept.id, by="support-bot", reason="benchmark")
    return time.perf_counter() - start


def measure_memory(count: int, samples: int) -> dict[str, Any]:
    """The recall claim over `count` memories on a fresh SQLite file."""
    with tempfile.TemporaryDirectory(prefix="charter-bench-") as directory:
        path = Path(directory) / "bench.db"
        settings = Settings(secret="bench", org=example_dir() / "charter.yaml")
        with open_charter(f"sqlite:///{path}", settings.org, settings=settings) as system:
            fill_s = fill(system, count)
            recall = measure_recall(system, path, samples)
            forget_s = measure_forget(system)
            if not system.verify_ledger().ok:
                raise SystemExit("the ledger does not verify")
    charter_p50 = recall[0].p50_ms
    return {"memories": count, "fill_seconds": fill_s, "recall": [asdict(r) for r in recall],
            "ratio_p50": charter_p50 / recall[1].p50_ms,
            "ratio_p99": recall[0].p99_ms / recall[1].p99_ms, "forget_seconds": forget_s,
            "claim": Claim(f"recall p50 over {count:,} memories (SQLite)",
                           f"{charter_p50:.2f} ms", f"<= {TARGET_P50_MS:g} ms",
                           charter_p50 <= TARGET_P50_MS)}


# -- output -----------------------------------------------------------------------------

def recall_table(report: dict[str, Any]) -> str:
    header = f"{'recall, limit 10':<66} {'n':>6} {'p50 ms':>8} {'p99 ms':>8}"
    lines = [f"{report['memories']:,} memories stored through the ledger in "
             f"{report['fill_seconds']:.1f} s", header, "-" * len(header)]
    for row in report["recall"]:
        lines.append(f"{row['name']:<66} {row['samples']:>6} {row['p50_ms']:>8.3f} "
                     f"{row['p99_ms']:>8.3f}")
    lines.append(f"ratio Charter / bare FTS5: p50 {report['ratio_p50']:.2f}, "
                 f"p99 {report['ratio_p99']:.2f}")
    lines.append(f"forget at this size (redact, merge the index, truncate the WAL): "
                 f"{report['forget_seconds'] * 1000:.0f} ms")
    return "\n".join(lines)


def claims_table(claims: list[Claim]) -> str:
    lines = [f"{'claim':<48} {'measured':>12} {'target':>14}  holds"]
    for claim in claims:
        lines.append(f"{claim.claim:<48} {claim.figure:>12} {claim.target:>14}  "
                     f"{'yes' if claim.holds else 'NO'}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--memories", type=int, default=100_000,
                        help="memories stored before recalling (default 100000)")
    parser.add_argument("--samples", type=int, default=2_000,
                        help="recalls timed (default 2000)")
    parser.add_argument("--lease-pairs", type=int, default=3_000,
                        help="lease acquire+release pairs timed on each side (default 3000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.memories < 1 or args.samples < 1:
        parser.error("--memories and --samples must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    reports: dict[str, Any] = {}
    claims: list[Claim] = []
    printers: list[Callable[[], str]] = []

    # -- claim 1: recall p50 <= 20 ms over 100,000 memories (SQLite) --------------------
    recall = measure_memory(args.memories, args.samples)
    reports["memory"] = recall
    claims.append(recall["claim"])
    printers.append(lambda: recall_table(recall))

    # -- claim 2: lease acquire+release >= 2,000 pairs/s in-process (SQLite) -------------
    leased = measure_leases(args.lease_pairs)
    reports["leases"] = leased
    claims.append(Claim("lease acquire+release, in-process (SQLite)",
                        f"{leased['charter_pairs_per_s']:,.0f}/s",
                        f">= {leased['target_pairs_per_s']:,.0f}/s", leased["target_holds"]))
    printers.append(lambda: leases_table(leased))

    if args.json:
        print(json.dumps({**reports, "claims": [asdict(c) for c in claims]}, indent=2,
                         default=asdict))
        return
    for printer in printers:
        print(printer() + "\n")
    print(claims_table(claims))


if __name__ == "__main__":
    main(sys.argv[1:])
