"""Replaying recorded history under a candidate policy set or allocation strategy, on both
databases."""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from charter import ManualClock
from charter.authority import Authority
from charter.cli import app
from charter.cli_replay import parse_moment
from charter.decisions import Decision
from charter.errors import InvalidInput
from charter.offpolicy import _units, replay_strategy
from charter.policy import PolicyEngine, PolicyInvalid, read_policy_files
from charter.replay import REPLAYED, replay_policies
from charter.system import Charter
from tests.integration.reviews import review_work

Request = tuple[str, str, str, dict[str, Any]]

REQUESTS: list[Request] = [
    ("buyer-bot-1", "purchase.create", "Vendor::globex", {"amount": 800}),
    ("buyer-bot-1", "purchase.create", "Vendor::globex", {"amount": 8000}),
    ("buyer-bot-1", "purchase.create", "Vendor::initech", {"amount": 800}),
    ("buyer-bot-1", "purchase.create", "Vendor::umbrella-supplies", {"amount": 2000}),
    ("buyer-bot-2", "purchase.create", "Vendor::globex", {"amount": 500}),
    ("buyer-bot-2", "purchase.create", "Vendor::globex", {"amount": 3000}),
    ("refund-bot", "refund.issue", "Customer::42", {"amount": 150}),
    ("refund-bot", "refund.issue", "Customer::42", {"amount": 500}),
    ("refund-bot", "refund.issue", "Customer::42", {"amount": 20000}),
    ("support-bot", "ticket.resolve", "Customer::42", {}),
    ("ap-bot-1", "invoice.approve", "Vendor::globex", {"amount": 3000}),
    ("treasury-bot", "payment.release", "Vendor::globex", {"amount": 8000}),
    ("pricing-bot", "price.propose", "Sku::sku-9", {"change_percent": 15}),
    ("support-bot", "memory.read", "Payroll::2026-11", {}),
]
INVALID: Request = ("buyer-bot-1", "purchase.create", "Vendor::globex", {"amount": "lots"})

STRICTER = '''// Stricter purchasing: James signs off purchases up to 5,000 only, and nobody
// buys more than 1,000 from a medium-risk vendor.
@id("james-buys-up-to-5000")
forbid (principal == Member::"james.liu", action == Action::"purchase.create", resource)
when { context.amount > 5000 };

@id("medium-risk-vendors-up-to-1000")
forbid (principal, action == Action::"purchase.create", resource is Vendor)
when { resource.risk == "medium" && context.amount > 1000 };
'''


def record(system: Charter, clock: ManualClock, requests: list[Request]) -> list[Decision]:
    """Ask each request, a minute apart; every decision is in the ledger on return."""
    decisions = []
    for member, action, resource, context in requests:
        decisions.append(system.authorize(member, action, resource, context))
        system.flush_decisions()
        clock.advance(timedelta(minutes=1))
    return decisions


def stricter_policies(workspace: Path, tmp_path: Path) -> Path:
    """The example policies with bots' refunds capped at 100 and two more forbids."""
    folder = tmp_path / "candidate"
    shutil.copytree(workspace / "policies", folder)
    support = folder / "support.cedar"
    limit = "when { principal.limits has refund && context.amount <= principal.limits.refund };"
    text = support.read_text(encoding="utf-8")
    assert text.count(limit) == 2  # refunds-within-limit, then the approvers' one
    support.write_text(text.replace(limit, limit[:-3] + " && context.amount <= 100 };", 1),
                       encoding="utf-8")
    (folder / "stricter.cedar").write_text(STRICTER, encoding="utf-8")
    return folder


def key(member: str, action: str, resource: str, context: dict[str, Any]) -> str:
    return json.dumps([member, action, resource, context], sort_keys=True)


def test_a_stricter_set_reports_exactly_the_decisions_it_changes(
        acme: Charter, clock: ManualClock, workspace: Path, tmp_path: Path):
    recorded = record(acme, clock, [*REQUESTS, INVALID])
    assert {d.outcome for d in recorded[:-1]} == {"allow", "deny", "escalate"}
    folder = stricter_policies(workspace, tmp_path)
    files = read_policy_files(folder)
    # What each request gets when asked directly under the candidate, independently.
    fresh = Authority(PolicyEngine.build(acme.org, files))
    expected = {}
    for request, before in zip(REQUESTS, recorded[:-1], strict=True):
        after = fresh.decide(*request, now=clock.now())
        if after.outcome != before.outcome or after.approvers != before.approvers:
            expected[key(*request)] = (before.outcome, after.outcome, after.approvers)
    events_before = len(acme.events())

    report = replay_policies(acme, files)

    found = {key(c.member, c.action, c.resource, c.context): (c.before, c.after,
                                                              c.after_approvers)
             for c in report.changes}
    assert found == expected
    assert report.by_transition() == {"allow→escalate": 1, "allow→deny": 1,
                                      "changed approvers": 1}
    changed = {c.transition: c for c in report.changes}
    assert changed["allow→escalate"].context == {"amount": 150}
    assert changed["allow→escalate"].after_approvers == ("ben.kowalski",)
    assert changed["allow→deny"].resource == "Vendor::umbrella-supplies"
    assert any("medium-risk-vendors-up-to-1000" in r
               for r in changed["allow→deny"].after_reasons)
    assert changed["changed approvers"].before_approvers == ("james.liu",)
    assert changed["changed approvers"].after_approvers == ("sofia.alvarez",)
    assert report.decisions == len(REQUESTS) + 1
    assert sum(report.replayed.values()) == len(REQUESTS)
    assert report.skipped == {"invalid request": 1}
    assert report.by_action()["purchase.create"] == {"replayed": 6, "changed": 2}
    assert report.by_action()["refund.issue"] == {"replayed": 3, "changed": 1}
    # Only the report's own event was written, and the chain still verifies.
    events = acme.events()
    assert len(events) == events_before + 1
    assert events[-1].kind == REPLAYED and events[-1].seq == report.event_seq
    assert events[-1].payload == report.summary()
    assert events[-1].payload["changed"] == 3
    assert events[-1].payload["candidate"]["digest"] == fresh.engine.policies.digest
    assert acme.verify_ledger().ok


def test_the_policy_set_in_force_changes_nothing(acme: Charter, clock: ManualClock,
                                                  workspace: Path):
    record(acme, clock, [*REQUESTS, INVALID])
    report = replay_policies(acme, read_policy_files(workspace / "policies"))
    assert report.changes == ()
    assert sum(report.replayed.values()) == len(REQUESTS)
    assert report.candidate_digest == report.policy_digest
    assert report.summary()["by_transition"] == {}


def test_each_decision_is_replayed_with_the_delegations_and_autonomy_of_its_time(
        acme: Charter, clock: ManualClock, workspace: Path):
    # Earned autonomy is quick here: four verified successes promote an agent.
    org_file = workspace / "charter.yaml"
    text = org_file.read_text(encoding="utf-8")
    marker = "    conflict: {rule: authority, window: 1h}\n"
    assert text.count(marker) == 1
    org_file.write_text(text.replace(marker, marker + "    autonomy_threshold: 0.5\n"
                                     "    autonomy_min_outcomes: 3\n"), encoding="utf-8")
    acme.load_org(org_file)
    # A person acting for sofia.alvarez (a supervised agent would still be escalated).
    onboard: Request = ("tom.brennan", "vendor.onboard", "Vendor::umbrella-supplies", {})
    purchase: Request = ("buyer-bot-2", "purchase.create", "Vendor::globex", {"amount": 400})
    acme.delegate("sofia.alvarez", "tom.brennan", ["vendor.onboard"],
                  until=clock.now() + timedelta(minutes=30))
    early = record(acme, clock, [onboard, purchase])
    clock.advance(timedelta(hours=1))  # the delegation lapses
    review_work(acme, "buyer-bot-2", [True] * 4, task_type="purchase_order",
                subject="Vendor::globex", reviewer="james.liu")
    assert [e.payload["to"] for e in acme.events(kind="autonomy.promoted") if e.payload] \
        == ["notify"]
    late = record(acme, clock, [onboard, purchase])
    assert [d.outcome for d in early] == ["allow", "escalate"]
    assert [d.outcome for d in late] == ["escalate", "allow"]

    report = replay_policies(acme, read_policy_files(workspace / "policies"))
    assert report.changes == ()
    assert report.replayed == {"vendor.onboard": 2, "purchase.create": 2}
    assert report.other_org == 0


def test_a_window_replays_only_the_decisions_inside_it(acme: Charter, clock: ManualClock,
                                                       workspace: Path, tmp_path: Path):
    start = clock.now()
    record(acme, clock, REQUESTS)
    middle = start + timedelta(minutes=len(REQUESTS) // 2)
    files = read_policy_files(stricter_policies(workspace, tmp_path))
    late = replay_policies(acme, files, since=middle)
    early = replay_policies(acme, files, until=middle)
    assert sum(late.replayed.values()) + sum(early.replayed.values()) == len(REQUESTS)
    assert sum(late.replayed.values()) == len(REQUESTS) - len(REQUESTS) // 2
    assert len(late.changes) + len(early.changes) == 3
    assert all(c.at >= late.since for c in late.changes if late.since)
    assert early.summary()["window"] == {"since": None, "until": early.until}


def test_an_invalid_candidate_is_refused_whole_and_nothing_is_written(
        acme: Charter, clock: ManualClock, workspace: Path, tmp_path: Path):
    record(acme, clock, REQUESTS[:3])
    folder = stricter_policies(workspace, tmp_path)
    (folder / "broken.cedar").write_text(
        '// a typo\n@id("typo")\npermit (principal, action == Action::"purchase.create", '
        'resource)\nwhen { context.amount > "lots" };\n', encoding="utf-8")
    count = len(acme.events())
    with pytest.raises(PolicyInvalid) as refused:
        replay_policies(acme, read_policy_files(folder))
    assert "broken.cedar:2" in refused.value.message
    assert len(acme.events()) == count


def test_the_replay_commands(acme: Charter, clock: ManualClock, db_url: str, workspace: Path,
                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    record(acme, clock, REQUESTS)
    folder = stricter_policies(workspace, tmp_path)
    monkeypatch.setenv("CHARTER_SECRET", "test-secret")
    runner = CliRunner()
    shown = runner.invoke(app, ["replay", "policies", "--candidate", str(folder),
                                "--db", db_url])
    assert shown.exit_code == 0, shown.output
    assert "allow→deny" in shown.output and "changed approvers" in shown.output
    as_json = runner.invoke(app, ["replay", "policies", "--candidate", str(folder),
                                  "--db", db_url, "--since", "2000-01-01", "--json"])
    assert as_json.exit_code == 0, as_json.output
    parsed = json.loads(as_json.output)
    assert parsed["changed"] == 3 and len(parsed["changes"]) == 3
    assert parsed["window"]["since"].startswith("2000-01-01T00:00:00")
    nothing = runner.invoke(app, ["replay", "policies", "--candidate", str(folder),
                                  "--db", db_url, "--until", "2000-01-01T00:00Z"])
    assert nothing.exit_code == 0 and "No decision would change" in nothing.output
    wrong = runner.invoke(app, ["replay", "policies", "--candidate", str(folder),
                                "--db", db_url, "--since", "yesterday"])
    assert wrong.exit_code == 1
    assert [e.kind for e in acme.events()].count(REPLAYED) == 3
    assert acme.verify_ledger().ok


def test_command_line_times():
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert parse_moment("4h", "--since", now) == now - timedelta(hours=4)
    assert parse_moment("1h30m", "--since", now) == now - timedelta(minutes=90)
    assert parse_moment("2026-11-27T09:00Z", "--since", now) == now - timedelta(hours=3)
    assert parse_moment("2026-11-27T10:00+01:00", "--since", now) == now - timedelta(hours=3)
    assert parse_moment("2026-11-27 09:00", "--since", now) == now - timedelta(hours=3)
    assert parse_moment(None, "--since", now) is None


# -- strategies -------------------------------------------------------------------------

Work = tuple[str, str, dict[str, Any], float]
TICKETS: Work = ("ticket_resolution", "Customer::7", {}, 40.0)
INVOICES: Work = ("invoice_approval", "Vendor::globex", {"context": {"amount": 100}}, 150.0)
"""Task type, subject, payload and value."""
RATES = {"support-bot": (0.8, 0.05), "ben.kowalski": (0.95, 6.0)}
"""Each member's chance of doing a task well, and what a task costs it."""


def do_work(system: Charter, count: int, seed: int, *, strategy: str = "random",
            rates: dict[str, tuple[float, float]] = RATES,
            work: Work = TICKETS) -> list[tuple[str, float]]:
    """Tasks dispatched by `strategy`, each claimed, completed and verified with a seeded
    verdict: (member, utility) of each."""
    task_type, subject, payload, value = work
    rng = random.Random(seed)
    done = []
    for _ in range(count):
        task = system.submit_task(task_type, subject, payload, requester="tom.brennan")
        (assigned,) = system.dispatch_queued(strategy=strategy)
        member = assigned.assignee
        assert member in rates
        rate, cost = rates[member]
        success = rng.random() < rate
        claim = system.claim_next(member)
        assert claim is not None and claim.task.id == task.id
        system.complete_task(task.id, member=member, fencing=claim.fencing, cost=cost)
        system.record_outcome(task.id, success=success, reported_by="aisha.mensah",
                              verified=True, cost=cost)
        done.append((member, success * value - cost))
    return done


def test_a_strategy_is_estimated_from_the_recorded_choices_and_outcomes(acme: Charter):
    done = do_work(acme, 60, seed=3)
    waiting = acme.submit_task("ticket_resolution", "Customer::x", requester="ben.kowalski")
    acme.dispatch_queued(strategy="random")  # assigned, no outcome yet
    by_hand = acme.submit_task("ticket_resolution", "Customer::y", requester="ben.kowalski")
    acme.assign_task(by_hand.id, "support-bot", actor="ben.kowalski")
    count = len(acme.events())

    same = replay_strategy(acme, "random")
    utilities = [utility for _, utility in done]
    mean = sum(utilities) / len(utilities)
    assert same.recorded.records == len(done)
    assert same.recorded.value == pytest.approx(mean)
    assert same.recorded_strategies == {"random": len(done) + 1}
    assert same.skipped == {"no outcome yet": 1, "not chosen by a strategy": 1}
    # Random is what recorded them: every weight is 1.
    assert same.self_normalised.value == pytest.approx(mean)
    assert same.self_normalised.effective_records == pytest.approx(len(done))

    # The cheapest member is always support-bot: its records alone, each weighing 2.
    cheapest = replay_strategy(acme, "cheapest")
    own = [utility for member, utility in done if member == "support-bot"]
    assert 0 < len(own) < len(done)
    assert cheapest.self_normalised.value == pytest.approx(sum(own) / len(own))
    assert cheapest.self_normalised.effective_records == pytest.approx(len(own))
    assert cheapest.agreement == pytest.approx(len(own) / len(done))
    for estimate in (cheapest.doubly_robust, cheapest.self_normalised):
        assert estimate.low < estimate.value < estimate.high
    assert len(acme.events()) == count  # reads only
    assert waiting.id != by_hand.id


def test_the_learner_is_replayed_as_the_allocator_had_it(acme: Charter):
    """Greedy picks by what the learner knew at each assignment; replayed, it makes the
    same pick every time, so its estimate is exactly the recorded utility."""
    rates = {"ap-bot-1": (0.2, 0.04), "ap-bot-2": (0.9, 0.08)}
    done = do_work(acme, 40, seed=5, strategy="greedy", rates=rates, work=INVOICES)
    assert {member for member, _ in done} == set(rates)  # outcomes changed its mind
    report = replay_strategy(acme, "greedy")
    mean = sum(utility for _, utility in done) / len(done)
    assert report.agreement == 1.0
    assert report.recorded_strategies == {"greedy": len(done)}
    assert report.doubly_robust.value == pytest.approx(mean)
    assert report.self_normalised.value == pytest.approx(mean)
    assert report.doubly_robust.effective_records == pytest.approx(len(done))
    other = replay_strategy(acme, "best_prior")
    assert other.agreement < 1.0


def test_a_strategy_replay_needs_outcomes_and_a_known_strategy(acme: Charter,
                                                               db_url: str,
                                                               monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(InvalidInput, match="at least 2"):
        replay_strategy(acme, "greedy")
    with pytest.raises(InvalidInput, match="no allocation strategy"):
        replay_strategy(acme, "clairvoyant")
    do_work(acme, 6, seed=1)
    monkeypatch.setenv("CHARTER_SECRET", "test-secret")
    shown = CliRunner().invoke(app, ["replay", "strategy", "--candidate", "learned",
                                     "--db", db_url, "--json"])
    assert shown.exit_code == 0, shown.output
    parsed = json.loads(shown.output)
    assert parsed["candidate"] == "learned" and parsed["recorded"]["records"] == 6
    assert parsed["doubly_robust"]["low"] <= parsed["doubly_robust"]["high"]
    table = CliRunner().invoke(app, ["replay", "strategy", "--candidate", "greedy",
                                     "--db", db_url])
    assert table.exit_code == 0, table.output
    assert "doubly robust" in table.output and "recorded choices" in table.output


def test_a_batch_choice_is_replayed_over_the_members_it_could_have_chosen(acme: Charter):
    for _ in range(acme.settings.batch_dispatch_at):
        acme.submit_task("ticket_triage", "Customer::5", requester="ben.kowalski")
    acme.dispatch_queued()
    event = acme.events(kind="task.assigned")[0]
    payload = event.payload or {}
    explained = payload["explanation"]
    assert explained["method"] == "batch"
    units = dict(_units(acme.org, payload))
    assert set(units) == {payload["member"]} | {r["member"] for r in explained["runners_up"]}
    # A batch recorded before `ruled_out` listed every member, eligible ones with no reason.
    everyone = [*explained["runners_up"],
                *({"member": m, "reason": why}
                  for why, who in explained["ruled_out"].items() for m in who)]
    older = {**payload, "explanation": {key: value for key, value in explained.items()
                                        if key != "ruled_out"} | {"runners_up": everyone}}
    assert dict(_units(acme.org, older)) == units
