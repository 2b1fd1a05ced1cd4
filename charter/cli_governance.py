"""`charter policy`, `authorize`, `approvals`, `delegate` and `budgets` commands."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.tree import Tree

from charter.approvals import Approval
from charter.budgets import EnvelopeUsage
from charter.cli import (
    ActorOption,
    DbOption,
    app,
    err,
    fail,
    open_system,
    out,
    parse_length,
    unique_id,
)
from charter.policy import PolicyEngine, read_policy_files
from charter.system import Charter

policy_app = typer.Typer(help="Validate and load Cedar policies.", no_args_is_help=True)
approvals_app = typer.Typer(help="Escalated requests waiting for approval.",
                            no_args_is_help=True)
budgets_app = typer.Typer(help="Spending envelopes.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(approvals_app, name="approvals")
app.add_typer(budgets_app, name="budgets")

MemberOption = Annotated[str, typer.Option("--as", help="The member acting.")]


@policy_app.command("validate")
def policy_validate(folder: Annotated[Path, typer.Argument(help="Folder of .cedar files.")],
                    db: DbOption = None) -> None:
    """Check a policy folder against the org in force, without loading it."""
    with open_system(db) as system:
        org = system.org
    engine = PolicyEngine.build(org, read_policy_files(folder))
    out.print(f"{folder} is valid: {len(engine.policies.statements)} policies "
              f"(digest {engine.policies.digest[:12]}).")


@policy_app.command("load")
def policy_load(folder: Annotated[Path | None, typer.Argument(
        help="Folder of .cedar files (default: the org's policies folder).")] = None,
                db: DbOption = None, actor: ActorOption = "cli") -> None:
    """Validate a policy folder and make it the policy set in force (a ledger event)."""
    with open_system(db) as system:
        loaded = system.load_policies(folder, actor=actor)
    out.print(f"Loaded policy set version {loaded.version}: {len(loaded.files)} files "
              f"(ledger event {loaded.event_seq}, digest {loaded.digest[:12]}).")


@app.command()
def authorize(member: str, action: str, resource: str,
              context: Annotated[str, typer.Option(help="The request context, as JSON.")]
              = "{}",
              task_type: Annotated[str | None, typer.Option(help="The task type.")] = None,
              db: DbOption = None,
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """May MEMBER do ACTION on RESOURCE (e.g. Vendor::globex)? Prints the decision and
    its reasons; exits 0 on allow, 1 on deny, 3 when escalated for approval."""
    try:
        parsed = json.loads(context)
    except json.JSONDecodeError as error:
        fail(f"--context is not valid JSON: {error}")
    with open_system(db) as system:
        decision = system.authorize(member, action, resource, parsed, task_type=task_type)
    if as_json:
        out.print_json(json.dumps(decision.to_json()))
    else:
        colour = {"allow": "green", "deny": "red", "escalate": "yellow"}[decision.outcome]
        out.print(f"[{colour}]{decision.outcome.upper()}[/{colour}] {member} {action} "
                  f"{decision.resource}")
        if decision.approvers:
            out.print(f"approvers: {', '.join(decision.approvers)} (needs "
                      f"{decision.quorum}); approval {decision.approval_id}")
        for reason in decision.reasons:
            out.print(f"  {reason.kind}: {reason.message}", highlight=False)
    raise typer.Exit({"allow": 0, "deny": 1, "escalate": 3}[decision.outcome])


def _approval_table(found: list[Approval]) -> Table:
    table = Table("approval", "status", "requester", "request", "approvers", "votes",
                  "SLA")
    for approval in found:
        request = approval.request
        summary = f"{request['action']} {request['resource']} " + json.dumps(
            request["context"], ensure_ascii=False)
        table.add_row(approval.id[:8], approval.status, approval.requester, summary,
                      ", ".join(approval.approvers),
                      f"{approval.approvals_count}/{approval.quorum}", approval.sla_at)
    return table


def _find(system: Charter, approval_id: str) -> Approval:
    return system.approval(unique_id(system, "approval", approval_id))


@approvals_app.command("list")
def approvals_list(status: Annotated[str | None, typer.Option(
        help="pending, approved, rejected, expired or executed")] = "pending",
                   approver: Annotated[str | None, typer.Option(help="Only this approver's.")]
                   = None, db: DbOption = None) -> None:
    """List approvals (default: pending)."""
    with open_system(db) as system:
        found = system.approvals(status=status or None, approver=approver)
    out.print(_approval_table(found))


@approvals_app.command("show")
def approvals_show(approval_id: str, db: DbOption = None) -> None:
    """Show one approval: the exact request, why it escalated, the votes."""
    with open_system(db) as system:
        approval = _find(system, approval_id)
    out.print_json(json.dumps(approval.to_json()))


@approvals_app.command("approve")
def approvals_approve(approval_id: str, approver: MemberOption,
                      comment: Annotated[str, typer.Option()] = "",
                      db: DbOption = None) -> None:
    """Approve as a member named among the approvers."""
    with open_system(db) as system:
        approval = system.approve(_find(system, approval_id).id, approver=approver,
                                  comment=comment)
    out.print(f"{approval.id}: {approval.status} "
              f"({approval.approvals_count} of {approval.quorum} approvals)")


@approvals_app.command("reject")
def approvals_reject(approval_id: str, approver: MemberOption,
                     comment: Annotated[str, typer.Option(help="Why (required).")],
                     db: DbOption = None) -> None:
    """Reject, with a comment saying why."""
    with open_system(db) as system:
        approval = system.reject(_find(system, approval_id).id, approver=approver,
                                 comment=comment)
    out.print(f"{approval.id}: {approval.status}")


@approvals_app.command("timeouts")
def approvals_timeouts(db: DbOption = None) -> None:
    """Deny or escalate approvals past their SLA; expire those past their expiry."""
    with open_system(db) as system:
        changed = system.apply_approval_timeouts()
    out.print(f"{len(changed)} approvals changed.")
    if changed:
        out.print(_approval_table(changed))


@app.command()
def delegate(from_member: Annotated[str, typer.Argument(help="Who lends authority.")],
             to_member: Annotated[str, typer.Argument(help="Who acts with it.")],
             actions: Annotated[list[str], typer.Option("--action", help="Repeatable.")],
             for_: Annotated[str, typer.Option("--for", help="How long: 4h, 2d …")] = "1d",
             db: DbOption = None) -> None:
    """Let TO_MEMBER act with FROM_MEMBER's authority for some actions, for a while."""
    length = parse_length(for_, "--for")
    with open_system(db) as system:
        granted = system.delegate(from_member, to_member, actions,
                                  system.clock.now().astimezone(UTC) + length)
    out.print(f"Delegation {granted.id}: {to_member} acts for {from_member} on "
              f"{', '.join(granted.actions)} until {granted.until}.")


@app.command("revoke-delegation")
def revoke_delegation(delegation_id: str, db: DbOption = None,
                      actor: ActorOption = "cli") -> None:
    """Revoke a delegation before it expires."""
    with open_system(db) as system:
        system.revoke_delegation(delegation_id, actor=actor)
    out.print(f"Revoked {delegation_id}.")


@budgets_app.command("show")
def budgets_show(db: DbOption = None) -> None:
    """The envelopes as a tree: amount, reserved, committed, available."""
    with open_system(db) as system:
        envelopes = system.budget_usage()
        currency = system.org.spec.org.currency
    children: dict[str | None, list[EnvelopeUsage]] = {}
    for envelope in envelopes:
        children.setdefault(envelope.parent_id, []).append(envelope)
    tree = Tree(f"[bold]Budgets[/bold] ({currency}; amount · reserved · committed · "
                "[green]available[/green])")

    def add(branch: Tree, envelope: EnvelopeUsage) -> None:
        colour = "green" if envelope.available > 0 else "red"
        node = branch.add(
            f"{envelope.id}: {envelope.amount:,.2f} · {envelope.reserved:,.2f} · "
            f"{envelope.committed:,.2f} · [{colour}]{envelope.available:,.2f}[/{colour}]"
            f" [dim]per {envelope.period}, owner {envelope.owner or '-'}[/dim]")
        for child in children.get(envelope.id, []):
            add(node, child)

    for root in children.get(None, []):
        add(tree, root)
    out.print(tree)
    if not envelopes:
        err.print("no budgets: the org declares none")


