"""The running server under schemathesis: thousands of generated requests, as a member
and as an admin, and not one 5xx; every response (errors included, in their one shape)
matches the OpenAPI document."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter import Settings
from charter.store import open_store
from charter.system import Charter
from tests.engines.servers import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
ORG = ROOT / "examples" / "acme" / "charter.yaml"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`charter serve` on a populated SQLite database; its URL and two tokens."""
    db = f"sqlite:///{tmp_path / 'charter.db'}"
    settings = Settings(secret="fuzz")
    with Charter(open_store(db, settings), settings) as system:
        system.load_org(ORG)
        tokens = {"member": system.create_token("james.liu").secret,
                  "admin": system.create_token("dana.whitfield", admin=True).secret}
        for amount in (100, 900, 8000):
            system.submit_task("purchase_order", "vendor:globex",
                               {"vendor": "Vendor::globex", "amount": amount},
                               requester="james.liu", dispatch=True)
        system.authorize("buyer-bot-1", "purchase.create", "Vendor::globex",
                         {"amount": 8000})
    port = free_port()
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")},
                   "CHARTER_SECRET": "fuzz", "CHARTER_RATE_LIMIT": "0"}
    server = subprocess.Popen([sys.executable, "-m", "charter", "serve", "--db", db,
                               "--port", str(port)], cwd=ROOT, env=environment)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        yield base, tokens
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("who", ["member", "admin"])
def test_generated_requests_never_fail_the_server(served, who: str, tmp_path: Path):
    base, tokens = served
    command = [shutil.which("schemathesis") or "schemathesis", "run",
               f"{base}/openapi.json", "--header", f"Authorization: Bearer {tokens[who]}",
               "--checks", "not_a_server_error,response_schema_conformance",
               "--max-examples", "15", "--seed", "1"]
    ran = subprocess.run(command, capture_output=True, text=True, timeout=1200,
                         cwd=tmp_path, check=False)
    summary = ran.stdout[-3000:]
    assert ran.returncode == 0, summary
    counted = re.search(r"(\d+) generated, (\d+) passed", ran.stdout)
    assert counted is not None, summary
    generated, passed = int(counted.group(1)), int(counted.group(2))
    assert generated >= 1000 and passed == generated, summary
