"""Several processes with several worker threads claim from one PostgreSQL: every task
is completed exactly once and none is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from charter import Settings, tasks
from charter.system import open_charter

TASKS = 5000
PROCESSES = 2
THREADS = 4

ORG = """\
org: {id: pool, name: Claim pool}
departments: {ops: Operations}
skills: {work: Work}
actions: {work.do: Do work}
members:
  - {id: boss, kind: human, department: ops}
  - {id: worker, kind: ai, department: ops, reports_to: boss, skills: {work: 0.9},
     capacity: 100000}
task_types:
  - {id: job, action: work.do, skills: [work], value: 1, timeout: 1h, lease: 10m}
"""

WORKER = textwrap.dedent("""
    import sys, threading
    from charter import Settings, tasks
    from charter.system import open_charter

    url = sys.argv[1]
    system = open_charter(url, settings=Settings(secret="claims", auto_migrate=False))
    done = []

    def work():
        while (claim := system.claim_next("worker")) is not None:
            system.complete_task(claim.task.id, member="worker", fencing=claim.fencing)
            done.append(claim.task.id)

    threads = [threading.Thread(target=work) for _ in range(int(sys.argv[2]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    system.close()
    print(len(done))
""")


@pytest.mark.slow
def test_two_processes_claim_every_task_exactly_once(db_url: str, tmp_path: Path):
    if not db_url.startswith("postgresql"):
        pytest.skip("concurrent claiming across processes is a PostgreSQL claim")
    (tmp_path / "policies").mkdir()
    (tmp_path / "charter.yaml").write_text(ORG, encoding="utf-8")
    settings = Settings(secret="claims")
    with open_charter(db_url, tmp_path / "charter.yaml", settings=settings) as system:
        org = system.org
        for start in range(0, TASKS, 500):  # set-up in a few transactions, not 10,000
            with system.store.transaction() as conn:
                for _ in range(start, start + 500):
                    task = tasks.submit(conn, system.ledger, system.clock, org,
                                        task_type="job", subject="work:1", requester="boss")
                    tasks.assign(conn, system.ledger, org, task.id, "worker", actor="boss")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, db_url, str(THREADS)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=environment) for _ in range(PROCESSES)]
    results = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, errors) in zip(workers, results, strict=True):
        assert worker.returncode == 0, errors
    counts = [int(out.strip().splitlines()[-1]) for out, _ in results]
    assert sum(counts) == TASKS and all(count > 0 for count in counts)
    with open_charter(db_url, settings=settings) as system:
        states = Counter(task.state for task in system.tasks(limit=TASKS + 10))
        assert states == {"done": TASKS}
        completed = Counter(e.payload["task"] for e in system.events(kind="task.completed")
                            if e.payload)
        assert len(completed) == TASKS and set(completed.values()) == {1}
        assert system.verify_ledger().ok
