"""`charter serve` and `charter tokens`: run the service; make and revoke its tokens."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from charter.cli import ActorOption, DbOption, app, open_system, out, parse_length

tokens_app = typer.Typer(help="Make, list and revoke API bearer tokens.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


@app.command("serve")
def serve(host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
          workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
          db: DbOption = None) -> None:
    """Serve the HTTP API (`/v1`, `/docs`, `/metrics`) and do the housekeeping (expired
    leases, missed deadlines, approval SLAs) every CHARTER_HOUSEKEEPING_INTERVAL seconds.
    Several servers on one PostgreSQL (each with the same CHARTER_SECRET) behave as one
    system."""
    import uvicorn

    if db is not None:
        os.environ["CHARTER_DB"] = db  # read by every worker process
    with open_system(db) as system:  # migrate once, before the workers start
        system.current_org()
    uvicorn.run("charter.api.server:app_from_settings", factory=True, host=host, port=port,
                workers=workers, log_level="warning")


@tokens_app.command("create")
def tokens_create(member: Annotated[str, typer.Option(help="The member it acts as.")],
                  admin: Annotated[bool, typer.Option(help="May run admin verbs.")] = False,
                  expires: Annotated[str | None, typer.Option(
                      help="Lifetime, e.g. 30d (default: until revoked).")] = None,
                  actor: ActorOption = "system", db: DbOption = None) -> None:
    """Make a token; it is printed once and only its hash is kept."""
    with open_system(db) as system:
        until = None if expires is None else (
            system.clock.now() + parse_length(expires, "--expires"))
        made = system.create_token(member, admin=admin, expires=until, actor=actor)
    out.print(f"token {made.token.id} for {member}{' (admin)' if admin else ''}"
              f"{'' if made.token.expires_at is None else ', expires ' + made.token.expires_at}:")
    print(made.secret)


@tokens_app.command("list")
def tokens_list(member: Annotated[str | None, typer.Option(help="Only this member's.")]
                = None, db: DbOption = None) -> None:
    """Every token: id, member, admin, created, expires, revoked (never the secret)."""
    with open_system(db) as system:
        found = system.tokens(member=member)
    table = Table("token", "member", "admin", "created", "expires", "revoked")
    for token in found:
        table.add_row(token.id, token.member, "yes" if token.admin else "",
                      token.created_at, token.expires_at or "", token.revoked_at or "")
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: str, actor: ActorOption = "system", db: DbOption = None) -> None:
    """Revoke a token: it is refused from then on."""
    with open_system(db) as system:
        token = system.revoke_token(token_id, actor=actor)
    out.print(f"token {token.id} of {token.member} revoked at {token.revoked_at}")
