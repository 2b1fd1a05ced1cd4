"""What does the HTTP API cost? Tasks through `charter serve` against the same path
in-process.

The claim: submit → claim → complete over HTTP, one server process (`charter serve`,
uvicorn) on a fresh SQLite file, at least 200 tasks/s on this machine. Each task is three
requests by a client holding tokens for the example org's members: `POST /v1/tasks`
(with `dispatch: true`: the allocator assigns it in the same transaction), `POST
/v1/claims` with the assignee's token, `POST /v1/tasks/{id}/complete` with the claim's
fencing token. `--clients` concurrent clients (asyncio + httpx, keep-alive) share the
work. Baseline, in the same run: the same three verbs called in-process on another
fresh SQLite file (`Charter.submit_task(dispatch=True)`, `claim_next`,
`complete_task`), one task after another. Both runs end with the ledger verified and
every task done exactly once.

Run:  python benchmarks/http_api.py [--tasks N] [--clients N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

import charter
from charter.system import Charter

ROOT = Path(__file__).resolve().parent.parent
ORG = ROOT / "examples" / "acme" / "charter.yaml"
TASK = {"type": "purchase_order", "subject": "vendor:globex",
        "payload": {"vendor": "Vendor::globex", "amount": 100}, "dispatch": True}
TARGET = 200.0


def in_process(folder: Path, count: int) -> float:
    with charter.open(f"sqlite:///{folder / 'inproc.db'}", ORG) as system:
        started = time.perf_counter()
        for _ in range(count):
            task = system.submit_task(TASK["type"], TASK["subject"], TASK["payload"],
                                      requester="james.liu", dispatch=True)
            assert task.assignee is not None, task.reason
            claim = system.claim_next(task.assignee)
            assert claim is not None
            system.complete_task(claim.task.id, member=task.assignee, fencing=claim.fencing)
        elapsed = time.perf_counter() - started
        check(system, count)
    return count / elapsed


def check(system: Charter, count: int) -> None:
    done = system.tasks(state="done", limit=count + 1)
    assert len(done) == count, f"{len(done)} of {count} tasks done"
    assert system.verify_ledger().ok


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(db: str, port: int) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "CHARTER_RATE_LIMIT": "0"}
    server = subprocess.Popen([sys.executable, "-m", "charter", "serve", "--db", db,
                               "--port", str(port)], env=environment, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not become ready")


async def client(base: str, tokens: dict[str, str], count: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        requester = {"Authorization": f"Bearer {tokens['james.liu']}"}
        for _ in range(count):
            submitted = (await http.post("/v1/tasks", json=TASK, headers=requester)).json()
            holder = {"Authorization": f"Bearer {tokens[submitted['assignee']]}"}
            claimed = await http.post("/v1/claims", headers=holder)
            assert claimed.status_code == 200, claimed.text
            claim = claimed.json()
            done = await http.post(f"/v1/tasks/{claim['task']['id']}/complete",
                                   json={"fencing": claim["fencing"]}, headers=holder)
            assert done.status_code == 200, done.text


def over_http(folder: Path, count: int, clients: int) -> float:
    db = f"sqlite:///{folder / 'http.db'}"
    with charter.open(db, ORG) as system:
        tokens = {m.id: system.create_token(m.id).secret for m in system.org.spec.members}
    port = free_port()
    server = start_server(db, port)
    try:
        share = [count // clients + (1 if n < count % clients else 0) for n in range(clients)]
        started = time.perf_counter()
        asyncio.run(_all(f"http://127.0.0.1:{port}", tokens, share))
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    with charter.open(db) as system:
        check(system, count)
    return count / elapsed


async def _all(base: str, tokens: dict[str, str], share: list[int]) -> None:
    await asyncio.gather(*(client(base, tokens, n) for n in share))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        os.environ["CHARTER_SECRET"] = "benchmark"
        local = in_process(folder, options.tasks)
        remote = over_http(folder, options.tasks, options.clients)
    result: dict[str, Any] = {"tasks": options.tasks, "clients": options.clients,
                              "http_tasks_per_s": round(remote, 1),
                              "in_process_tasks_per_s": round(local, 1),
                              "ratio": round(remote / local, 2), "target": TARGET,
                              "holds": remote >= TARGET}
    if options.json:
        print(json.dumps(result))
        return
    print(f"submit → claim → complete, {options.tasks} tasks, SQLite")
    print(f"  over HTTP ({options.clients} clients, 1 server process) "
          f"{remote:8.1f} tasks/s   target ≥ {TARGET:.0f}   "
          f"{'holds' if remote >= TARGET else 'does NOT hold'}")
    print(f"  in-process (the same verbs)            {local:8.1f} tasks/s")
    print(f"  ratio HTTP / in-process                {remote / local:8.2f}x")


if __name__ == "__main__":
    main()
