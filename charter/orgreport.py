"""A readable summary of an org, as Rich renderables (for `charter org show`)."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Group, RenderableType
from rich.table import Table
from rich.tree import Tree

from charter.org import Org
from charter.types import Budget


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def members_by_department(org: Org) -> Table:
    table = Table(title="Members by department", title_justify="left")
    for column in ("department", "member", "kind", "title", "roles", "capacity"):
        table.add_column(column)
    grouped = defaultdict(list)
    for member in org.spec.members:
        grouped[member.department].append(member)
    for department in org.spec.departments:
        for position, member in enumerate(grouped.get(department, [])):
            kind = "agent" if member.kind == "ai" else "person"
            if member.status != "active":
                kind += f" ({member.status})"
            table.add_row(department if position == 0 else "", f"{member.display_name} "
                          f"[dim]{member.id}[/dim]", kind, member.title,
                          ", ".join(member.roles), str(member.capacity),
                          end_section=position == len(grouped[department]) - 1)
    return table


def chain_of_command(org: Org) -> Tree:
    tree = Tree("[bold]Chain of command[/bold]")

    def add(branch: Tree, member_id: str) -> None:
        member = org.members[member_id]
        icon = "🤖" if member.kind == "ai" else "👤"
        node = branch.add(f"{icon} {member.display_name} [dim]{member.title}[/dim]")
        for report in org.direct_reports(member_id):
            add(node, report)

    for root in org.roots():
        add(tree, root)
    return tree


def task_types(org: Org) -> Table:
    table = Table(title="Task types", title_justify="left")
    for column in ("task type", "action", "skills", "value", "timeout", "autonomy ceiling",
                   "fallback", "conflicts"):
        table.add_column(column)
    for task_type in org.spec.task_types:
        fallback = " → ".join(f"{s.action} {s.to}" if s.to else f"{s.action} x{s.count}"
                              for s in task_type.fallback)
        table.add_row(task_type.id, task_type.action, ", ".join(task_type.skills),
                      f"{task_type.value:,}", _duration(task_type.timeout.total_seconds()),
                      task_type.autonomy_ceiling, fallback or "-",
                      f"{task_type.conflict.rule} "
                      f"({_duration(task_type.conflict.window.total_seconds())})")
    return table


def budgets(org: Org) -> Tree:
    currency = org.spec.org.currency
    tree = Tree(f"[bold]Budgets[/bold] ({currency})")

    def add(branch: Tree, budget: Budget) -> None:
        owner = f" [dim]owner {budget.owner}[/dim]" if budget.owner else ""
        node = branch.add(f"{budget.id}: {budget.amount:,.2f} per {budget.period}{owner}")
        for child in budget.children:
            add(node, child)

    for budget in org.spec.budgets:
        add(tree, budget)
    return tree


def org_summary(org: Org, version: int | None = None) -> RenderableType:
    people = sum(1 for m in org.spec.members if m.kind == "human")
    agents = len(org.spec.members) - people
    heading = (f"[bold]{org.spec.org.name}[/bold] ({org.id})"
               + (f", version {version}" if version is not None else "")
               + f": {people} people, {agents} AI agents, "
               f"{len(org.spec.task_types)} task types, {len(org.budgets)} budgets")
    return Group(heading, "", members_by_department(org), "", chain_of_command(org), "",
                 task_types(org), "", budgets(org))
