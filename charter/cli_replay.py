"""`charter replay` commands: test a policy set or an allocation strategy against the
recorded history before it goes live."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from charter.cli import ActorOption, DbOption, app, fail, open_system, out
from charter.offpolicy import Estimate, StrategyReplay, replay_strategy
from charter.policy import read_policy_files
from charter.replay import PolicyReplay, replay_policies
from charter.types import parse_duration

replay_app = typer.Typer(help="Test a change against recorded history before it goes live.",
                         no_args_is_help=True)
app.add_typer(replay_app, name="replay")

SinceOption = Annotated[str | None, typer.Option(
    "--since", help="From this time (ISO 8601, e.g. 2026-11-27T09:00Z) or this long ago "
                    "(4h, 2d). Default: the beginning.", show_default=False)]
UntilOption = Annotated[str | None, typer.Option(
    "--until", help="Up to this time (ISO 8601) or this long ago, not included. Default: "
                    "now.", show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
EXAMPLES = 5
"""Changed decisions shown per transition (`--json` lists them all)."""


def parse_moment(text: str | None, option: str, now: datetime) -> datetime | None:
    """A command-line time: ISO 8601 (UTC when it names no zone), or a duration ago."""
    if text is None:
        return None
    try:
        ago = parse_duration(text)
    except ValueError:
        ago = None
    if isinstance(ago, timedelta):
        return now - ago
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option} {text!r} is neither a time (ISO 8601, e.g. 2026-11-27T09:00Z) nor "
             "a duration such as 4h or 2d")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@replay_app.command("policies")
def replay_policies_command(
    candidate: Annotated[Path, typer.Option(
        "--candidate", help="Folder of .cedar files: the policy set to test.",
        show_default=False)],
    since: SinceOption = None, until: UntilOption = None, as_json: JsonOption = False,
    db: DbOption = None, actor: ActorOption = "cli",
) -> None:
    """Decide the recorded requests again under a candidate policy set and report what
    would change. Writes only a `replay.policies` ledger event with the summary."""
    files = read_policy_files(candidate)
    with open_system(db) as system:
        now = system.clock.now()
        report = replay_policies(system, files, parse_moment(since, "--since", now),
                                 parse_moment(until, "--until", now), actor=actor)
    if as_json:
        out.print_json(json.dumps(report.to_json()))
        return
    _print_policy_replay(report, candidate)


def _print_policy_replay(report: PolicyReplay, candidate: Path) -> None:
    window = f"{report.since or 'the beginning'} to {report.until or 'now'}"
    replayed = sum(report.replayed.values())
    out.print(f"Replayed {replayed} of {report.decisions} recorded decisions ({window}) "
              f"under {candidate} (digest {report.candidate_digest[:12]}); "
              f"in force: policy set version {report.policy_version}, org version "
              f"{report.org_version}.", highlight=False)
    if report.skipped:
        out.print("Skipped: " + ", ".join(f"{count} {why}" for why, count
                                          in sorted(report.skipped.items())), highlight=False)
    if report.other_org:
        out.print(f"{report.other_org} replayed decisions were recorded under another org "
                  "version: their changes may come from the org, not the policies.")
    if not report.changes:
        out.print("[green]No decision would change.[/green]")
    else:
        transitions = Table("transition", "decisions")
        for transition, count in report.by_transition().items():
            transitions.add_row(transition, str(count))
        out.print(transitions)
        actions = Table("action", "replayed", "would change")
        for action, counts in report.by_action().items():
            actions.add_row(action, str(counts["replayed"]), str(counts["changed"]))
        out.print(actions)
        out.print(_examples(report))
    out.print(f"Recorded as ledger event {report.event_seq}.")


def _examples(report: PolicyReplay) -> Table:
    table = Table("seq", "member", "action", "resource", "before → after", "why, now",
                  title=f"Examples (at most {EXAMPLES} per transition)")
    shown: dict[str, int] = {}
    for change in report.changes:
        if shown.get(change.transition, 0) >= EXAMPLES:
            continue
        shown[change.transition] = shown.get(change.transition, 0) + 1
        before = change.before + (f" ({', '.join(change.before_approvers)})"
                                  if change.before_approvers else "")
        after = change.after + (f" ({', '.join(change.after_approvers)})"
                                if change.after_approvers else "")
        table.add_row(str(change.seq), change.member, change.action, change.resource,
                      f"{before} → {after}", change.after_reasons[0] if change.after_reasons
                      else "")
    return table


@replay_app.command("strategy")
def replay_strategy_command(
    candidate: Annotated[str, typer.Option(
        "--candidate", help="The allocation strategy to test (learned, greedy, "
                            "round_robin, random, cheapest, best_prior, or one registered).",
        show_default=False)],
    since: SinceOption = None, until: UntilOption = None,
    lambda_cost: Annotated[float, typer.Option(help="λ_cost of the utility.")] = 1.0,
    lambda_time: Annotated[float, typer.Option(help="λ_time of the utility, per second.")]
    = 0.0,
    seed: Annotated[int, typer.Option(help="Seed for strategies that draw.")] = 0,
    as_json: JsonOption = False, db: DbOption = None,
) -> None:
    """Estimate off-policy the utility per task a candidate strategy would have had on
    the recorded assignments, from their outcomes and recorded choice probabilities,
    with a 95% interval, beside what the recorded choices had. Reads only."""
    with open_system(db) as system:
        now = system.clock.now()
        report = replay_strategy(system, candidate, since=parse_moment(since, "--since", now),
                                 until=parse_moment(until, "--until", now),
                                 lambda_cost=lambda_cost, lambda_time=lambda_time, seed=seed)
    if as_json:
        out.print_json(json.dumps(report.to_json()))
        return
    _print_strategy_replay(report)


def _print_strategy_replay(report: StrategyReplay) -> None:
    recorded = ", ".join(f"{name} {count}" for name, count
                         in sorted(report.recorded_strategies.items()))
    table = Table("", "utility per task", "95% interval", "effective records",
                  title=f"Strategy `{report.candidate}` on {report.recorded.records} recorded "
                        f"assignments with outcomes ({recorded})")
    for label, estimate in (("recorded choices", report.recorded),
                            (f"{report.candidate} (doubly robust)", report.doubly_robust),
                            (f"{report.candidate} (self-normalised IPS)",
                             report.self_normalised)):
        table.add_row(label, *_cells(estimate))
    out.print(table)
    out.print(f"The candidate's likeliest choice is the recorded one in "
              f"{report.agreement:.0%} of them.", highlight=False)
    if report.skipped:
        out.print("Skipped: " + ", ".join(f"{count} {why}" for why, count
                                          in sorted(report.skipped.items())), highlight=False)
    if report.doubly_robust.effective_records < 30:
        out.print("[yellow]Few recorded choices are ones the candidate would make: the "
                  "doubly robust estimate leans on the learned model.[/yellow]")


def _cells(estimate: Estimate) -> tuple[str, str, str]:
    if math.isnan(estimate.value):
        return "-", "-", "0"
    return (f"{estimate.value:.4g}", f"{estimate.low:.4g} to {estimate.high:.4g}",
            f"{estimate.effective_records:.0f}")
