"""What does the ledger's integrity cost? Charter's ledger against a bare insert.

The claim measured: appending through `Ledger.append` / `Ledger.append_many` (canonical
JSON, a sha256 payload digest, a sha256 chain hash, the head locked and re-signed with an
HMAC in the same transaction) and checking the whole chain with `Ledger.verify` cost a
small, bounded factor over what the database itself costs for the same rows. The
baseline is a bare SQLAlchemy Core insert (and select) of rows of the same shape, with
values computed before the clock starts, into a plain table with the same columns,
constraints and indexes, on the same engine (so the same connection settings and, on
SQLite, the same BEGIN IMMEDIATE).

Three operations, in one process, on one database:

1. append, one event per transaction (`Ledger.append`) vs one bare row per transaction;
2. append, 1,000 events per transaction (`append_many`) vs a 1,000-row executemany;
3. verify the ledger built by 1 and 2 (`Ledger.verify`) vs reading the same number of
   bare rows in seq order.

Run:  python benchmarks/ledger.py [--db URL] [--events N] [--batch-events N] [--json]

Without --db it uses a fresh SQLite file in a temporary directory. With a PostgreSQL URL
it works in a fresh schema (`bench_<random>`), dropped at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    select,
    text,
)
from sqlalchemy.engine import make_url

from charter.canonical import canonical_json, sha256_hex
from charter.clock import SystemClock
from charter.ledger import EventDraft, Ledger, format_time
from charter.secret import ServerSecret
from charter.settings import Settings
from charter.store import Store, open_store

BATCH = 1000
"""Events (and bare rows) per transaction in the batched operations."""
WARMUP = 50
"""Events appended (and bare rows inserted) before any timing starts."""
KINDS = ("task.created", "task.assigned", "task.approved", "budget.spent", "task.closed")

plain_metadata = MetaData()
plain_events = Table(
    "bench_plain_events", plain_metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(36), nullable=False, unique=True),
    Column("at", String(32), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("payload", Text, nullable=True),
    Column("payload_digest", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_bench_plain_events_kind", "kind"),
    Index("ix_bench_plain_events_subject", "subject"),
    Index("ix_bench_plain_events_actor", "actor"),
)
"""The `events` table's columns, constraints and indexes, without the ledger."""


@dataclass(frozen=True)
class Result:
    operation: str
    count: int
    charter_per_s: float
    bare_per_s: float

    @property
    def ratio(self) -> float:
        return self.charter_per_s / self.bare_per_s


# -- workload ---------------------------------------------------------------------------

def draft(number: int) -> EventDraft:
    """A realistic event: a task moving through an org, with a small payload."""
    task = f"task-{number // 5:07d}"
    member = f"m-{number % 97:03d}"
    payload = {
        "task": task,
        "member": member,
        "amount": f"{(number * 37) % 100_000 / 100:.2f}",
        "currency": "EUR",
        "budget": f"budget-{number % 13:02d}",
        "note": f"step {number % 5} of {task}, by {member}",
    }
    return EventDraft(KINDS[number % len(KINDS)], member, task, payload)


def drafts(start: int, count: int) -> list[EventDraft]:
    return [draft(number) for number in range(start, start + count)]


class PlainRows:
    """Rows for the bare table, shaped like ledger rows, made before timing starts."""

    def __init__(self) -> None:
        self.seq = 0
        self.at = format_time(SystemClock().now())

    def make(self, count: int) -> list[dict[str, Any]]:
        rows = []
        for event in drafts(self.seq, count):
            self.seq += 1
            payload = canonical_json(event.payload)
            fake_hash = hashlib.sha256(str(self.seq).encode()).hexdigest()
            rows.append({"seq": self.seq, "id": str(uuid.uuid4()), "at": self.at,
                         "kind": event.kind, "actor": event.actor,
                         "subject": event.subject, "payload": payload,
                         "payload_digest": sha256_hex(payload), "prev_hash": fake_hash,
                         "hash": fake_hash})
        return rows


def timed(work: Callable[[], Any]) -> float:
    """Seconds `work` takes on the wall clock."""
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


# -- the three operations ---------------------------------------------------------------

def append_single(store: Store, ledger: Ledger, plain: PlainRows, count: int,
                  first: int) -> Result:
    pending = drafts(first, count)
    rows = plain.make(count)

    def charter() -> None:
        for event in pending:
            with store.transaction() as conn:
                ledger.append(conn, event.kind, event.actor, event.subject, event.payload)

    def bare() -> None:
        for row in rows:
            with store.transaction() as conn:
                conn.execute(insert(plain_events), row)

    return Result("append, 1 event/transaction", count,
                  count / timed(charter), count / timed(bare))


def append_batched(store: Store, ledger: Ledger, plain: PlainRows, count: int,
                   first: int) -> Result:
    batches = [drafts(start, min(BATCH, first + count - start))
               for start in range(first, first + count, BATCH)]
    row_batches = [plain.make(len(batch)) for batch in batches]

    def charter() -> None:
        for batch in batches:
            with store.transaction() as conn:
                ledger.append_many(conn, batch)

    def bare() -> None:
        for rows in row_batches:
            with store.transaction() as conn:
                conn.execute(insert(plain_events), rows)

    return Result(f"append, {BATCH:,} events/transaction", count,
                  count / timed(charter), count / timed(bare))


def verify(store: Store, ledger: Ledger) -> Result:
    reports = []

    def charter() -> None:
        reports.append(ledger.verify())

    def bare() -> None:
        with store.reading() as conn:
            result = conn.execution_options(yield_per=5000).execute(
                select(plain_events).order_by(plain_events.c.seq))
            reports.append(sum(1 for _ in result))

    charter_seconds = timed(charter)
    bare_seconds = timed(bare)
    report, bare_rows = reports
    if not report.ok:
        raise SystemExit(f"the ledger does not verify: {report.to_json()}")
    if bare_rows != report.events:
        raise SystemExit(f"{report.events} events but {bare_rows} bare rows")
    return Result("verify (whole chain)", report.events,
                  report.events / charter_seconds, bare_rows / bare_seconds)


def warm_up(store: Store, ledger: Ledger, plain: PlainRows) -> None:
    """First connections, statement caches and the secret, before any timing."""
    with store.transaction() as conn:
        ledger.append_many(conn, drafts(0, WARMUP))
        conn.execute(insert(plain_events), plain.make(WARMUP))
    ledger.verify()


def run(store: Store, ledger: Ledger, events: int, batch_events: int) -> list[Result]:
    plain_metadata.create_all(store.engine)
    try:
        plain = PlainRows()
        warm_up(store, ledger, plain)
        return [
            append_single(store, ledger, plain, events, WARMUP),
            append_batched(store, ledger, plain, batch_events, WARMUP + events),
            verify(store, ledger),
        ]
    finally:
        plain_metadata.drop_all(store.engine)


# -- databases --------------------------------------------------------------------------

@contextmanager
def database(url: str | None) -> Iterator[str]:
    """A URL for a fresh database: a temporary SQLite file, or a PostgreSQL schema."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix="charter-bench-") as directory:
            yield f"sqlite:///{Path(directory) / 'bench.db'}"
        return
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        yield url
        return
    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(parsed.set(drivername="postgresql+psycopg"))
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        scoped = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def measure(url: str | None, events: int, batch_events: int) -> tuple[str, list[Result]]:
    settings = Settings(secret="bench")
    with database(url) as scoped_url:
        store = open_store(scoped_url, settings, migrate=True)
        try:
            secret = ServerSecret.from_settings(settings, store.database_file)
            ledger = Ledger(store, SystemClock(), secret)
            return store.dialect.name, run(store, ledger, events, batch_events)
        finally:
            store.close()


# -- output -----------------------------------------------------------------------------

def table(dialect: str, results: list[Result]) -> str:
    header = (f"{'operation (' + dialect + ')':<36} {'events':>8} {'charter ev/s':>13} "
              f"{'bare rows/s':>12} {'ratio':>7}")
    lines = [header, "-" * len(header)]
    for result in results:
        lines.append(f"{result.operation:<36} {result.count:>8,} "
                     f"{result.charter_per_s:>13,.0f} {result.bare_per_s:>12,.0f} "
                     f"{result.ratio:>7.2f}")
    lines.append("ratio = charter events/s ÷ bare rows/s (1.00 = no overhead)")
    return "\n".join(lines)


def as_json(dialect: str, results: list[Result]) -> str:
    figures = [{**asdict(result), "ratio": result.ratio} for result in results]
    return json.dumps({"dialect": dialect, "results": figures}, indent=2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", default=None,
                        help="database URL (default: a fresh SQLite file in a temporary "
                        "directory); for PostgreSQL a fresh schema is created and dropped")
    parser.add_argument("--events", type=int, default=2000,
                        help="events appended one per transaction (default 2000)")
    parser.add_argument("--batch-events", type=int, default=100_000,
                        help=f"events appended {BATCH:,} per transaction (default 100000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.events < 1 or args.batch_events < 1:
        parser.error("--events and --batch-events must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    dialect, results = measure(args.db, args.events, args.batch_events)
    print(as_json(dialect, results) if args.json else table(dialect, results))


if __name__ == "__main__":
    main(sys.argv[1:])
