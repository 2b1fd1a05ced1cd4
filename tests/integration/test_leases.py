"""Leases on SQLite and PostgreSQL: exclusion, sharing, fencing tokens, expiry, waiting,
governance, task release, and replay."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from charter import ManualClock, leases
from charter.authority import Authority
from charter.errors import Conflict, Forbidden, InvalidInput, NotFound
from charter.leases import Lease, LeaseHeld
from charter.store.schema import lease_tokens
from charter.store.schema import leases as leases_table
from charter.system import Charter

RACERS = ("triage-bot", "support-bot", "refund-bot", "buyer-bot-1", "buyer-bot-2",
          "pricing-bot", "ap-bot-1", "vendor-bot")


def lease_tables(system: Charter) -> list[list[tuple[Any, ...]]]:
    with system.store.reading() as conn:
        return [sorted(map(tuple, conn.execute(select(table)).all()), key=repr)
                for table in (leases_table, lease_tokens)]


def lease_kinds(system: Charter) -> list[str]:
    return [e.kind for e in system.events() if e.kind.startswith("lease.")]


def race(system: Charter, resource: str, members: tuple[str, ...]
         ) -> tuple[list[Lease], list[LeaseHeld]]:
    """Every member tries for an exclusive lease on `resource` at the same moment."""
    barrier = threading.Barrier(len(members))
    won: list[Lease] = []
    lost: list[LeaseHeld] = []
    failed: list[BaseException] = []

    def attempt(member: str) -> None:
        barrier.wait()
        try:
            won.append(system.acquire_lease(resource, member, ttl=60))
        except LeaseHeld as held:
            lost.append(held)
        except BaseException as error:
            failed.append(error)

    threads = [threading.Thread(target=attempt, args=(member,)) for member in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []
    return won, lost


def test_one_of_eight_racing_members_wins_each_round(acme: Charter):
    for round_number in range(1, 4):
        won, lost = race(acme, "Customer::42", RACERS)
        assert len(won) == 1 and len(lost) == len(RACERS) - 1
        (winner,) = won
        assert winner.token == round_number
        assert all(winner.member in held.message and held.status == 409 for held in lost)
        assert [h.id for h in acme.lease_holders("Customer::42")] == [winner.id]
        acme.release_lease(winner.id, winner.member)
    assert lease_kinds(acme) == ["lease.acquired", "lease.released"] * 3
    assert acme.verify_ledger().ok


def test_shared_leases_coexist_and_keep_out_an_exclusive_one(acme: Charter):
    first = acme.acquire_lease("Sku::9", "pricing-bot", mode="shared", ttl=60)
    second = acme.acquire_lease("sku:9", "nina.kapoor", mode="shared", ttl=120)
    assert (first.token, second.token) == (1, 2) and second.resource == "Sku::9"
    with pytest.raises(LeaseHeld) as held:
        acme.acquire_lease("Sku::9", "priya.raman", ttl=60)
    assert "pricing-bot" in held.value.message and "nina.kapoor" in held.value.message
    assert [h["member"] for h in held.value.details["holders"]] == ["pricing-bot",
                                                                     "nina.kapoor"]
    assert first.expires_at in held.value.message  # when the first holder goes
    acme.release_lease(first.id, "pricing-bot")
    with pytest.raises(Conflict, match=r"nina\.kapoor"):
        acme.acquire_lease("Sku::9", "priya.raman", ttl=60)
    acme.release_lease(second.id, "nina.kapoor")
    exclusive = acme.acquire_lease("Sku::9", "priya.raman", ttl=60)
    assert exclusive.token == 3
    with pytest.raises(Conflict, match=r"priya\.raman"):
        acme.acquire_lease("Sku::9", "pricing-bot", mode="shared", ttl=60)
    assert [h.id for h in acme.lease_holders("Sku::9")] == [exclusive.id]


def test_tokens_strictly_increase_across_release_and_expiry(acme: Charter,
                                                            clock: ManualClock):
    tokens = []
    released = acme.acquire_lease("Customer::7", "support-bot", ttl=60)
    acme.release_lease(released.id, "support-bot")
    tokens.append(released.token)
    lapsed = acme.acquire_lease("Customer::7", "support-bot", ttl=60)
    tokens.append(lapsed.token)
    clock.advance(timedelta(seconds=61))
    assert acme.lease_holders("Customer::7") == []  # past its expiry, it no longer counts
    successor = acme.acquire_lease("Customer::7", "refund-bot", ttl=30)
    tokens.append(successor.token)
    # The acquiring transaction recorded the lapsed holder's expiry first.
    assert lease_kinds(acme)[-2:] == ["lease.expired", "lease.acquired"]
    with pytest.raises(NotFound):
        acme.release_lease(lapsed.id, "support-bot")
    clock.advance(timedelta(seconds=31))
    assert [lease.id for lease in acme.expire_leases()] == [successor.id]
    assert acme.expire_leases() == []
    latest = acme.acquire_lease("Customer::7", "support-bot", ttl=30)
    tokens.append(latest.token)
    assert tokens == [1, 2, 3, 4]
    with acme.store.reading() as conn:
        assert leases.last_token(conn, "Customer::7") == 4


def test_fenced_refuses_an_older_token(acme: Charter, clock: ManualClock):
    old = acme.acquire_lease("Customer::8", "support-bot", ttl=10)
    assert not acme.fenced("Customer::8", old.token)
    clock.advance(timedelta(seconds=11))
    new = acme.acquire_lease("Customer::8", "refund-bot", ttl=10)
    assert acme.fenced("Customer::8", old.token)  # the superseded holder's write: refused
    assert acme.fenced("customer:8", old.token)  # however the resource is written
    assert not acme.fenced("Customer::8", new.token)
    assert not acme.fenced("Customer::999", 1)  # nothing granted there yet
    with pytest.raises(InvalidInput):
        acme.fenced("Customer::8", "2")  # type: ignore[arg-type]


def test_waiting_succeeds_when_the_holder_releases_in_time(acme: Charter):
    holder = acme.acquire_lease("Customer::42", "support-bot", ttl=60)
    releaser = threading.Timer(0.2, acme.release_lease, (holder.id, "support-bot"))
    started = time.monotonic()
    releaser.start()
    try:
        waited = acme.acquire_lease("Customer::42", "refund-bot", ttl=60, wait=10)
    finally:
        releaser.join()
    elapsed = time.monotonic() - started
    assert waited.token == holder.token + 1 and waited.member == "refund-bot"
    assert 0.15 <= elapsed < 5


def test_waiting_succeeds_when_the_clock_expires_the_holder(acme: Charter,
                                                            clock: ManualClock):
    holder = acme.acquire_lease("Customer::42", "support-bot", ttl=30)
    mover = threading.Timer(0.2, clock.advance, (timedelta(seconds=31),))
    mover.start()
    try:
        waited = acme.acquire_lease("Customer::42", "refund-bot", ttl=60, wait=10)
    finally:
        mover.join()
    assert waited.token == holder.token + 1
    assert lease_kinds(acme)[-2:] == ["lease.expired", "lease.acquired"]


def test_waiting_fails_when_the_holder_stays(acme: Charter):
    holder = acme.acquire_lease("Customer::42", "support-bot", ttl=60)
    before = len(acme.events())
    started = time.monotonic()
    with pytest.raises(LeaseHeld, match=r"support-bot .*waited 0.3s") as held:
        acme.acquire_lease("Customer::42", "refund-bot", ttl=60, wait=0.3)
    assert time.monotonic() - started >= 0.3
    assert held.value.details["holders"][0]["expires_at"] == holder.expires_at
    assert len(acme.events()) == before


def test_a_member_the_policy_does_not_permit_is_refused_and_nothing_changes(acme: Charter):
    acme.acquire_lease("Customer::1", "support-bot", ttl=60)
    before = (len(acme.events()), lease_tables(acme))
    with pytest.raises(Forbidden, match="no policy permits buyer-bot-1 to lease") as refused:
        acme.acquire_lease("Vendor::globex", "buyer-bot-1", ttl=60)
    assert refused.value.details["outcome"] == "deny"
    with pytest.raises(Forbidden, match="Payroll"):
        acme.acquire_lease("Payroll::2026-11", "ap-bot-1", ttl=60)
    for bad in ({"resource": "nonsense"}, {"member": "nobody"}, {"mode": "forever"},
                {"ttl": 0}, {"ttl": -5}, {"ttl": True}, {"ttl": timedelta(days=400)},
                {"wait": -1}, {"wait": float("nan")}):
        args: dict[str, Any] = {"resource": "Customer::2", "member": "support-bot",
                                "ttl": 60, **bad}
        with pytest.raises(InvalidInput):
            acme.acquire_lease(args.pop("resource"), args.pop("member"), **args)
    assert (len(acme.events()), lease_tables(acme)) == before


def test_an_escalation_names_its_approvers_and_policy_changes_apply_at_once(
        acme: Charter, workspace: Path):
    with pytest.raises(Forbidden):
        acme.acquire_lease("Vendor::globex", "james.liu", ttl=60)
    (workspace / "policies" / "vendor_leases.cedar").write_text(
        '@id("managers-lease-vendors")\n'
        'permit (principal in Role::"manager", action == Action::"lease", '
        'resource is Vendor);\n', encoding="utf-8")
    acme.load_policies(workspace / "policies")
    granted = acme.acquire_lease("Vendor::globex", "james.liu", ttl=60)
    assert granted.token == 1
    (event,) = acme.events(kind="lease.acquired")
    assert event.payload is not None
    assert event.payload["policies"] == ["managers-lease-vendors"]
    with pytest.raises(Forbidden, match=r"without approval from james\.liu") as refused:
        acme.acquire_lease("Vendor::umbrella-supplies", "buyer-bot-1", ttl=60)
    assert refused.value.details["approvers"] == ["james.liu"]
    assert acme.approvals() == []  # a refused lease opens nothing


def test_governance_is_decided_once_per_authority_snapshot(acme: Charter,
                                                           monkeypatch: pytest.MonkeyPatch):
    decided: list[int] = []
    original = Authority.decide

    def counting(self: Authority, *args: Any, **kwargs: Any) -> Any:
        decided.append(id(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Authority, "decide", counting)
    for _ in range(20):
        lease = acme.acquire_lease("Customer::5", "support-bot", ttl=60)
        acme.release_lease(lease.id, "support-bot")
    assert 1 <= len(decided) < 20
    assert len(decided) == len(set(decided))  # at most once per snapshot


def test_renew_and_release_belong_to_the_holder(acme: Charter, clock: ManualClock):
    lease = acme.acquire_lease("Customer::3", "support-bot", ttl=60)
    clock.advance(timedelta(seconds=50))
    renewed = acme.renew_lease(lease.id, "support-bot", ttl=timedelta(minutes=2))
    assert renewed.expires_at > lease.expires_at and renewed.token == lease.token
    assert acme.lease(lease.id) == renewed
    with pytest.raises(Forbidden, match="held by support-bot"):
        acme.renew_lease(lease.id, "refund-bot", ttl=60)
    with pytest.raises(Forbidden, match="only its holder may release"):
        acme.release_lease(lease.id, "refund-bot")
    with pytest.raises(NotFound, match="no live lease"):
        acme.release_lease("no-such-lease", "support-bot")
    clock.advance(timedelta(minutes=3))
    before = len(acme.events())
    with pytest.raises(Conflict, match=r"expired .* cannot be renewed"):
        acme.renew_lease(lease.id, "support-bot", ttl=60)
    assert len(acme.events()) == before
    released = acme.release_lease(lease.id, "support-bot")
    assert released == renewed
    with pytest.raises(NotFound):
        acme.release_lease(lease.id, "support-bot")


def test_release_task_leases_releases_only_that_tasks_live_leases(acme: Charter,
                                                                  clock: ManualClock):
    task = acme.submit_task("ticket_triage", "Customer::11", requester="ben.kowalski")
    other = acme.submit_task("ticket_triage", "Customer::12", requester="ben.kowalski")
    live = acme.acquire_lease("Customer::11", "triage-bot", ttl=600, task_id=task.id)
    short = acme.acquire_lease("Sku::1", "triage-bot", ttl=10, task_id=task.id)
    unrelated = acme.acquire_lease("Customer::12", "triage-bot", ttl=600, task_id=other.id)
    clock.advance(timedelta(seconds=20))
    with acme.store.transaction() as conn:
        released = leases.release_task_leases(conn, acme.ledger, clock, task.id,
                                              "task failed: supplier down")
    assert released == [live]
    ended = {e.payload["id"]: e for e in acme.events() if e.payload and e.kind in (
        "lease.released", "lease.expired")}
    assert ended[live.id].kind == "lease.released" and ended[live.id].actor == "charter"
    assert ended[live.id].payload["reason"] == "task failed: supplier down"
    assert ended[short.id].kind == "lease.expired"
    assert [lease.id for lease in acme.leases()] == [unrelated.id]
    with acme.store.transaction() as conn:
        assert leases.release_task_leases(conn, acme.ledger, clock, task.id, "again") == []
    acme.cancel_task(other.id, actor="ben.kowalski")
    with pytest.raises(Conflict, match="cancelled"):
        acme.acquire_lease("Customer::13", "triage-bot", ttl=60, task_id=other.id)
    with pytest.raises(NotFound):
        acme.acquire_lease("Customer::13", "triage-bot", ttl=60, task_id="no-such-task")


def test_listing_filters_by_member_and_resource(acme: Charter, clock: ManualClock):
    a = acme.acquire_lease("Customer::1", "support-bot", ttl=60)
    b = acme.acquire_lease("Customer::2", "refund-bot", ttl=60)
    c = acme.acquire_lease("Sku::2", "refund-bot", mode="shared", ttl=120)
    assert [lease.id for lease in acme.leases()] == [a.id, b.id, c.id]
    assert [lease.id for lease in acme.leases(member="support-bot")] == [a.id]
    assert [lease.id for lease in acme.leases(member="refund-bot")] == [b.id, c.id]
    assert [lease.id for lease in acme.leases(resource="customer:2")] == [b.id]
    clock.advance(timedelta(seconds=61))
    assert [lease.id for lease in acme.leases()] == [c.id]  # lapsed leases do not count
    with pytest.raises(InvalidInput):
        acme.leases(resource="not a resource")


def test_every_change_is_an_event_and_a_replay_rebuilds_the_tables(acme: Charter,
                                                                   clock: ManualClock):
    task = acme.submit_task("ticket_triage", "Customer::21", requester="ben.kowalski")
    kept = acme.acquire_lease("Customer::21", "triage-bot", ttl=600, task_id=task.id)
    shared = [acme.acquire_lease("Sku::4", member, mode="shared", ttl=60)
              for member in ("pricing-bot", "nina.kapoor")]
    acme.renew_lease(kept.id, "triage-bot", ttl=900)
    acme.release_lease(shared[0].id, "pricing-bot")
    clock.advance(timedelta(seconds=120))
    acme.acquire_lease("Sku::4", "priya.raman", ttl=30)  # expires nina's first
    gone = acme.acquire_lease("Customer::22", "support-bot", ttl=10)
    clock.advance(timedelta(seconds=11))
    acme.expire_leases()
    with acme.store.transaction() as conn:
        leases.release_task_leases(conn, acme.ledger, clock, task.id, "task failed")
    assert lease_kinds(acme) == [
        "lease.acquired", "lease.acquired", "lease.acquired", "lease.renewed",
        "lease.released", "lease.expired", "lease.acquired", "lease.acquired",
        "lease.expired", "lease.released"]
    before = lease_tables(acme)
    assert before[1] == sorted([("Customer::21", 1), ("Sku::4", 3), ("Customer::22", 1)],
                               key=repr)
    assert gone.id not in [row[0] for row in before[0]]
    assert acme.verify_ledger().ok
    acme.rebuild_read_tables()
    assert lease_tables(acme) == before
    assert acme.verify_ledger().ok
