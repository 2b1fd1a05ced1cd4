"""A small simulated month through the real code path, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from charter import Settings, open_charter
from charter.demo.report import render
from charter.demo.simulation import Plan, Progress, simulate
from charter.demo.workload import MIX
from charter.demo.workspace import copy_org

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme"
START = datetime(2026, 10, 1, tzinfo=UTC)


def test_a_month_runs_through_charter_and_the_ledger_explains_it(db_url: str, tmp_path: Path):
    seen: list[Progress] = []
    org = copy_org(EXAMPLE, tmp_path / "org")
    settings = Settings(secret="test-secret")
    result = simulate(Plan(START, tasks=40, seed=3), db_url, org, seen.append,
                      settings=settings)
    assert result.tasks == 40 and result.ledger_ok
    assert sum(result.states.values()) == 40
    assert result.count("done") >= 30
    assert result.swap is not None and result.swap.day == 15
    assert {share.task_type for share in result.shares} == set(MIX)
    assert seen[-1].day == 30 and seen[-1].submitted == 40
    assert result.approvals.asked > 0
    with open_charter(db_url, settings=settings) as system:
        assert len(system.org_versions()) == 2  # the month's org, then the engine swap
        assert system.verify_ledger().ok
    console = Console(width=120, record=True)
    console.print(render(result, result))
    text = console.export_text()
    for heading in ("Learned allocator vs learned", "did NOT come out ahead",
                    "Who does what", "What the allocator learned", "Engine swap on day 15",
                    "ledger verified OK"):
        assert heading in text
