"""`charter memory` commands: remember, recall and forget notes about subjects."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from charter.cli import DbOption, app, err, fail, open_system, out
from charter.memory import KINDS, Kind
from charter.system import Charter

memory_app = typer.Typer(help="Remember, recall and forget what is known about subjects.",
                         no_args_is_help=True)
app.add_typer(memory_app, name="memory")

ByOption = Annotated[str, typer.Option("--by", help="The member acting (governed by "
                                                    "memory.read / memory.write).")]


def _memory_id(system: Charter, prefix: str) -> str:
    """The one memory id a short prefix names, or exit 1."""
    matches = system.memory_ids(prefix)
    if len(matches) != 1:
        fail(f"{'no' if not matches else 'several'} memories match {prefix!r}"
             + ("" if not matches else ": give more of the id"))
    return matches[0]


@memory_app.command("remember")
def memory_remember(
    subject: Annotated[str, typer.Argument(help="What it is about: Type::id, e.g. "
                                                "Customer::42.")],
    text: Annotated[str, typer.Argument(help="The note, fact or summary.")],
    by: ByOption,
    kind: Annotated[str, typer.Option(help=f"One of {', '.join(KINDS)}.")] = "note",
    tag: Annotated[list[str] | None, typer.Option(
        "--tag", help="A tag (repeat for several).")] = None,
    private: Annotated[bool, typer.Option(
        help="Only the member who wrote it reads it back.")] = False,
    db: DbOption = None,
) -> None:
    """Record a memory about SUBJECT."""
    if kind not in KINDS:
        fail(f"--kind {kind!r} is not one of {', '.join(KINDS)}")
    kind_checked: Kind = kind  # type: ignore[assignment]  # checked against KINDS above
    with open_system(db) as system:
        kept = system.remember(subject, text, by=by, kind=kind_checked, tags=tag or (),
                               private=private)
    out.print(f"Remembered {kept.id} about {kept.subject} ({kept.kind}"
              f"{', private' if kept.private else ''}; ledger event {kept.seq}).",
              highlight=False)


@memory_app.command("recall")
def memory_recall(
    subject: Annotated[str, typer.Argument(help="Type::id, e.g. Customer::42.")],
    by: ByOption,
    query: Annotated[str, typer.Argument(help="Words to look for (any of them); "
                                              "empty: the latest memories.")] = "",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 10,
    db: DbOption = None,
) -> None:
    """SUBJECT's memories most relevant to QUERY, best first, with their scores."""
    with open_system(db) as system:
        found = system.recall(subject, query, by=by, limit=limit)
    if not found:
        out.print(f"No memories of {subject} match {query!r}." if query.strip() else
                  f"No memories of {subject}.", highlight=False)
        return
    title = f"{subject}: {query!r}" if query.strip() else f"{subject}: latest"
    table = Table("id", "score", "kind", "by", "at", "tags", "text", title=title)
    for item in found:
        table.add_row(item.id[:8], "-" if item.score is None else f"{item.score:.3g}",
                      item.kind + (" (private)" if item.private else ""), item.by,
                      item.created_at[:19], ", ".join(item.tags), item.text)
    out.print(table)


@memory_app.command("forget")
def memory_forget(
    memory_id: Annotated[str, typer.Argument(help="The memory's id (or its start).")],
    by: ByOption,
    reason: Annotated[str, typer.Option(help="Why (recorded in the ledger).")],
    db: DbOption = None,
) -> None:
    """Erase a memory everywhere (its ledger payload is redacted).

    Its author may, or a member permitted memory.write on its subject. The ledger
    still verifies and names the redaction.
    """
    with open_system(db) as system:
        forgotten = system.forget(_memory_id(system, memory_id), by=by, reason=reason)
    recorded = ("it was already redacted" if forgotten.redaction_seq is None
                else f"recorded as event {forgotten.redaction_seq}")
    out.print(f"Forgot memory {forgotten.id} about {forgotten.subject}: the payload of "
              f"ledger event {forgotten.redacted_seq} is redacted ({recorded}).",
              highlight=False)
    if not forgotten.flushed:
        err.print("[yellow]warning:[/yellow] the database's write-ahead log could not be "
                  "truncated yet (other readers were active); the next checkpoint does")
