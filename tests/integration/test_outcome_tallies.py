"""The hourly tallies of counted outcomes agree with the outcomes they sum: kept as
outcomes are recorded (retries, verdicts over self-reports, verdicts revised, across
hours and engine versions), rebuilt by a replay, and filled by the migration from an
outcomes table alone."""

from __future__ import annotations

import importlib.util
import random
from datetime import timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import delete, select, text

from charter import ManualClock, outcometallies
from charter.store.schema import outcome_tallies
from charter.system import Charter
from charter.web import trackrecord
from tests.engines.orgs import edit_org

V = "Vendor::globex"
BUYERS = ("buyer-bot-1", "buyer-bot-2")
MIGRATION = (trackrecord.__file__.rsplit("/web/", 1)[0]
             + "/store/migrations/versions/0011_outcome_tallies.py")


def migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("outcome_tallies_migration", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record_history(system: Charter, clock: ManualClock, tasks: int, seed: int) -> None:
    """Purchase orders done by the buyers, with everything that changes which outcome
    counts for a task: a failure then a retry's success, a verdict over a self-report, a
    self-report after a verdict, a verdict revised — spread over many hours."""
    rng = random.Random(seed)
    for _ in range(tasks):
        task = system.submit_task("purchase_order", V, requester="james.liu")
        member = rng.choice(BUYERS)
        for _ in range(rng.choice((1, 1, 2, 3))):
            system.record_outcome(
                task.id, member=member, success=rng.random() < 0.7, reported_by=member,
                verified=rng.random() < 0.4, cost=rng.choice((None, "0.25", "1.10")),
                duration_s=rng.choice((None, 12.5, 40.0)))
            clock.advance(timedelta(minutes=rng.choice((0, 7, 45, 130))))


def figures(rows: list[Any]) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    """Group → (first_at, n, successes, verified, cost, costed, duration, timed), with
    sums rounded as the columns keep them."""
    return {(row[0], row[1], row[2]): (
        row[3], int(row[4]), int(row[5] or 0), int(row[6] or 0),
        Decimal(str(row[7] or 0)).quantize(Decimal("0.0001")), int(row[8]),
        round(float(row[9] or 0), 6), int(row[10])) for row in rows}


def tallied(system: Charter, width: int) -> dict[str, dict[Any, tuple[Any, ...]]]:
    with system.store.engine.connect() as conn:
        return {member: figures(outcometallies.summed(conn, member, width))
                for member in BUYERS}


def counted(system: Charter, width: int) -> dict[str, dict[Any, tuple[Any, ...]]]:
    with system.store.engine.connect() as conn:
        return {member: figures(trackrecord._summed_outcomes(conn, member, width))
                for member in BUYERS}


def table(system: Charter) -> list[tuple[Any, ...]]:
    with system.store.engine.connect() as conn:
        rows = conn.execute(select(outcome_tallies)).all()
    return sorted(figures_row(row) for row in rows)


def figures_row(row: Any) -> tuple[Any, ...]:
    return (*row[:5], row.n, row.successes, row.verified,
            Decimal(str(row.cost_total)).quantize(Decimal("0.0001")), row.costed,
            round(row.duration_total, 6), row.timed)


@pytest.mark.parametrize("width", [13, 10, 7])
def test_the_tallies_sum_what_the_outcomes_count(acme, clock, width):
    record_history(acme, clock, 60, seed=width)
    expected = counted(acme, width)
    assert all(expected.values())
    assert tallied(acme, width) == expected


def test_a_replaced_outcome_leaves_its_hour_for_the_new_one(acme, clock):
    task = acme.submit_task("purchase_order", V, requester="james.liu")
    acme.record_outcome(task.id, member="buyer-bot-1", success=False,
                        reported_by="buyer-bot-1", cost="2")
    clock.advance(timedelta(hours=3))
    acme.record_outcome(task.id, member="buyer-bot-1", success=True,
                        reported_by="james.liu", verified=True)
    clock.advance(timedelta(hours=3))
    acme.record_outcome(task.id, member="buyer-bot-1", success=False,
                        reported_by="buyer-bot-1")  # a self-report never replaces a verdict
    rows = [row for row in table(acme) if row[0] == "buyer-bot-1"]
    assert [(row[5], row[6], row[7], row[9]) for row in rows] == [
        (0, 0, 0, 0), (1, 1, 1, 0), (0, 0, 0, 0)]


def test_a_replay_rebuilds_the_same_tallies(acme, clock):
    record_history(acme, clock, 40, seed=7)
    before = table(acme)
    acme.rebuild_read_tables()
    assert table(acme) == before


def test_the_migration_fills_the_tallies_kept_since(acme, clock, workspace):
    record_history(acme, clock, 25, seed=3)
    edit_org(workspace, engines={"buyer-bot-1": {"kind": "python",
                                                 "target": "tests.engines.agents:buyer"}})
    acme.load_org(workspace / "charter.yaml", actor="admin")
    record_history(acme, clock, 25, seed=4)
    kept = table(acme)
    assert len({row[1] for row in kept if row[0] == "buyer-bot-1"}) == 2
    with acme.store.transaction() as conn:
        conn.execute(delete(outcome_tallies))
        conn.execute(text(migration().BACKFILL))
    assert table(acme) == kept


def test_buckets_finer_than_an_hour_are_not_in_the_tallies(acme):
    with acme.store.engine.connect() as conn, pytest.raises(ValueError, match="per hour"):
        outcometallies.summed(conn, "buyer-bot-1", 16)
