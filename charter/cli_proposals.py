"""`charter proposals` commands: propose, list, show, settle."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from charter.cli import DbOption, app, fail, open_system, out
from charter.proposals import Proposal
from charter.system import Charter

proposals_app = typer.Typer(help="Proposals on a subject and key, and how disagreeing "
                                 "ones were resolved.", no_args_is_help=True)
app.add_typer(proposals_app, name="proposals")


def _json_value(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"{name} is not valid JSON: {error}")


def _unique(system: Charter, prefix: str, *, resolution: bool = False) -> str:
    kind = "resolution" if resolution else "proposal"
    matches = (system.find_resolution_ids(prefix) if resolution
               else system.find_proposal_ids(prefix))
    if len(matches) != 1:
        fail(f"{'no' if not matches else 'several'} {kind}s match {prefix!r}"
             + ("" if not matches else ": give more of the id"))
    return matches[0]


def _summary(proposal: Proposal) -> str:
    resolution = proposal.resolution
    if resolution is None:
        return f"Proposal {proposal.id}: {proposal.status}."
    line = (f"Proposal {proposal.id}: {proposal.status} (resolution {resolution.id}, "
            f"rule {resolution.rule}, {resolution.status}")
    if resolution.status == "escalated":
        manager = resolution.evidence.get("manager")
        return (f"{line}; waiting for {manager}, who settles it with: charter proposals "
                f"settle {resolution.id[:8]} PROPOSAL --as {manager}).")
    return f"{line}; winner {resolution.winner})."


@proposals_app.command("propose")
def proposals_propose(
    member: str, subject: Annotated[str, typer.Argument(help="Type::id, e.g. Sku::sku-9")],
    key: str,
    value: Annotated[str, typer.Argument(help="JSON; text that is not JSON is a string.")],
    task_type: Annotated[str, typer.Option("--type", help="The decision's task type.")],
    confidence: Annotated[float | None, typer.Option(min=0, max=1)] = None,
    rationale: Annotated[str, typer.Option()] = "",
    context: Annotated[str, typer.Option(
        help="The request context the task type's action takes, as JSON.")] = "{}",
    db: DbOption = None,
) -> None:
    """Propose VALUE for KEY of SUBJECT as MEMBER.

    Disagreeing proposals are arbitrated by the task type's conflict rule."""
    try:
        proposed: Any = json.loads(value)
    except json.JSONDecodeError:
        proposed = value
    parsed = _json_value(context, "--context")
    with open_system(db) as system:
        made = system.propose(member, subject, key, proposed, task_type=task_type,
                              confidence=confidence, rationale=rationale, context=parsed)
    out.print(_summary(made), highlight=False)


@proposals_app.command("list")
def proposals_list(
    subject: Annotated[str | None, typer.Option(help="As recorded: Type::id.")] = None,
    key: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option(
        help="open, agreed, won, lost or escalated")] = None,
    member: Annotated[str | None, typer.Option()] = None,
    db: DbOption = None,
) -> None:
    """List proposals, oldest first."""
    with open_system(db) as system:
        found = system.proposals(subject=subject, key=key, member=member, status=status)
    table = Table("proposal", "type", "subject", "key", "value", "member", "confidence",
                  "status", "resolution", "at")
    for proposal in found:
        shown = json.dumps(proposal.value, ensure_ascii=False)
        table.add_row(proposal.id[:8], proposal.task_type, proposal.subject, proposal.key,
                      shown[:40] + ("…" if len(shown) > 40 else ""), proposal.member,
                      "-" if proposal.confidence is None else f"{proposal.confidence:.2f}",
                      proposal.status, (proposal.resolution_id or "-")[:8],
                      proposal.created_at)
    out.print(table)


@proposals_app.command("show")
def proposals_show(proposal_id: str, db: DbOption = None) -> None:
    """A proposal, its resolution and the evidence the rule weighed, as JSON."""
    with open_system(db) as system:
        proposal = system.proposal(_unique(system, proposal_id))
    out.print_json(json.dumps(proposal.to_json(), ensure_ascii=False))


@proposals_app.command("settle")
def proposals_settle(
    resolution_id: str,
    winner: Annotated[str, typer.Argument(help="The winning proposal.")],
    by: Annotated[str, typer.Option("--as", help="The manager the dispute waits on.")],
    db: DbOption = None,
) -> None:
    """Settle an escalated dispute by picking its winning proposal."""
    with open_system(db) as system:
        settled = system.settle_proposals(_unique(system, resolution_id, resolution=True),
                                          _unique(system, winner), by=by)
    out.print(f"Resolution {settled.id}: proposal {settled.winner} wins; "
              f"{len(settled.losers)} lost.", highlight=False)
