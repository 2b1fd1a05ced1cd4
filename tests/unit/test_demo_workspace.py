"""The demo's workspace: the example org as the demo runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.demo.truth import AGENTS_MODULE
from charter.demo.workload import PROSPECTS, SUPPLIERS
from charter.demo.workspace import MARKER, prepare, swap_engine
from charter.errors import InvalidInput
from charter.org import read_org
from charter.outcomes import engine_version
from charter.types import PythonEngine

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acme"


def test_the_workspace_holds_a_valid_org_every_agent_of_which_runs_offline(tmp_path: Path):
    org = read_org(prepare(tmp_path / "demo", EXAMPLE))
    agents = [m for m in org.spec.members if m.kind == "ai"]
    assert agents and all(isinstance(m.engine, PythonEngine) for m in agents)
    assert {*SUPPLIERS, *PROSPECTS} <= set(org.spec.resources["Vendor"].items)
    assert (tmp_path / "demo" / MARKER).exists()
    assert (tmp_path / "demo" / "policies").is_dir()


def test_a_directory_the_demo_did_not_make_is_refused_and_left_alone(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not made by `charter demo`"):
        prepare(tmp_path, EXAMPLE)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_demo_workspace_is_reused_with_fresh_databases(tmp_path: Path):
    prepare(tmp_path, EXAMPLE)
    (tmp_path / "charter.db").write_text("old")
    (tmp_path / "round-robin").mkdir()
    prepare(tmp_path, EXAMPLE)
    assert not (tmp_path / "charter.db").exists()
    assert not (tmp_path / "round-robin").exists()


def test_swapping_an_engine_is_a_new_version_of_the_same_member(tmp_path: Path):
    path = prepare(tmp_path, EXAMPLE)
    before = read_org(path)
    after = read_org(swap_engine(path, "support-bot", f"{AGENTS_MODULE}:support_v2"))
    assert engine_version(before, "support-bot") != engine_version(after, "support-bot")
    old, new = before.members["support-bot"], after.members["support-bot"]
    assert (old.reports_to, old.roles, old.skills) == (new.reports_to, new.roles, new.skills)
    with pytest.raises(InvalidInput, match="no member"):
        swap_engine(path, "nobody", f"{AGENTS_MODULE}:support_v2")
