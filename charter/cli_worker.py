"""`charter worker`: run an AI member's tasks with its engine."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Annotated

import typer

from charter.cli import DbOption, app, fail, open_system, out
from charter.errors import CharterError
from charter.worker import Worker, WorkerCounts


@app.command("worker")
def worker(member: Annotated[str, typer.Option(help="The AI member whose tasks to run.")],
           concurrency: Annotated[int, typer.Option(
               min=1, help="Tasks run at once (at most the member's capacity helps).")] = 1,
           poll: Annotated[float, typer.Option(
               min=0.01, help="Seconds to wait between claims when idle.")] = 0.5,
           grace: Annotated[float, typer.Option(
               min=0, help="On SIGTERM, seconds running tasks may take to finish before "
                           "they are released.")] = 30.0,
           max_tasks: Annotated[int | None, typer.Option(
               min=1, help="Stop after claiming this many tasks.")] = None,
           until_idle: Annotated[bool, typer.Option(
               help="Stop when nothing is running and nothing is left to claim.")] = False,
           db: DbOption = None) -> None:
    """Claim the member's tasks, run its engine, complete or fail them with their
    fencing tokens; pause them for approval when an action escalates. SIGTERM or Ctrl-C
    stops claiming, lets running tasks finish within --grace and releases the rest."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("charter").setLevel(logging.INFO)
    with open_system(db) as system:
        try:
            running = Worker(system, member, concurrency=concurrency, poll_seconds=poll,
                             grace_seconds=grace)
        except CharterError as error:
            fail(str(error))
        counts = asyncio.run(_until_signalled(running, max_tasks, until_idle))
    out.print(f"{member}: claimed {counts.claimed}, completed {counts.completed}, "
              f"failed {counts.failed}, paused for approval {counts.paused}, "
              f"released {counts.released}, refused (lease lost) {counts.lost}",
              soft_wrap=True)


async def _until_signalled(running: Worker, max_tasks: int | None,
                           until_idle: bool) -> WorkerCounts:
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop_signal, running.stop)
    return await running.run(max_tasks=max_tasks, until_idle=until_idle)
