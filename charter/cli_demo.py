"""`charter demo`: a simulated month of Acme's work, learned allocation against
round_robin, and the report; then, with `--serve`, the dashboard on the result."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from charter.cli import app, example_dir, fail, open_system, out
from charter.demo import simulation, workspace
from charter.demo.report import render, shown_url
from charter.demo.results import MonthResult
from charter.demo.runs import Run, run_both
from charter.errors import CharterError

BASELINE = "round_robin"
REPORT_WIDTH = 120
DASHBOARD_MEMBER = "dana.whitfield"
"""Whose admin token `--serve` prints (the CEO sees everything)."""


@app.command("demo")
def demo(
    tasks: Annotated[int, typer.Option(
        "--tasks", min=8, help="Tasks in the simulated month (every task type at least "
                               "once).")] = simulation.DEFAULT_TASKS,
    seed: Annotated[int, typer.Option(
        "--seed", help="Seed of the month's tasks and of the hidden truth about who does "
                       "what well.")] = 1,
    db: Annotated[str | None, typer.Option(
        "--db", help="Database of the learned run (default: charter.db in the workspace); "
                     "it must be empty.", show_default=False)] = None,
    directory: Annotated[Path, typer.Option(
        "--workspace", help="Where to put the org, the databases and the comparison run "
                            "(a directory a previous demo made is reused).")]
    = Path("charter-demo"),
    serve: Annotated[bool, typer.Option(
        "--serve", help="Then serve the API and dashboard on the learned run's database "
                        "(prints the URL and an admin token).")] = False,
    host: Annotated[str, typer.Option(help="With --serve: address to listen on.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="With --serve: port.")] = 8080,
) -> None:
    """Run a simulated month of Acme's work through Charter (real allocator, workers,
    action gate, approvals, budgets, proposals and ledger; simulated agents and people),
    once with the learned allocator and once with round_robin on the same seed, and
    report what the allocator learned and how the two compare."""
    directory = directory.resolve()
    if db is not None:
        _check_empty(db)  # before the workspace is touched: a refusal changes nothing
    try:
        org_file = workspace.prepare(directory, example_dir())
        baseline_org = workspace.copy_org(example_dir(), directory / "round-robin")
    except CharterError as error:
        fail(error.message)
    learned_db = db or f"sqlite:///{directory / 'charter.db'}"
    baseline_db = f"sqlite:///{directory / 'round-robin' / 'charter.db'}"
    start = (datetime.now(UTC) - timedelta(days=30)).replace(minute=0, second=0,
                                                             microsecond=0)
    plan = simulation.Plan(start, tasks=tasks, seed=seed)
    runs = (Run(plan, learned_db, org_file),
            Run(simulation.Plan(start, tasks=tasks, seed=seed, strategy=BASELINE),
                baseline_db, baseline_org))
    out.print(f"Simulating a month of Acme's work ({tasks} tasks, seed {seed}) twice, in "
              f"parallel: with the learned allocator and with {BASELINE}. Workspace: "
              f"{directory}", highlight=False)
    began = time.monotonic()
    try:
        learned, baseline = _run_with_live_view(*runs)
    except CharterError as error:
        fail(error.message)
    # Piped to a file the report keeps a readable width rather than the 80 columns Rich
    # assumes off a terminal.
    (out if out.is_terminal else Console(width=REPORT_WIDTH)).print(render(learned, baseline))
    out.print(f"\nBoth months simulated in {time.monotonic() - began:.0f} s. The learned "
              f"run's database: {shown_url(learned_db)}", highlight=False)
    if not (learned.ledger_ok and baseline.ledger_ok):
        fail("a ledger did not verify (see above)")
    if serve:
        _serve(learned_db, host, port)
        return
    shown = shown_url(learned_db)
    out.print(f"Next, the dashboard on this month: `charter tokens create --member "
              f"{DASHBOARD_MEMBER} --admin --db {shown}`, then `charter serve --db {shown}` "
              "(or run the demo with --serve); see docs/getting-started.md.", highlight=False)


def _run_with_live_view(learned: Run, baseline: Run) -> tuple[MonthResult, MonthResult]:
    """Both runs, with a progress bar each: the simulated day, tasks done, failed and
    waiting."""
    view = Progress(TextColumn("{task.description:<12}"), BarColumn(),
                    TextColumn("day {task.completed:>4.1f}/{task.total:.0f}"),
                    TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                    console=Console(stderr=True))
    bars: dict[str, TaskID] = {
        run.plan.strategy: view.add_task(run.plan.strategy, total=run.plan.days,
                                         counts="starting…")
        for run in (learned, baseline)}

    def show(progress: simulation.Progress) -> None:
        view.update(bars[progress.strategy], completed=progress.day, counts=(
            f"submitted {progress.submitted}/{progress.total}  done {progress.done}  "
            f"failed {progress.failed}  waiting {progress.waiting}"))

    with view:
        return run_both(learned, baseline, show)


def _check_empty(db: str) -> None:
    """Refuse a database that already holds an org (the demo writes a month into it)."""
    with open_system(db) as system:
        if system.current_org() is not None:
            fail(f"{shown_url(db)} already holds an org: the demo needs an empty database "
                 "(leave out --db to use one in the workspace)")


def _serve(db: str, host: str, port: int) -> None:
    from charter.cli_serve import serve

    with open_system(db) as system:
        made = system.create_token(DASHBOARD_MEMBER, admin=True, actor="charter-demo")
    out.print(f"\nDashboard: http://{host}:{port}/  (API: http://{host}:{port}/docs)\n"
              f"Sign in as {DASHBOARD_MEMBER} (admin) with this token, shown once:",
              highlight=False)
    print(made.secret, flush=True)
    out.print("Ctrl-C stops the server.")
    serve(host=host, port=port, workers=1, db=db)
