"""`charter leases` commands."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from charter.cli import DbOption, app, fail, open_system, out
from charter.system import Charter

leases_app = typer.Typer(help="See and release leases on resources.", no_args_is_help=True)
app.add_typer(leases_app, name="leases")


def _lease_id(system: Charter, prefix: str) -> str:
    """The one held lease a person's short prefix names, or exit 1."""
    matches = system.find_lease_ids(prefix)
    if len(matches) != 1:
        fail(f"no held lease matches {prefix!r} (see `charter leases list`)" if not matches
             else f"several leases match {prefix!r}: give more of the id")
    return matches[0]


@leases_app.command("list")
def leases_list(member: Annotated[str | None, typer.Option(help="Only this member's.")]
                = None,
                resource: Annotated[str | None, typer.Option(
                    help="Only those on this resource (e.g. Customer::42).")] = None,
                as_json: Annotated[bool, typer.Option("--json")] = False,
                db: DbOption = None) -> None:
    """List the live leases, by resource, with their fencing tokens and expiry."""
    with open_system(db) as system:
        found = system.leases(member=member, resource=resource)
    if as_json:
        out.print_json(json.dumps([lease.to_json() for lease in found]))
        return
    table = Table("lease", "resource", "member", "mode", "token", "task", "acquired",
                  "expires")
    for lease in found:
        table.add_row(lease.id[:8], lease.resource, lease.member, lease.mode,
                      str(lease.token), (lease.task_id or "-")[:8], lease.acquired_at,
                      lease.expires_at)
    out.print(table)
    if not found:
        out.print("No live leases" + (" match." if member or resource else "."))


@leases_app.command("release")
def leases_release(lease_id: Annotated[str, typer.Argument(
                       help="The lease's id (or a unique prefix of it).")],
                   member: Annotated[str, typer.Option(
                       help="The holder releasing it (only the holder may).")],
                   db: DbOption = None) -> None:
    """Release a lease as its holder; its fencing token stays spent."""
    with open_system(db) as system:
        released = system.release_lease(_lease_id(system, lease_id), member)
    out.print(f"Released lease {released.id} on {released.resource} (token "
              f"{released.token}) held by {released.member}.")
