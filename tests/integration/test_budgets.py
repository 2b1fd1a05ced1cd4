"""Budgets on SQLite and PostgreSQL: reserve, commit, release, nesting, TTLs, periods."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from charter import budgets
from charter.budgets import EnvelopeUsage, OverBudget, Reservation
from charter.clock import ManualClock
from charter.errors import Conflict, InvalidInput, NotFound
from charter.org import Org
from charter.store.schema import budgets as budgets_table
from charter.store.schema import reservations as reservations_table
from charter.system import Charter

PURCHASING_CHAIN = ["buyer-bot-1-spend", "purchasing-spend", "procurement-spend", "acme-opex"]


@pytest.fixture
def org(system: Charter, workspace: Path) -> Org:
    return system.load_org(workspace / "charter.yaml").org


def reserve(system: Charter, org: Org, member: str, amount: Any, **options: Any) -> Reservation:
    with system.store.transaction() as conn:
        return budgets.reserve(conn, system.ledger, system.clock, org, member=member,
                               amount=amount, purpose=options.pop("purpose", "test spend"),
                               **options)


def commit(system: Charter, reservation_id: str, actual: Any) -> Reservation:
    with system.store.transaction() as conn:
        return budgets.commit(conn, system.ledger, system.clock, reservation_id,
                              actual=actual, actor="tester")


def release(system: Charter, reservation_id: str) -> Reservation:
    with system.store.transaction() as conn:
        return budgets.release(conn, system.ledger, system.clock, reservation_id,
                               actor="tester", reason="order cancelled")


def envelopes(system: Charter, *, at: datetime | None = None) -> dict[str, EnvelopeUsage]:
    with system.store.reading() as conn:
        return {envelope.id: envelope for envelope in budgets.usage(conn, at=at)}


def used(system: Charter, *ids: str) -> dict[str, tuple[Decimal, Decimal]]:
    """(reserved, committed) of each envelope named."""
    found = envelopes(system)
    return {i: (found[i].reserved, found[i].committed) for i in ids}


def tables(system: Charter) -> dict[str, list[Any]]:
    with system.store.reading() as conn:
        return {table.name: list(conn.execute(select(table).order_by(table.c.id)))
                for table in (budgets_table, reservations_table)}


def test_envelope_for_prefers_the_members_own_then_its_teams(org: Org):
    spenders = {budget.id: budget.members for budget in org.budgets.values()}
    assert spenders["buyer-bot-1-spend"] == ("buyer-bot-1",)
    assert budgets.envelope_for(org, "buyer-bot-1") == "buyer-bot-1-spend"  # named member
    assert budgets.envelope_for(org, "ap-bot-2") == "llm-inference"
    assert budgets.envelope_for(org, "sofia.alvarez") == "procurement-spend"  # owner
    assert budgets.envelope_for(org, "priya.raman") == "ai-workforce"
    # The owner of envelopes that name their members approves, but spends elsewhere:
    assert org.budgets["buyer-bot-1-spend"].owner == "james.liu"
    assert budgets.envelope_for(org, "james.liu") == "purchasing-spend"  # team purchasing
    assert budgets.envelope_for(org, "ben.kowalski") == "refunds"  # team support_tier2
    assert budgets.envelope_for(org, "triage-bot") is None
    with pytest.raises(NotFound):
        budgets.envelope_for(org, "nobody")


def test_usage_lists_every_envelope_parents_first(system: Charter, org: Org):
    listed = [envelope.id for envelope in envelopes(system).values()]
    assert sorted(listed) == sorted(org.budgets)
    for envelope_id, parent in org.budget_parent.items():
        assert parent is None or listed.index(parent) < listed.index(envelope_id)
    fresh = envelopes(system)["acme-opex"]
    assert (fresh.amount, fresh.reserved, fresh.committed, fresh.available) == (
        org.budgets["acme-opex"].amount, 0, 0, org.budgets["acme-opex"].amount)
    with system.store.reading() as conn, pytest.raises(NotFound):
        budgets.reservation(conn, "no-such-reservation")


def test_reserve_then_commit_less_than_reserved(system: Charter, org: Org, clock: ManualClock):
    held = reserve(system, org, "buyer-bot-1", Decimal("1000"), purpose="PO 4471")
    assert (held.status, held.amount, held.budget_id) == ("reserved", 1000,
                                                          "buyer-bot-1-spend")
    assert held.expires_at == "2026-01-01T01:00:00.000000Z" and held.actual is None
    assert set(used(system, *PURCHASING_CHAIN).values()) == {(1000, 0)}
    assert used(system, "buyer-bot-2-spend", "finance-payables") == {
        "buyer-bot-2-spend": (0, 0), "finance-payables": (0, 0)}
    clock.advance(timedelta(minutes=5))
    done = commit(system, held.id, "812.50")
    assert (done.status, done.actual, done.settled_at) == (
        "committed", Decimal("812.5"), "2026-01-01T00:05:00.000000Z")
    assert set(used(system, *PURCHASING_CHAIN).values()) == {(0, Decimal("812.5"))}
    assert envelopes(system)["buyer-bot-1-spend"].available == Decimal("59187.5")
    reserved, committed = system.events(kind="budget.reserved"), system.events(
        kind="budget.committed")
    assert reserved[0].subject == "budget:buyer-bot-1-spend"
    assert reserved[0].actor == "buyer-bot-1"
    assert reserved[0].payload and reserved[0].payload["amount"] == "1000"
    assert reserved[0].payload["chain"] == PURCHASING_CHAIN
    assert committed[0].payload and committed[0].payload["actual"] == "812.5"


def test_commit_more_than_reserved_needs_the_difference(system: Charter, org: Org):
    held = reserve(system, org, "buyer-bot-1", 1000)
    assert commit(system, held.id, 1250).actual == 1250
    assert set(used(system, *PURCHASING_CHAIN).values()) == {(0, 1250)}

    held = reserve(system, org, "buyer-bot-2", 9000)
    before = (tables(system), system.events())
    with pytest.raises(OverBudget) as caught:
        commit(system, held.id, "10000.5")
    assert caught.value.details == {"budget": "buyer-bot-2-spend",
                                    "owner": org.budgets["buyer-bot-2-spend"].owner,
                                    "requested": "1000.5", "available": "1000",
                                    "shortfall": "0.5"}
    assert (tables(system), system.events()) == before
    assert commit(system, held.id, 10000).status == "committed"
    assert envelopes(system)["buyer-bot-2-spend"].available == 0


def test_release_gives_the_hold_back(system: Charter, org: Org):
    held = reserve(system, org, "buyer-bot-1", 700)
    gone = release(system, held.id)
    assert gone.status == "released" and gone.actual is None and gone.settled_at
    assert set(used(system, *PURCHASING_CHAIN).values()) == {(0, 0)}
    (event,) = system.events(kind="budget.released")
    assert event.payload and event.payload["reason"] == "order cancelled"
    with pytest.raises(Conflict, match="already released"):
        release(system, held.id)
    with pytest.raises(Conflict, match="already released"):
        commit(system, held.id, 700)
    with pytest.raises(NotFound):
        release(system, "no-such-reservation")


def test_double_commit_is_refused_and_changes_nothing(system: Charter, org: Org):
    held = reserve(system, org, "buyer-bot-1", 300)
    commit(system, held.id, 300)
    before = (tables(system), system.events())
    with pytest.raises(Conflict, match="already committed") as caught:
        commit(system, held.id, 300)
    assert not isinstance(caught.value, OverBudget) and caught.value.status == 409
    with pytest.raises(Conflict, match="already committed"):
        release(system, held.id)
    assert (tables(system), system.events()) == before


def test_a_child_with_room_is_refused_when_its_parent_has_none(system: Charter, org: Org):
    reserve(system, org, "priya.raman", 7900)  # ai-workforce: 8000
    assert envelopes(system)["llm-inference"].available == 500
    before = (tables(system), system.events())
    with pytest.raises(OverBudget) as caught:
        reserve(system, org, "ap-bot-2", 200)  # llm-inference: 500, inside ai-workforce
    error = caught.value
    assert error.details == {"budget": "ai-workforce", "owner": "priya.raman",
                             "requested": "200", "available": "100", "shortfall": "100"}
    assert "ai-workforce" in error.message and "priya.raman" in error.message
    assert error.to_dict()["error"]["type"] == "OverBudget" and error.status == 409
    with pytest.raises(OverBudget) as caught:
        reserve(system, org, "ap-bot-2", 600)
    assert caught.value.details["budget"] == "llm-inference"  # the innermost short one
    assert (tables(system), system.events()) == before
    assert reserve(system, org, "ap-bot-2", 100).status == "reserved"
    assert envelopes(system)["ai-workforce"].available == 0


def test_an_explicit_budget_and_unknown_names(system: Charter, org: Org):
    held = reserve(system, org, "triage-bot", 25, budget="support-spend")
    assert held.budget_id == "support-spend"
    assert used(system, "support-spend", "acme-opex", "refunds") == {
        "support-spend": (25, 0), "acme-opex": (25, 0), "refunds": (0, 0)}
    before = (tables(system), system.events())
    with pytest.raises(InvalidInput, match="name the budget"):
        reserve(system, org, "triage-bot", 25)
    with pytest.raises(NotFound, match="no-such-budget"):
        reserve(system, org, "triage-bot", 25, budget="no-such-budget")
    with pytest.raises(NotFound, match="nobody"):
        reserve(system, org, "nobody", 25, budget="support-spend")
    assert (tables(system), system.events()) == before


def test_expired_reservations_release_themselves(system: Charter, org: Org,
                                                 clock: ManualClock):
    first = reserve(system, org, "buyer-bot-2", 6000, ttl=timedelta(minutes=30))
    second = reserve(system, org, "buyer-bot-2", 4000, ttl=timedelta(hours=2))
    with pytest.raises(OverBudget):
        reserve(system, org, "buyer-bot-2", 1)
    clock.advance(timedelta(minutes=30))
    with pytest.raises(Conflict, match="expired"):
        commit(system, first.id, 6000)
    third = reserve(system, org, "buyer-bot-2", 5000)  # the first expired: room again
    with system.store.reading() as conn:
        assert budgets.reservation(conn, first.id).status == "released"
        assert budgets.reservation(conn, second.id).status == "reserved"
    (event,) = system.events(kind="budget.released")
    assert (event.actor, event.payload) == ("system", {
        "reservation": first.id, "budget": "buyer-bot-2-spend", "amount": "6000",
        "reason": "expired", "chain": ["buyer-bot-2-spend", "purchasing-spend",
                                       "procurement-spend", "acme-opex"]})
    assert used(system, "buyer-bot-2-spend") == {"buyer-bot-2-spend": (9000, 0)}
    clock.advance(timedelta(hours=2))
    with system.store.transaction() as conn:
        swept = budgets.release_expired(conn, system.ledger, clock)
    assert sorted(r.id for r in swept) == sorted([second.id, third.id])
    assert {r.status for r in swept} == {"released"}
    assert set(used(system, *PURCHASING_CHAIN, "buyer-bot-2-spend").values()) == {(0, 0)}
    with system.store.transaction() as conn:
        assert budgets.release_expired(conn, system.ledger, clock) == []


BAD_AMOUNTS = {
    "zero": 0, "negative": Decimal("-5"), "nan": Decimal("NaN"), "snan": Decimal("sNaN"),
    "infinite": Decimal("Infinity"), "text": "a lot", "float": 12.5, "bool": True,
    "too precise": Decimal("0.00001"), "too large": "1e20", "none": None,
}


@pytest.mark.parametrize("case", sorted(BAD_AMOUNTS))
def test_bad_amounts_are_refused_and_change_nothing(system: Charter, org: Org, case: str):
    held = reserve(system, org, "buyer-bot-1", 100)
    before = (tables(system), system.events())
    with pytest.raises(InvalidInput):
        reserve(system, org, "buyer-bot-1", BAD_AMOUNTS[case])
    if case != "zero":  # committing nothing is allowed
        with pytest.raises(InvalidInput):
            commit(system, held.id, BAD_AMOUNTS[case])
    with pytest.raises(InvalidInput), system.store.transaction() as conn:
        budgets.top_up(conn, system.ledger, system.clock, "acme-opex",
                       amount=BAD_AMOUNTS[case], actor="dana.whitfield", reason="more")
    assert (tables(system), system.events()) == before


def test_bad_purpose_ttl_or_reason_is_refused(system: Charter, org: Org):
    with pytest.raises(InvalidInput, match="purpose"):
        reserve(system, org, "buyer-bot-1", 5, purpose="  ")
    with pytest.raises(InvalidInput, match="ttl"):
        reserve(system, org, "buyer-bot-1", 5, ttl=timedelta(0))
    with pytest.raises(InvalidInput, match="reason"), system.store.transaction() as conn:
        budgets.top_up(conn, system.ledger, system.clock, "acme-opex", amount=5,
                       actor="dana.whitfield", reason="")
    assert system.events(kind="budget.reserved") == []


def test_top_up_raises_one_envelope_until_the_next_org_load(system: Charter, org: Org,
                                                           workspace: Path):
    reserve(system, org, "buyer-bot-2", 10000)
    with pytest.raises(OverBudget):
        reserve(system, org, "buyer-bot-2", 500)
    with system.store.transaction() as conn:
        topped = budgets.top_up(conn, system.ledger, system.clock, "buyer-bot-2-spend",
                                amount="1000", actor="james.liu", reason="approval 81f3")
    assert (topped.amount, topped.available) == (11000, 1000)
    assert envelopes(system)["purchasing-spend"].amount == 400000
    reserve(system, org, "buyer-bot-2", 500)
    (event,) = system.events(kind="budget.topped_up")
    assert (event.actor, event.subject) == ("james.liu", "budget:buyer-bot-2-spend")
    with pytest.raises(NotFound), system.store.transaction() as conn:
        budgets.top_up(conn, system.ledger, system.clock, "nope", amount=1, actor="x",
                       reason="y")
    system.load_org(workspace / "charter.yaml")
    after = envelopes(system)["buyer-bot-2-spend"]
    assert (after.amount, after.reserved, after.available) == (10000, 10500, -500)


@pytest.mark.parametrize(("period", "start"), [
    ("day", "2026-05-14T00:00:00.000000Z"), ("week", "2026-05-11T00:00:00.000000Z"),
    ("month", "2026-05-01T00:00:00.000000Z"), ("quarter", "2026-04-01T00:00:00.000000Z"),
    ("year", "2026-01-01T00:00:00.000000Z"), ("total", None),
])
def test_period_start(period: str, start: str | None):
    assert budgets.period_start(period, "2026-05-14T13:45:10.123456Z") == start


def test_committed_starts_again_each_period(system: Charter, workspace: Path,
                                            clock: ManualClock):
    path = workspace / "charter.yaml"
    text, count = re.subn(r"(id: llm-inference\n(?:[ ]+\w+: .*\n)*?[ ]+period: )month",
                          r"\1total", path.read_text(encoding="utf-8"))
    assert count == 1
    path.write_text(text, encoding="utf-8")
    org = system.load_org(path).org
    commit(system, reserve(system, org, "buyer-bot-2", 8000).id, 8000)
    commit(system, reserve(system, org, "ap-bot-2", 400).id, 400)  # llm-inference: total
    open_hold = reserve(system, org, "buyer-bot-2", 1500, ttl=timedelta(days=40))
    with pytest.raises(OverBudget):
        reserve(system, org, "buyer-bot-2", 1000)
    clock.set(datetime(2026, 2, 1, tzinfo=UTC))
    february = envelopes(system, at=clock.now())
    assert (february["buyer-bot-2-spend"].committed,
            february["buyer-bot-2-spend"].period_start) == (0, "2026-02-01T00:00:00.000000Z")
    assert february["buyer-bot-2-spend"].reserved == 1500  # open holds carry over
    assert envelopes(system)["buyer-bot-2-spend"].committed == 8000  # not yet written
    reserve(system, org, "buyer-bot-2", 8000)
    stored = envelopes(system)
    for envelope_id in ("buyer-bot-2-spend", "purchasing-spend", "acme-opex"):
        assert (stored[envelope_id].committed, stored[envelope_id].period_start) == (
            0, "2026-02-01T00:00:00.000000Z")
    assert stored["buyer-bot-2-spend"].reserved == 9500
    with pytest.raises(OverBudget) as caught:
        reserve(system, org, "ap-bot-2", 200)
    assert caught.value.details["budget"] == "llm-inference"  # `total` never starts again
    commit(system, open_hold.id, 1500)
    assert used(system, "buyer-bot-2-spend") == {"buyer-bot-2-spend": (8000, 1500)}


def test_ledger_verifies_and_replay_rebuilds_the_tables(system: Charter, org: Org,
                                                        clock: ManualClock):
    kept = reserve(system, org, "buyer-bot-1", "1234.5678")
    commit(system, kept.id, "1000.0001")
    release(system, reserve(system, org, "refund-bot", 80).id)
    reserve(system, org, "ap-bot-2", 50, ttl=timedelta(minutes=10))
    held = reserve(system, org, "treasury-bot", 9000, ttl=timedelta(days=90))
    with system.store.transaction() as conn:
        budgets.top_up(conn, system.ledger, clock, "llm-inference", amount=100,
                       actor="priya.raman", reason="pilot")
    clock.set(datetime(2026, 3, 2, 9, tzinfo=UTC))
    commit(system, reserve(system, org, "buyer-bot-1", 10).id, 12)
    commit(system, held.id, 8999)
    before = tables(system)
    statuses = [row._mapping["status"] for row in before["reservations"]]
    assert sorted(statuses) == ["committed", "committed", "committed", "released", "released"]
    assert system.verify_ledger().ok
    system.rebuild_read_tables()
    assert tables(system) == before
    assert system.verify_ledger().ok


def test_reserves_racing_org_loads_neither_deadlock_nor_lose_usage(system: Charter, org: Org,
                                                                   workspace: Path):
    errors: list[BaseException] = []

    def spend() -> None:
        try:
            for _ in range(15):
                reserve(system, org, "buyer-bot-1", 1)
        except BaseException as error:  # reported below
            errors.append(error)

    def reload() -> None:
        try:
            for _ in range(5):
                system.load_org(workspace / "charter.yaml")
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=spend) for _ in range(4)]
    threads.append(threading.Thread(target=reload))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert set(used(system, *PURCHASING_CHAIN).values()) == {(60, 0)}
    assert system.verify_ledger().ok
