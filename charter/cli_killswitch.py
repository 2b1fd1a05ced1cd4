"""The kill switch on the command line: `charter members suspend|resume`,
`charter actions freeze|unfreeze|stopped`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from charter.cli import ActorOption, DbOption, app, open_system, out
from charter.cli_work import members_app

actions_app = typer.Typer(help="Freeze an action for everyone, and lift the freeze.",
                          no_args_is_help=True)
app.add_typer(actions_app, name="actions")

ReasonOption = Annotated[str, typer.Option(help="Why (recorded in the ledger).")]


@members_app.command("suspend")
def members_suspend(member: str, reason: ReasonOption, actor: ActorOption = "system",
                    db: DbOption = None) -> None:
    """Stop a member now: no new task, its requests denied, its tasks moved on by their
    fallback, its leases released, the approvals it asked for withdrawn."""
    with open_system(db) as system:
        done = system.suspend_member(member, reason=reason, by=actor)
    out.print(f"{member} suspended: {len(done.tasks)} task(s) moved on, "
              f"{done.leases_released} lease(s) released, "
              f"{len(done.approvals_withdrawn)} approval(s) withdrawn", soft_wrap=True)
    for task in done.tasks:
        out.print(f"  task {task.id}: {task.state}"
                  f"{' → ' + task.assignee if task.assignee else ''} ({task.reason})",
                  soft_wrap=True)


@members_app.command("resume")
def members_resume(member: str, actor: ActorOption = "system", db: DbOption = None) -> None:
    """Lift a member's suspension."""
    with open_system(db) as system:
        system.resume_member(member, by=actor)
    out.print(f"{member} resumed")


@actions_app.command("freeze")
def actions_freeze(action: str, reason: ReasonOption, actor: ActorOption = "system",
                   db: DbOption = None) -> None:
    """Deny ACTION to everyone (e.g. payment.release) until it is unfrozen."""
    with open_system(db) as system:
        system.freeze_action(action, reason=reason, by=actor)
    out.print(f"{action} frozen for everyone")


@actions_app.command("unfreeze")
def actions_unfreeze(action: str, actor: ActorOption = "system", db: DbOption = None) -> None:
    """Lift the freeze on ACTION."""
    with open_system(db) as system:
        system.unfreeze_action(action, by=actor)
    out.print(f"{action} unfrozen")


@actions_app.command("stopped")
def actions_stopped(db: DbOption = None) -> None:
    """The suspended members and the frozen actions, with who stopped them and why."""
    with open_system(db) as system:
        suspended, frozen = system.stops()
    table = Table("stopped", "kind", "why", "by", "at")
    for stop in suspended:
        table.add_row(stop.target, "member suspended", stop.reason, stop.by, stop.at)
    for stop in frozen:
        table.add_row(stop.target, "action frozen", stop.reason, stop.by, stop.at)
    out.print(table)
