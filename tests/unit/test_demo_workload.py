"""The demo's month of work: seeded, every task type, several departments."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from charter.demo.workload import MIX, month_of_work
from charter.demo.workspace import copy_org
from charter.org import read_org

ROOT = Path(__file__).resolve().parents[2]


def test_the_same_seed_gives_the_same_stream_of_tasks():
    assert month_of_work(5, 300) == month_of_work(5, 300)
    assert month_of_work(5, 300) != month_of_work(6, 300)


def test_a_month_has_every_task_type_from_several_departments_in_arrival_order(
        tmp_path: Path):
    org = read_org(copy_org(ROOT / "examples" / "acme", tmp_path))
    work = month_of_work(1, 500)
    assert len(work) == 500
    assert {item.task_type for item in work} == set(org.task_types) == set(MIX)
    departments = {org.members[item.requester].department for item in work}
    assert len(departments) >= 3
    assert [item.at for item in work] == sorted(item.at for item in work)
    assert all(timedelta(0) <= item.at < timedelta(days=30) for item in work)
    vendors = set(org.spec.resources["Vendor"].items)
    assert {item.subject.split(":", 1)[1] for item in work
            if item.subject.startswith("vendor:")} <= vendors


def test_too_few_tasks_for_a_month_are_refused():
    with pytest.raises(ValueError, match="at least"):
        month_of_work(1, len(MIX) - 1)
