"""Two runs of the same month side by side, each in a process of its own.

The learned allocator's run and the baseline's run share nothing but the plan (seed,
tasks, start): each has its own workspace, database and world, so they run in parallel
on two cores. Each process reports its progress and, at the end, its result (or the
error that stopped it) on one queue.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charter.demo.results import MonthResult
from charter.demo.simulation import Plan, Progress, simulate
from charter.errors import CharterError

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Run:
    """One run: its plan, database and org file."""

    plan: Plan
    database: str
    org_file: Path


class RunFailed(CharterError):
    """A run of the demo stopped with an error."""

    status = 500


def run_both(first: Run, second: Run,
             on_progress: Callable[[Progress], None]) -> tuple[MonthResult, MonthResult]:
    """Run both in parallel processes; return their results in the same order."""
    context = multiprocessing.get_context("spawn")
    messages: Any = context.Queue()
    processes = [context.Process(target=_run_in_child, args=(run, messages), daemon=True,
                                 name=f"charter-demo-{run.plan.strategy}")
                 for run in (first, second)]
    for process in processes:
        process.start()
    results: dict[str, MonthResult] = {}
    try:
        while len(results) < len(processes):
            try:
                kind, strategy, payload = messages.get(timeout=POLL_SECONDS)
            except queue.Empty:
                _check_alive(processes, results)
                continue
            if kind == "progress":
                on_progress(payload)
            elif kind == "result":
                results[strategy] = payload
            else:
                raise RunFailed(f"the {strategy} run failed:\n{payload}")
    finally:
        for process in processes:
            if process.is_alive() and process.name.removeprefix("charter-demo-") \
                    not in results:
                process.terminate()
            process.join(timeout=10)
    return results[first.plan.strategy], results[second.plan.strategy]


def _check_alive(processes: list[Any], results: dict[str, MonthResult]) -> None:
    for process in processes:
        strategy = process.name.removeprefix("charter-demo-")
        if strategy not in results and not process.is_alive():
            raise RunFailed(f"the {strategy} run ended without a result "
                            f"(exit code {process.exitcode})")


def _run_in_child(run: Run, messages: Any) -> None:
    strategy = run.plan.strategy
    try:
        result = simulate(run.plan, run.database, run.org_file,
                          lambda progress: messages.put(("progress", strategy, progress)))
        messages.put(("result", strategy, result))
    except BaseException:  # reported to the parent, which stops the demo with it
        messages.put(("error", strategy, traceback.format_exc()))
