"""The `charter` command line."""

from __future__ import annotations

import json
import shutil
import sys
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from charter import __version__
from charter.errors import CharterError, OrgInvalid
from charter.org import read_org
from charter.orgreport import org_summary
from charter.settings import Settings, settings_table
from charter.store import open_store
from charter.system import Charter
from charter.types import parse_duration

out = Console()
err = Console(stderr=True)

SETTINGS_HELP = "Settings (environment variables):\n\n" + "\n\n".join(
    f"CHARTER_{name.upper()}: {field.description}"
    for name, field in Settings.model_fields.items())

app = typer.Typer(help="Charter: coordinate an organisation's AI agents and people.",
                  epilog=SETTINGS_HELP, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
org_app = typer.Typer(help="Validate, load and show the org file.", no_args_is_help=True)
ledger_app = typer.Typer(help="Verify, export and inspect the ledger.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)
app.add_typer(org_app, name="org")
app.add_typer(ledger_app, name="ledger")
app.add_typer(db_app, name="db")

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (CHARTER_DB).",
                                               show_default=False)]
OrgArgument = Annotated[Path | None, typer.Argument(help="Org file (CHARTER_ORG).",
                                                    show_default=False)]
ActorOption = Annotated[str, typer.Option("--actor", help="Who is acting, for the ledger.")]


def fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(1)


def parse_length(text: str, option: str) -> timedelta:
    """A command-line duration (`4h`, `2d`, `1h30m`), or exit 1 saying what is wrong."""
    try:
        length = parse_duration(text)
    except ValueError as error:
        fail(f"{option}: {error}")
    if not isinstance(length, timedelta):
        fail(f"{option} {text!r} is not a duration such as 4h or 2d")
    return length


def unique_id(system: Charter, kind: Literal["task", "approval"], prefix: str) -> str:
    """The one task or approval id a person's short prefix names, or exit 1."""
    matches = system.find_ids(kind, prefix)
    if len(matches) != 1:
        fail(f"{'no' if not matches else 'several'} {kind}s match {prefix!r}"
             + ("" if not matches else ": give more of the id"))
    return matches[0]


def open_system(db: str | None) -> Charter:
    settings = Settings()
    return Charter(open_store(db, settings), settings)


def _version(value: bool) -> None:
    if value:
        out.print(f"charter {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Charter: coordinate an organisation's AI agents and people."""


def example_dir(name: str = "acme") -> Path:
    """The shipped example org (inside the wheel, or in a source checkout)."""
    packaged = Path(str(resources.files("charter"))) / "_examples" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "examples" / name


@app.command()
def init(directory: Annotated[Path, typer.Argument(help="Where to create the workspace.")]
         = Path(".")) -> None:
    """Create a workspace holding the example org (charter.yaml and policies/)."""
    source = example_dir()
    target = directory / "charter.yaml"
    if target.exists():
        fail(f"{target} already exists; choose another directory")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "charter.yaml", target)
    shutil.copytree(source / "policies", directory / "policies", dirs_exist_ok=True)
    out.print(f"Created {target} and {directory / 'policies'} (the Acme example org).\n"
              f"Next: cd {directory} && charter org validate && charter org load && "
              "charter org show")


@org_app.command("validate")
def org_validate(path: OrgArgument = None) -> None:
    """Check an org file without loading it."""
    org = read_org(path or Settings().org)
    for warning in org.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}")
    out.print(f"{org.source} is valid: {len(org.members)} members, "
              f"{len(org.task_types)} task types, {len(org.budgets)} budgets.")


@org_app.command("load")
def org_load(path: OrgArgument = None, db: DbOption = None,
             actor: ActorOption = "cli") -> None:
    """Validate the org file and make it the org in force (a new version)."""
    with open_system(db) as system:
        loaded = system.load_org(path, actor=actor)
    for warning in loaded.org.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}")
    out.print(f"Loaded org {loaded.org.id} version {loaded.version} "
              f"(ledger event {loaded.event_seq}, digest {loaded.org.digest[:12]}).")


@org_app.command("show")
def org_show(db: DbOption = None) -> None:
    """Summarise the org in force: members by department, chain of command, task
    types, budgets."""
    with open_system(db) as system:
        current = system.current_org()
    if current is None:
        fail("no org is loaded yet: run `charter org load` first")
    out.print(org_summary(current.org, current.version))


@org_app.command("versions")
def org_versions(db: DbOption = None) -> None:
    """List the org versions loaded so far."""
    with open_system(db) as system:
        rows = system.org_versions()
    table = Table("version", "org", "loaded at", "by", "event", "digest")
    for row in rows:
        table.add_row(str(row["version"]), row["org_id"], row["loaded_at"], row["loaded_by"],
                      str(row["event_seq"]), row["digest"][:12])
    out.print(table)


@ledger_app.command("verify")
def ledger_verify(db: DbOption = None,
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Recompute the hash chain and the signed head; exit 1 naming the first bad event."""
    with open_system(db) as system:
        report = system.verify_ledger()
    if as_json:
        out.print_json(json.dumps(report.to_json()))
    elif report.ok:
        out.print(f"[green]ok[/green]: {report.events} events verify; signed head seq "
                  f"{report.head.seq} hash {report.head.hash[:16]}")
        if report.redacted:
            out.print(f"redacted payloads (by redaction events): "
                      f"{', '.join(map(str, report.redacted))}")
    else:
        err.print(f"[red]FAILED[/red] at event {report.first_bad_seq}: {report.problem}")
    if not report.ok:
        raise typer.Exit(1)


@ledger_app.command("checkpoint")
def ledger_checkpoint(db: DbOption = None) -> None:
    """Print the signed head (seq, hash, HMAC) to anchor outside the database."""
    with open_system(db) as system:
        head = system.checkpoint()
    print(json.dumps(head.to_json()))


@ledger_app.command("export")
def ledger_export(
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="File to write (default: stdout).")]
    = None,
    after: Annotated[int, typer.Option(help="Only events after this seq.", min=0)] = 0,
    db: DbOption = None,
) -> None:
    """Export events as JSON Lines."""
    with open_system(db) as system:
        if output is None:
            system.export_ledger(sys.stdout, after=after)
            return
        with output.open("w", encoding="utf-8") as handle:
            written = system.export_ledger(handle, after=after)
    err.print(f"wrote {written} events to {output}")


@ledger_app.command("tail")
def ledger_tail(count: Annotated[int, typer.Option("-n", min=1)] = 20,
                db: DbOption = None) -> None:
    """Show the newest events."""
    with open_system(db) as system:
        events = system.tail(count)
    table = Table("seq", "at", "kind", "actor", "subject", "payload")
    for event in events:
        payload = "[dim](redacted)[/dim]" if event.payload is None else \
            json.dumps(event.payload, ensure_ascii=False)
        table.add_row(str(event.seq), event.at, event.kind, event.actor, event.subject,
                      payload[:80] + ("…" if len(payload) > 80 else ""))
    out.print(table)


@ledger_app.command("redact")
def ledger_redact(seq: int, reason: Annotated[str, typer.Option(help="Why (recorded).")],
                  db: DbOption = None, actor: ActorOption = "cli") -> None:
    """Erase an event's payload (e.g. an erasure request); its digest stays."""
    with open_system(db) as system:
        event = system.redact(seq, actor=actor, reason=reason)
    out.print(f"Redacted the payload of event {seq} (recorded as event {event.seq}).")


@ledger_app.command("replay")
def ledger_replay(db: DbOption = None) -> None:
    """Rebuild the read tables from the ledger."""
    with open_system(db) as system:
        replayed = system.rebuild_read_tables()
    out.print(f"Rebuilt the read tables from {replayed} events.")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head",
               db: DbOption = None) -> None:
    """Apply the schema migrations up to REVISION (default: the newest)."""
    store = open_store(db, migrate=False)
    try:
        store.upgrade(revision)
        out.print(f"Database schema at revision {store.current_revision()}.")
    finally:
        store.close()


@db_app.command("settings")
def db_settings() -> None:
    """Print the settings table (Markdown)."""
    print(settings_table())


def main() -> None:
    """Run the CLI: exit 0 ok, 1 when Charter refuses or fails, 2 on usage errors."""
    import charter.cli_demo
    import charter.cli_governance
    import charter.cli_killswitch
    import charter.cli_leases
    import charter.cli_mcp
    import charter.cli_memory
    import charter.cli_proposals
    import charter.cli_replay
    import charter.cli_serve
    import charter.cli_work
    import charter.cli_worker  # noqa: F401 - these register their commands on `app`

    try:
        app()
    except OrgInvalid as error:
        err.print(f"[red]error:[/red] {error.message}", highlight=False)
        sys.exit(1)
    except CharterError as error:
        err.print(f"[red]error:[/red] {error.message}", highlight=False)
        sys.exit(1)
