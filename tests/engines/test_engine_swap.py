"""Swapping an agent's engine: the member keeps its id, authority, memory and past
record; new outcomes count under the new engine version, and both versions show."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.outcomes import engine_version
from charter.system import Charter
from charter.worker import Worker
from tests.engines.orgs import edit_org
from tests.engines.scripted_llm import ScriptedLLM, buyer
from tests.engines.servers import serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def llm_url() -> Iterator[str]:
    with serve(ScriptedLLM({"buyer-v1": buyer, "buyer-v2": buyer}).app()) as url:
        yield url


def use_model(system: Charter, workspace: Path, url: str, model: str) -> str:
    engine = {"kind": "openai", "base_url": f"{url}/v1", "model": model}
    system.load_org(edit_org(workspace, engines={"buyer-bot-1": engine}))
    return engine_version(system.org, "buyer-bot-1")


def buy(system: Charter, tmp_path: Path, count: int) -> None:
    for _ in range(count):
        task = system.submit_task("purchase_order", "vendor:globex", {
            "vendor": "Vendor::globex", "amount": 400,
            "shop_file": str(tmp_path / "shop.jsonl")}, requester="james.liu")
        system.assign_task(task.id, "buyer-bot-1", actor="james.liu")
    counts = asyncio.run(Worker(system, "buyer-bot-1", poll_seconds=0.01)
                         .run(until_idle=True))
    assert counts.completed == count


def test_swapping_the_engine_keeps_the_member_and_starts_a_new_version(
        system: Charter, workspace: Path, tmp_path: Path, llm_url: str, db_url: str):
    first = use_model(system, workspace, llm_url, "buyer-v1")
    system.remember("Vendor::globex", "Globex gives 5% off orders over 1000",
                    by="buyer-bot-1", kind="fact")
    buy(system, tmp_path, 2)

    second = use_model(system, workspace, llm_url, "buyer-v2")
    assert second != first
    member = system.org.member("buyer-bot-1")
    assert (member.id, member.reports_to, member.limits["purchase"]) == (
        "buyer-bot-1", "james.liu", 5000)
    # the same authority: within its limit it may buy, above it a person must approve
    assert system.authorize("buyer-bot-1", "purchase.create", "Vendor::globex",
                            {"amount": 800}).outcome == "allow"
    assert system.authorize("buyer-bot-1", "purchase.create", "Vendor::globex",
                            {"amount": 8000}).outcome == "escalate"
    # the same memory
    [fact] = system.recall("Vendor::globex", "discount off orders", by="buyer-bot-1")
    assert fact.text.startswith("Globex gives 5% off")
    # the past record is kept, under the old version
    before = {(r.engine_version, r.n) for r in system.track_record("buyer-bot-1")}
    assert before == {(first, 2)}

    buy(system, tmp_path, 3)
    after = {(r.engine_version, r.n) for r in system.track_record("buyer-bot-1")}
    assert after == {(first, 2), (second, 3)}
    versions = {o.engine_version for o in system.outcomes(member="buyer-bot-1")}
    assert versions == {first, second}

    environment = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    shown = subprocess.run(
        [sys.executable, "-m", "charter", "members", "stats", "buyer-bot-1", "--db", db_url],
        cwd=ROOT, env={**environment, "CHARTER_SECRET": "test-secret", "COLUMNS": "200"},
        capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert first in shown.stdout and second in shown.stdout
