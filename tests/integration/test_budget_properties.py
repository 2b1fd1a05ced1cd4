"""Budgets are never overspent: threads reserving, committing and releasing at once.

Each example gets a fresh database (an SQLite file, or a new PostgreSQL schema) made
inside the test, so Hypothesis never reuses a function-scoped fixture between examples.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, create_engine, select, text

from charter import budgets
from charter.clock import ManualClock
from charter.errors import Conflict
from charter.org import Org
from charter.settings import Settings
from charter.store import open_store
from charter.store.schema import budgets as budgets_table
from charter.store.schema import reservations as reservations_table
from charter.system import Charter

POSTGRES_URL = os.environ.get("CHARTER_TEST_POSTGRES")
THREADS = 8

ORG = """\
org: {id: nested, name: Nested envelopes}
departments: {ops: Operations}
teams:
  red: {name: Red, department: ops}
  blue: {name: Blue, department: ops}
members:
  - {id: boss, kind: human, department: ops}
  - {id: red-1, kind: ai, department: ops, teams: [red], reports_to: boss}
  - {id: red-2, kind: ai, department: ops, teams: [red], reports_to: boss}
  - {id: blue-1, kind: ai, department: ops, teams: [blue], reports_to: boss}
budgets:
  - id: all
    owner: boss
    amount: 60
    children:
      - id: red
        owner: red
        amount: 40
        children:
          - {id: red-1-spend, owner: red-1, amount: 25}
          - {id: red-2-spend, owner: red-2, amount: 25}
      - id: blue
        owner: blue
        amount: 30
        children:
          - {id: blue-1-spend, owner: blue-1, amount: 20}
"""
"""Children's amounts add up to more than their parent's, so parents run out too."""

ENVELOPES = ["all", "red", "red-1-spend", "red-2-spend", "blue", "blue-1-spend"]
MEMBERS = ["boss", "red-1", "red-2", "blue-1"]


@contextmanager
def fresh_charter(backend: str) -> Iterator[Charter]:
    """A Charter on a new, empty database with the nested org loaded."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "policies").mkdir()
        (Path(folder) / "charter.yaml").write_text(ORG, encoding="utf-8")
        with _database(backend, Path(folder)) as url:
            store = open_store(url, Settings(secret="test-secret"))
            system = Charter(store, Settings(secret="test-secret"), ManualClock())
            try:
                system.load_org(Path(folder) / "charter.yaml")
                yield system
            finally:
                store.close()


@contextmanager
def _database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'charter.db'}"
        return
    assert POSTGRES_URL
    schema = f"p_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def check_invariants(conn: Connection) -> int:
    """No envelope below zero, and each envelope's reserved and committed amounts are
    the sums over the reservations in its subtree. One statement, so it reads one
    snapshot on PostgreSQL too; returns the number of reservations seen."""
    query = (select(budgets_table.c.id, budgets_table.c.parent_id, budgets_table.c.amount,
                    budgets_table.c.reserved, budgets_table.c.committed,
                    reservations_table.c.id.label("reservation"),
                    reservations_table.c.amount.label("held"), reservations_table.c.status,
                    reservations_table.c.actual)
             .select_from(budgets_table.outerjoin(
                 reservations_table, reservations_table.c.budget_id == budgets_table.c.id)))
    rows = conn.execute(query).all()
    envelopes = {row.id: row for row in rows}
    open_sum = dict.fromkeys(envelopes, Decimal(0))
    committed_sum = dict.fromkeys(envelopes, Decimal(0))
    for row in rows:
        if row.reservation is None:
            continue
        budget_id: str | None = row.id
        while budget_id is not None:
            if row.status == "reserved":
                open_sum[budget_id] += row.held
            elif row.status == "committed":
                committed_sum[budget_id] += row.actual
            budget_id = envelopes[budget_id].parent_id
    for envelope in envelopes.values():
        available = envelope.amount - envelope.reserved - envelope.committed
        assert available >= 0, f"{envelope.id} is overspent: {available}"
        assert envelope.reserved == open_sum[envelope.id], envelope.id
        assert envelope.committed == committed_sum[envelope.id], envelope.id
        assert envelope.reserved + envelope.committed + available == envelope.amount
    return sum(1 for row in rows if row.reservation is not None)


@dataclass
class Outcomes:
    """What the threads did, shared between them."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    held: list[tuple[str, Decimal]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1


reserve_step = st.tuples(st.just("reserve"), st.sampled_from(ENVELOPES),
                         st.integers(100, 4_000), st.integers(5, 90))
step = st.one_of(
    reserve_step, reserve_step,  # twice as likely as the others
    st.tuples(st.just("commit"), st.integers(0, 10_000), st.integers(0, 150), st.just(0)),
    st.tuples(st.just("release"), st.integers(0, 10_000), st.just(0), st.just(0)),
    st.tuples(st.just("tick"), st.integers(1, 10), st.just(0), st.just(0)),
)
"""(kind, envelope or pick, amount in cents or actual in % of the hold, ttl in minutes)"""
plans = st.lists(st.lists(step, min_size=10, max_size=30), min_size=THREADS,
                 max_size=THREADS)


def run_step(system: Charter, org: Org, outcomes: Outcomes, worker: int,
             action: tuple[str, Any, int, int]) -> None:
    clock = system.clock
    assert isinstance(clock, ManualClock)
    kind, target, number, minutes = action
    if kind == "tick":
        with outcomes.lock:  # ManualClock is not thread-safe: keep time moving forward
            clock.advance(timedelta(minutes=target))
        return
    pick: tuple[str, Decimal] | None = None
    if kind != "reserve":
        with outcomes.lock:
            if not outcomes.held:
                return
            pick = outcomes.held[target % len(outcomes.held)]
    try:
        with system.store.transaction() as conn:
            ledger = system.ledger
            if pick is None:
                amount = Decimal(number) / 100
                made = budgets.reserve(conn, ledger, clock, org, budget=target,
                                       member=MEMBERS[worker % len(MEMBERS)], amount=amount,
                                       purpose=f"worker {worker}",
                                       ttl=timedelta(minutes=minutes))
                with outcomes.lock:
                    outcomes.held.append((made.id, amount))
            elif kind == "commit":
                actual = (pick[1] * number / 100).quantize(Decimal("0.01"))
                budgets.commit(conn, ledger, clock, pick[0], actual=actual,
                               actor=f"worker-{worker}")
            else:
                budgets.release(conn, ledger, clock, pick[0], actor=f"worker-{worker}")
        outcomes.count(kind)
    except budgets.OverBudget:
        outcomes.count("over budget")
        return
    except Conflict:  # settled by another thread, or expired
        outcomes.count("conflict")
    if pick is not None:
        with outcomes.lock:
            if pick in outcomes.held:
                outcomes.held.remove(pick)


def backends() -> list[Any]:
    skip = pytest.mark.skipif(not POSTGRES_URL, reason="CHARTER_TEST_POSTGRES is not set")
    return ["sqlite", pytest.param("postgresql", marks=skip)]


@pytest.mark.parametrize("backend", backends())
@settings(max_examples=5, deadline=None, database=None)
@given(plans=plans)
def test_concurrent_spend_never_overspends(backend: str,
                                           plans: list[list[tuple[str, Any, int, int]]]):
    with fresh_charter(backend) as system:
        org = system.org
        outcomes = Outcomes()
        done = threading.Event()
        checks: list[int] = []

        def work(worker: int) -> None:
            try:
                for action in plans[worker]:
                    run_step(system, org, outcomes, worker, action)
            except BaseException as error:  # reported below
                outcomes.errors.append(error)

        def watch() -> None:
            try:
                while not done.is_set():
                    with system.store.reading() as conn:
                        checks.append(check_invariants(conn))
            except BaseException as error:  # reported below
                outcomes.errors.append(error)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
        watcher = threading.Thread(target=watch)
        watcher.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        watcher.join()
        assert outcomes.errors == []
        assert checks, "the watcher never looked"
        with system.store.reading() as conn:
            check_invariants(conn)
            before = {table.name: conn.execute(select(table).order_by(table.c.id)).all()
                      for table in (budgets_table, reservations_table)}
        assert system.verify_ledger().ok
        system.rebuild_read_tables()
        with system.store.reading() as conn:
            after = {table.name: conn.execute(select(table).order_by(table.c.id)).all()
                     for table in (budgets_table, reservations_table)}
        assert after == before
