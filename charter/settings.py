"""Every Charter setting, declared once: name, default and help.

Each is read from the environment as ``CHARTER_<NAME>``. The README's configuration
table is generated from this class (``python -m charter.settings``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Charter's configuration."""

    model_config = SettingsConfigDict(env_prefix="CHARTER_", extra="forbid", frozen=True)

    db: str = Field(
        "sqlite:///charter.db",
        description="Database URL: `sqlite:///PATH` (embedded) or `postgresql://…`.",
    )
    org: Path = Field(
        Path("charter.yaml"),
        description="The org file that `charter org validate` and `charter org load` "
        "read by default.",
    )
    secret: str = Field(
        "",
        description="Server secret that signs the ledger head. Share it between nodes "
        "on one PostgreSQL. Never written to the database or the ledger.",
    )
    secret_file: Path | None = Field(
        None,
        description="File holding the server secret when `secret` is empty. Defaults to "
        "`<database file>.secret` for SQLite; created on the first ledger write.",
    )
    auto_migrate: bool = Field(
        True,
        description="Upgrade the database schema to the newest migration when opening it.",
    )
    sqlite_busy_timeout: float = Field(
        30.0, ge=0, description="Seconds an SQLite writer waits for the write lock."
    )
    sqlite_wal_pages: int = Field(
        20_000, ge=1, le=1_000_000, description="Pages SQLite's write-ahead log grows to "
        "before a commit copies it into the database file (2 KiB each in a file Charter "
        "created: about 40 MB). A page written many times between copies is copied once, "
        "so a larger log costs less writing; the log file grows to about this size.")
    governance_refresh: float = Field(
        1.0, ge=0, description="Seconds a process reuses the org, policies and delegations "
        "it decides with before checking the database for changes made by other nodes.")
    housekeeping_interval: float = Field(
        1.0, ge=0, description="Seconds between the housekeeping rounds of `charter serve` "
        "(re-routing tasks whose lease ran out, failing those past their deadline, moving "
        "approvals past their SLA or expiry); 0 turns them off.")
    decision_flush_interval: float = Field(
        0.05, gt=0, le=1.0, description="Seconds at most between group commits of logged "
        "decisions that change nothing.")
    batch_dispatch_at: int = Field(
        20, ge=2, description="Queued tasks at which a dispatch round assigns them together "
        "(an optimal assignment over tasks and free slots) instead of one by one.")
    pool_size: int = Field(
        5, ge=1, description="PostgreSQL connections kept open per Charter process."
    )
    pool_max_overflow: int = Field(
        10, ge=0, description="Extra PostgreSQL connections allowed at peak."
    )
    rate_limit: float = Field(
        200.0, ge=0, description="API requests per second each token may make on one "
        "server process (bursts of twice that); 0 turns the limit off.")
    otlp_endpoint: str = Field(
        "", description="OTLP/HTTP traces endpoint (e.g. `http://collector:4318/v1/traces`) "
        "that receives a trace per task: submit, allocate, claim, authorize, engine run, "
        "approval wait and completion. Empty: tracing is off. Needs the `otel` extra.")
    service_name: str = Field(
        "charter", min_length=1, description="The service name Charter's spans carry when "
        "`otlp_endpoint` is set.")


def settings_table() -> str:
    """The settings as a Markdown table, as the README shows them."""
    rows = ["| setting | environment variable | default | what it does |",
            "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "(empty)" if default is None or default == "" else f"`{default}`"
        rows.append(f"| `{name}` | `CHARTER_{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
