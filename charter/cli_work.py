"""`charter tasks`, `outcomes` and `members` commands."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from charter.cli import (
    ActorOption,
    DbOption,
    app,
    fail,
    open_system,
    out,
    parse_length,
    unique_id,
)
from charter.system import Charter

tasks_app = typer.Typer(help="Submit and follow tasks.", no_args_is_help=True)
outcomes_app = typer.Typer(help="Record what happened on tasks.", no_args_is_help=True)
members_app = typer.Typer(help="Members' track records.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(outcomes_app, name="outcomes")
app.add_typer(members_app, name="members")


def _json_option(text: str, name: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"{name} is not valid JSON: {error}")
    if not isinstance(value, dict):
        fail(f"{name} must be a JSON object")
    return value


@tasks_app.command("submit")
def tasks_submit(task_type: str, subject: str,
                 payload: Annotated[str, typer.Option(help="JSON object.")] = "{}",
                 priority: Annotated[int, typer.Option()] = 0,
                 deadline: Annotated[str | None, typer.Option(
                     help="How long from now: 4h, 2d …")] = None,
                 db: DbOption = None, actor: ActorOption = "cli") -> None:
    """Queue a task of TASK_TYPE about SUBJECT (e.g. Vendor::globex)."""
    length = None if deadline is None else parse_length(deadline, "--deadline")
    with open_system(db) as system:
        due = None if length is None else system.clock.now() + length
        task = system.submit_task(task_type, subject, _json_option(payload, "--payload"),
                                  requester=actor, priority=priority, deadline=due)
    out.print(f"Queued task {task.id} ({task_type}, {subject}).")


@tasks_app.command("list")
def tasks_list(state: Annotated[str | None, typer.Option()] = None,
               assignee: Annotated[str | None, typer.Option()] = None,
               task_type: Annotated[str | None, typer.Option("--type")] = None,
               limit: Annotated[int, typer.Option(min=1)] = 50,
               db: DbOption = None) -> None:
    """List tasks, most urgent first."""
    with open_system(db) as system:
        found = system.tasks(state=state, assignee=assignee, task_type=task_type,
                             limit=limit)
    table = Table("task", "type", "subject", "state", "assignee", "priority", "attempts",
                  "why")
    for task in found:
        table.add_row(task.id[:8], task.type, task.subject, task.state, task.assignee or "-",
                      str(task.priority), str(task.attempts), task.reason or "")
    out.print(table)


def _task_id(system: Charter, prefix: str) -> str:
    return unique_id(system, "task", prefix)


@tasks_app.command("show")
def tasks_show(task_id: str, db: DbOption = None) -> None:
    """A task and its timeline from the ledger."""
    with open_system(db) as system:
        task = system.task(_task_id(system, task_id))
        timeline = system.events(subject=f"task:{task.id}")
    out.print_json(json.dumps(task.to_json()))
    table = Table("seq", "at", "event", "by", "detail")
    for event in timeline:
        detail = "" if event.payload is None else json.dumps(
            {k: v for k, v in event.payload.items() if k not in ("task", "set")},
            ensure_ascii=False)
        table.add_row(str(event.seq), event.at, event.kind, event.actor, detail[:100])
    out.print(table)


@tasks_app.command("dispatch")
def tasks_dispatch(strategy: Annotated[str | None, typer.Option(
        help="learned (default), round_robin, random, cheapest or best_prior")] = None,
                   db: DbOption = None) -> None:
    """Assign queued tasks to eligible members, most urgent first."""
    with open_system(db) as system:
        assigned = system.dispatch_queued(strategy=strategy)
    for task in assigned:
        out.print(f"{task.id[:8]} {task.type} → {task.assignee}")
    out.print(f"{len(assigned)} tasks assigned.")


@tasks_app.command("explain")
def tasks_explain(task_id: str, db: DbOption = None) -> None:
    """Why the task went to its member, and why each runner-up lost."""
    with open_system(db) as system:
        text = system.explain_task(_task_id(system, task_id))
    out.print(text, highlight=False)


@tasks_app.command("cancel")
def tasks_cancel(task_id: str, reason: Annotated[str, typer.Option()] = "cancelled",
                 db: DbOption = None, actor: ActorOption = "cli") -> None:
    """Cancel an open task."""
    with open_system(db) as system:
        task = system.cancel_task(_task_id(system, task_id), actor=actor, reason=reason)
    out.print(f"Task {task.id} cancelled.")


@tasks_app.command("reviews")
def tasks_reviews(evaluator: Annotated[str | None, typer.Option(
                      help="Only this evaluator's.")] = None,
                  every: Annotated[bool, typer.Option(
                      "--all", help="Reviewed ones too, not only those waiting.")] = False,
                  db: DbOption = None) -> None:
    """Completed tasks sampled for review: an evaluator's queue."""
    with open_system(db) as system:
        found = system.reviews(evaluator=evaluator, status=None if every else "pending")
    table = Table("task", "type", "done by", "evaluator", "sampled at", "requested", "status",
                  "verdict")
    for review in found:
        verdict = "" if review.success is None else (
            f"{'success' if review.success else 'failure'}"
            f"{'' if review.quality is None else f' q={review.quality:.2f}'}"
            f"{'' if review.agreed is None else ' agrees' if review.agreed else ' disagrees'}")
        table.add_row(review.task_id[:8], review.task_type, review.member, review.evaluator,
                      f"{review.rate:.0%} ({review.level})", review.requested_at,
                      review.status, verdict)
    out.print(table)


@tasks_app.command("review")
def tasks_review(task_id: str,
                 success: Annotated[bool, typer.Option("--success/--failure")],
                 by: Annotated[str, typer.Option("--as", help="The reviewer (the task "
                                                             "type's evaluator).")],
                 quality: Annotated[float | None, typer.Option(min=0, max=1)] = None,
                 comment: Annotated[str, typer.Option()] = "",
                 db: DbOption = None) -> None:
    """Record the verdict on a task sampled for review (a verified outcome)."""
    with open_system(db) as system:
        review = system.review_task(_task_id(system, task_id), by=by, success=success,
                                    quality=quality, comment=comment)
    verdict = "success" if success else "failure"
    if review.agreed is None:
        compared = f"{review.member} reported nothing to compare it with"
    else:
        compared = (f"it {'agrees' if review.agreed else 'disagrees'} with "
                    f"{review.member}'s own report")
    out.print(f"Reviewed task {review.task_id}: {verdict}; {compared}.")


@outcomes_app.command("record")
def outcomes_record(task_id: str,
                    success: Annotated[bool, typer.Option("--success/--failure")],
                    verified: Annotated[bool, typer.Option(
                        help="A reviewer's verdict, not a self-report.")] = False,
                    quality: Annotated[float | None, typer.Option(min=0, max=1)] = None,
                    cost: Annotated[float | None, typer.Option(min=0)] = None,
                    db: DbOption = None, actor: ActorOption = "cli") -> None:
    """Record what happened on a task (possibly long after it ended)."""
    with open_system(db) as system:
        outcome = system.record_outcome(_task_id(system, task_id), success=success,
                                        reported_by=actor, verified=verified,
                                        quality=quality, cost=cost)
    out.print(f"Recorded {'success' if outcome.success else 'failure'} for "
              f"{outcome.member} on task {outcome.task_id}"
              f"{' (verified)' if outcome.verified else ''}.")


@members_app.command("stats")
def members_stats(member: str, db: DbOption = None,
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Per task type and engine version: n, success rate with its 95% interval, mean
    cost and duration, autonomy level."""
    with open_system(db) as system:
        records = system.track_record(member)
    if as_json:
        out.print_json(json.dumps([record.to_json() for record in records]))
        return
    table = Table("task type", "engine version", "n", "verified", "success (95%)",
                  "mean cost", "mean duration", "autonomy", "self-report weight",
                  title=f"{member}")
    for record in records:
        table.add_row(record.task_type, record.engine_version, str(record.n),
                      str(record.verified),
                      f"{record.rate:.0%} ({record.low:.0%} to {record.high:.0%})",
                      "-" if record.mean_cost is None else f"{record.mean_cost:,.2f}",
                      "-" if record.mean_duration_s is None
                      else f"{record.mean_duration_s:,.0f}s", record.autonomy,
                      f"{record.self_report_weight:.3g} ({record.agreed}/{record.reviewed} "
                      "reviews agreed)")
    out.print(table)


@members_app.command("breakers")
def members_breakers(member: Annotated[str | None, typer.Argument(
                         help="Only this member's.")] = None,
                     db: DbOption = None,
                     as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Circuit breakers that have opened, per member and engine version: state, since
    when, the end of the cool-down or the probe task, and why."""
    with open_system(db) as system:
        found = system.circuit_breakers(member=member)
    if as_json:
        out.print_json(json.dumps([breaker.to_json() for breaker in found]))
        return
    table = Table("member", "engine version", "state", "since", "until / probe", "why")
    for breaker in found:
        table.add_row(breaker.member, breaker.engine_version, breaker.state,
                      breaker.changed_at, breaker.until or breaker.probe_task or "",
                      str(breaker.evidence.get("reason", "")))
    out.print(table)
