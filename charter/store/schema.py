"""The database tables: the ledger, its signed head, and the read tables it explains."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)

metadata = MetaData()

HASH = String(64)
TIMESTAMP = String(32)
"""Times are stored as fixed-width ISO 8601 UTC text (`2026-01-01T00:00:00.000000Z`):
exact on every dialect, ordered as text, and hashed as written."""

events = Table(
    "events", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(36), nullable=False, unique=True),
    Column("at", TIMESTAMP, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("payload", Text, nullable=True, comment="canonical JSON; NULL once redacted"),
    Column("payload_digest", HASH, nullable=False),
    Column("prev_hash", HASH, nullable=False),
    Column("hash", HASH, nullable=False),
    Index("ix_events_kind", "kind"),
    Index("ix_events_subject", "subject"),
    Index("ix_events_actor", "actor"),
)

ledger_head = Table(
    "ledger_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", HASH, nullable=False),
    Column("mac", HASH, nullable=True, comment="HMAC of seq and hash with the server secret"),
    Column("at", TIMESTAMP, nullable=True),
)

org_versions = Table(
    "org_versions", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("org_id", String(64), nullable=False),
    Column("digest", HASH, nullable=False),
    Column("source", Text, nullable=False),
    Column("loaded_at", TIMESTAMP, nullable=False),
    Column("loaded_by", String(128), nullable=False),
    Column("event_seq", BigInteger, nullable=False),
    Column("document", Text, nullable=False),
)

members = Table(
    "members", metadata,
    Column("id", String(64), primary_key=True),
    Column("org_version", Integer, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("name", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("department", String(64), nullable=False),
    Column("reports_to", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("capacity", Integer, nullable=False),
)

task_types = Table(
    "task_types", metadata,
    Column("id", String(64), primary_key=True),
    Column("org_version", Integer, nullable=False),
    Column("action", String(128), nullable=False),
    Column("value", Numeric(20, 4), nullable=False),
    Column("autonomy_ceiling", String(16), nullable=False),
)

MONEY = Numeric(20, 4)

budgets = Table(
    "budgets", metadata,
    Column("id", String(64), primary_key=True),
    Column("org_version", Integer, nullable=False),
    Column("parent_id", String(64), nullable=True),
    Column("owner", String(64), nullable=True),
    Column("amount", MONEY, nullable=False),
    Column("period", String(16), nullable=False),
    Column("reserved", MONEY, nullable=False, server_default="0"),
    Column("committed", MONEY, nullable=False, server_default="0"),
    Column("period_start", TIMESTAMP, nullable=True),
)

reservations = Table(
    "reservations", metadata,
    Column("id", String(36), primary_key=True),
    Column("budget_id", String(64), nullable=False),
    Column("member", String(64), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("status", String(16), nullable=False, comment="reserved|committed|released"),
    Column("created_at", TIMESTAMP, nullable=False),
    Column("expires_at", TIMESTAMP, nullable=False),
    Column("settled_at", TIMESTAMP, nullable=True),
    Column("actual", MONEY, nullable=True),
    Index("ix_reservations_status_expires", "status", "expires_at"),
)

policy_versions = Table(
    "policy_versions", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("digest", HASH, nullable=False),
    Column("source", Text, nullable=False),
    Column("loaded_at", TIMESTAMP, nullable=False),
    Column("loaded_by", String(128), nullable=False),
    Column("event_seq", BigInteger, nullable=False),
    Column("files", Text, nullable=False, comment="JSON: file name -> policy text"),
)

delegations = Table(
    "delegations", metadata,
    Column("id", String(36), primary_key=True),
    Column("from_member", String(64), nullable=False),
    Column("to_member", String(64), nullable=False),
    Column("actions", Text, nullable=False, comment="JSON list of action names"),
    Column("until", TIMESTAMP, nullable=False),
    Column("created_at", TIMESTAMP, nullable=False),
    Column("revoked_at", TIMESTAMP, nullable=True),
    Index("ix_delegations_to", "to_member"),
)

approvals = Table(
    "approvals", metadata,
    Column("id", String(36), primary_key=True),
    Column("request_hash", HASH, nullable=False),
    Column("request", Text, nullable=False, comment="canonical JSON of the exact request"),
    Column("requester", String(64), nullable=False),
    Column("approvers", Text, nullable=False, comment="JSON list of member ids"),
    Column("quorum", Integer, nullable=False),
    Column("status", String(16), nullable=False,
           comment="pending|approved|rejected|expired|executed"),
    Column("reasons", Text, nullable=False, comment="JSON: why it was escalated"),
    Column("created_at", TIMESTAMP, nullable=False),
    Column("sla_at", TIMESTAMP, nullable=False),
    Column("expires_at", TIMESTAMP, nullable=False),
    Column("on_timeout", String(16), nullable=False, comment="deny|escalate"),
    Column("decided_at", TIMESTAMP, nullable=True),
    Column("executed_at", TIMESTAMP, nullable=True),
    Index("ix_approvals_status", "status"),
    Index("ix_approvals_request_hash_status", "request_hash", "status"),
)

approval_votes = Table(
    "approval_votes", metadata,
    Column("approval_id", String(36), primary_key=True),
    Column("approver", String(64), primary_key=True),
    Column("vote", String(8), nullable=False, comment="approve|reject"),
    Column("comment", Text, nullable=False),
    Column("at", TIMESTAMP, nullable=False),
)

READ_TABLES: tuple[Table, ...] = (
    org_versions, members, task_types, budgets, reservations, policy_versions, delegations,
    approvals, approval_votes,
)
"""Tables rebuilt from the ledger by a replay (in an order that respects references)."""
