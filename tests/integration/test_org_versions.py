"""Loading the org: a ledger event per version; an invalid file changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

import charter
from charter.errors import NoOrgLoaded, OrgInvalid
from charter.store.schema import budgets, members, org_versions, task_types
from charter.system import Charter


def table_counts(system: Charter) -> dict[str, int]:
    with system.store.reading() as conn:
        return {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (org_versions, members, task_types, budgets)}


def test_loading_records_a_version_and_an_event(system: Charter, workspace: Path):
    with pytest.raises(NoOrgLoaded):
        _ = system.org
    first = system.load_org(workspace / "charter.yaml", actor="ops")
    assert first.version == 1 and first.loaded_by == "ops"
    (event,) = system.events(kind="org.loaded")
    assert event.seq == first.event_seq and event.subject == "org:acme"
    assert event.payload and event.payload["digest"] == first.org.digest
    assert system.org.members.keys() == first.org.members.keys()
    counts = table_counts(system)
    assert counts["members"] == len(first.org.members)
    assert counts["budgets"] == len(first.org.budgets)


MALFORMED = {
    "yaml syntax": ("    roles: [executive, manager, approver]\n    teams: [leadership]\n"
                    "    skills: {negotiation: 0.8",
                    "    roles: [executive, manager, approver\n    teams: [leadership]\n"
                    "    skills: {negotiation: 0.8"),
    "cycle": ("  - id: dana.whitfield\n",
              "  - id: dana.whitfield\n    reports_to: marcus.okafor\n"),
    "unknown member": ("reports_to: dana.whitfield", "reports_to: dana.whitfeld"),
    "duplicate id": ("  - id: priya.raman\n", "  - id: marcus.okafor\n"),
    "wrong type": ("capacity: 2", "capacity: two"),
    "unknown skill": ("skills: {negotiation: 0.8, pricing: 0.6}",
                      "skills: {negotiation: 0.8, pricing: 0.6, juggling: 0.9}"),
    "negative capacity": ("capacity: 2", "capacity: -2"),
    "missing field": ("    kind: human\n    title: Chief Executive Officer\n",
                      "    title: Chief Executive Officer\n"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_invalid_org_changes_nothing_and_keeps_the_previous(system: Charter, workspace: Path,
                                                            case: str):
    old, new = MALFORMED[case]
    path = workspace / "charter.yaml"
    system.load_org(path)
    before_counts, before_events = table_counts(system), system.events()
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(OrgInvalid) as caught:
        system.load_org(path)
    problem = caught.value.details[0]
    assert problem["file"].endswith("charter.yaml") and problem["line"] > 90, problem
    assert problem["message"], problem
    assert system.events() == before_events
    assert table_counts(system) == before_counts
    assert system.current_org().version == 1  # type: ignore[union-attr]


def test_each_load_is_a_new_version(system: Charter, workspace: Path):
    path = workspace / "charter.yaml"
    system.load_org(path)
    path.write_text(path.read_text(encoding="utf-8").replace("capacity: 2", "capacity: 3", 1),
                    encoding="utf-8")
    second = system.load_org(path)
    assert second.version == 2
    assert [v["version"] for v in system.org_versions()] == [1, 2]
    assert system.verify_ledger().ok


def test_open_loads_the_org_only_when_it_changed(db_url: str, settings, workspace: Path):
    path = workspace / "charter.yaml"
    with charter.open(db_url, path, settings=settings) as system:
        assert system.current_org().version == 1  # type: ignore[union-attr]
    with charter.open(db_url, path, settings=settings) as system:
        assert system.current_org().version == 1  # type: ignore[union-attr]
        assert len(system.events(kind="org.loaded")) == 1


def test_read_tables_are_rebuilt_from_the_ledger(system: Charter, workspace: Path):
    path = workspace / "charter.yaml"
    system.load_org(path)
    path.write_text(path.read_text(encoding="utf-8").replace("capacity: 2", "capacity: 7", 1),
                    encoding="utf-8")
    system.load_org(path)
    with system.store.reading() as conn:
        expected = {t.name: sorted(map(tuple, conn.execute(select(t)).all()))
                    for t in (org_versions, members, task_types, budgets)}
    with system.store.transaction() as conn:
        for table in (members, task_types, budgets, org_versions):
            conn.execute(delete(table))
    assert system.rebuild_read_tables() == 3  # two org loads, one policy load
    with system.store.reading() as conn:
        rebuilt = {t.name: sorted(map(tuple, conn.execute(select(t)).all()))
                   for t in (org_versions, members, task_types, budgets)}
    assert rebuilt == expected
    assert system.current_org().version == 2  # type: ignore[union-attr]
    assert system.org.members["dana.whitfield"].capacity == 7
