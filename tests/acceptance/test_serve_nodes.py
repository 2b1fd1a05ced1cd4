"""Two `charter serve` processes on one PostgreSQL behave as one system: 4,000 tasks
submitted, claimed and completed through both by 8 concurrent clients, each completed
exactly once, and the ledger verifies."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from charter import Settings
from charter.store import open_store
from charter.system import Charter
from tests.engines.servers import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
ORG = ROOT / "examples" / "acme" / "charter.yaml"
TASKS, CLIENTS = 4000, 8
TASK = {"type": "ticket_triage", "subject": "Customer::7", "payload": {}, "dispatch": True}


@pytest.fixture
def nodes(db_url: str) -> Iterator[tuple[Charter, list[str]]]:
    settings = Settings(secret="nodes-secret")
    system = Charter(open_store(db_url, settings), settings)
    system.load_org(ORG)
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")},
                   "CHARTER_SECRET": "nodes-secret", "CHARTER_RATE_LIMIT": "0"}
    ports = [free_port(), free_port()]
    servers = [subprocess.Popen([sys.executable, "-m", "charter", "serve", "--db", db_url,
                                 "--port", str(port)], cwd=ROOT, env=environment)
               for port in ports]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base in bases:
            wait_ready(base)
        yield system, bases
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
        system.close()



async def work(bases: list[str], tokens: dict[str, str], count: int, seed: int) -> None:
    """Submit `count` tasks, claim and complete what is assigned, alternating servers."""
    servers = itertools.cycle(bases[seed % 2:] + bases[:seed % 2])
    async with httpx.AsyncClient(timeout=60) as http:
        for _ in range(count):
            submitted = await http.post(f"{next(servers)}/v1/tasks", json=TASK,
                                        headers=bearer(tokens["ben.kowalski"]))
            assert submitted.status_code == 201, submitted.text
            await claim_and_complete(http, servers, tokens, submitted.json()["assignee"])


async def claim_and_complete(http: httpx.AsyncClient, servers: Iterator[str],
                             tokens: dict[str, str], member: str) -> bool:
    claimed = await http.post(f"{next(servers)}/v1/claims", headers=bearer(tokens[member]))
    if claimed.status_code == 204:  # another client took this member's task first
        return False
    assert claimed.status_code == 200, claimed.text
    claim = claimed.json()
    done = await http.post(f"{next(servers)}/v1/tasks/{claim['task']['id']}/complete",
                           json={"fencing": claim["fencing"]}, headers=bearer(tokens[member]))
    assert done.status_code == 200, done.text
    return True


async def sweep(bases: list[str], tokens: dict[str, str]) -> None:
    """Complete whatever is still assigned (a client that lost a claim race leaves its
    own task to whoever holds that member's queue)."""
    servers = itertools.cycle(bases)
    async with httpx.AsyncClient(timeout=60) as http:
        for member in tokens:
            while await claim_and_complete(http, servers, tokens, member):
                pass


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_servers_on_one_postgresql_complete_every_task_once(nodes):
    system, bases = nodes
    tokens = {m.id: system.create_token(m.id).secret for m in system.org.spec.members}

    async def everyone() -> None:
        await asyncio.gather(*(work(bases, tokens, TASKS // CLIENTS, n)
                               for n in range(CLIENTS)))
        await sweep(bases, tokens)

    asyncio.run(everyone())
    done = system.tasks(state="done", limit=TASKS + 1)
    assert len(done) == TASKS
    with system.store.reading() as conn:
        completions = Counter(event.subject for event in
                              system.ledger.read(conn, kind="task.completed"))
    assert len(completions) == TASKS and set(completions.values()) == {1}
    assert system.verify_ledger().ok
