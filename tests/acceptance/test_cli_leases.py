"""`charter leases list` and `charter leases release` as subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from charter import Settings
from charter.leases import Lease
from charter.system import open_charter
from tests.acceptance.test_cli import run

WIDE = {"COLUMNS": "200"}


@pytest.fixture
def held(loaded: Path) -> tuple[Path, list[Lease]]:
    """A workspace with the example org loaded and three leases taken in-process."""
    workspace = loaded
    # The same database and secret file the commands use (no CHARTER_* overrides).
    settings = Settings(db=f"sqlite:///{workspace / 'charter.db'}", secret="",
                        secret_file=None, org=workspace / "charter.yaml")
    with open_charter(settings.db, settings=settings) as system:
        taken = [system.acquire_lease("Customer::42", "support-bot", ttl=3600),
                 system.acquire_lease("Sku::9", "pricing-bot", mode="shared", ttl=3600),
                 system.acquire_lease("Sku::9", "nina.kapoor", mode="shared", ttl=3600)]
    return workspace, taken


def test_list_shows_live_leases_filtered_by_member_and_resource(
        held: tuple[Path, list[Lease]]):
    workspace, (customer, pricing, nina) = held
    listed = run("leases", "list", cwd=workspace, env=WIDE)
    assert listed.returncode == 0, listed.stderr
    for lease in (customer, pricing, nina):
        assert lease.id[:8] in listed.stdout and lease.member in listed.stdout
    assert "exclusive" in listed.stdout and "shared" in listed.stdout
    mine = run("leases", "list", "--member", "pricing-bot", "--json", cwd=workspace)
    assert [lease["id"] for lease in json.loads(mine.stdout)] == [pricing.id]
    on_sku = run("leases", "list", "--resource", "sku:9", "--json", cwd=workspace)
    assert [(lease["member"], lease["token"]) for lease in json.loads(on_sku.stdout)] == [
        ("pricing-bot", 1), ("nina.kapoor", 2)]
    nobody = run("leases", "list", "--member", "refund-bot", cwd=workspace, env=WIDE)
    assert nobody.returncode == 0 and "No live leases match" in nobody.stdout
    bad = run("leases", "list", "--resource", "not-a-resource", cwd=workspace, env=WIDE)
    assert bad.returncode == 1 and "not a resource that can be leased" in bad.stderr


def test_release_by_the_holder_only(held: tuple[Path, list[Lease]]):
    workspace, (customer, _, _) = held
    stranger = run("leases", "release", customer.id, "--member", "refund-bot",
                   cwd=workspace, env=WIDE)
    assert stranger.returncode == 1
    assert "held by support-bot" in stranger.stderr and "only its holder" in stranger.stderr
    unknown = run("leases", "release", "ffffffff", "--member", "support-bot",
                  cwd=workspace, env=WIDE)
    assert unknown.returncode == 1 and "no held lease matches" in unknown.stderr
    missing = run("leases", "release", customer.id, cwd=workspace)
    assert missing.returncode == 2  # --member is required
    released = run("leases", "release", customer.id[:8], "--member", "support-bot",
                   cwd=workspace, env=WIDE)
    assert released.returncode == 0, released.stderr
    assert f"Released lease {customer.id} on Customer::42" in released.stdout
    after = run("leases", "list", "--json", cwd=workspace)
    assert customer.id not in after.stdout and len(json.loads(after.stdout)) == 2
    again = run("leases", "release", customer.id, "--member", "support-bot", cwd=workspace)
    assert again.returncode == 1
    exported = run("ledger", "export", cwd=workspace).stdout
    assert exported.count('"kind": "lease.acquired"') == 3
    assert exported.count('"kind": "lease.released"') == 1
    assert run("ledger", "verify", cwd=workspace).returncode == 0
