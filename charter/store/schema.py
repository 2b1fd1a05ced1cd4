"""The database tables: the ledger, its signed head, and the read tables it explains."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
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
    # With seq, so a search by kind, subject or actor reads its newest page from the
    # index in seq order instead of sorting every match.
    Index("ix_events_kind_seq", "kind", "seq"),
    Index("ix_events_subject_seq", "subject", "seq"),
    Index("ix_events_actor_seq", "actor", "seq"),
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
    Column("task_id", String(36), nullable=True, comment="the task the request was made for"),
    Index("ix_approvals_status", "status"),
    Index("ix_approvals_request_hash_status", "request_hash", "status"),
    Index("ix_approvals_task", "task_id"),
)

approval_votes = Table(
    "approval_votes", metadata,
    Column("approval_id", String(36), primary_key=True),
    Column("approver", String(64), primary_key=True),
    Column("vote", String(8), nullable=False, comment="approve|reject"),
    Column("comment", Text, nullable=False),
    Column("at", TIMESTAMP, nullable=False),
)

tasks = Table(
    "tasks", metadata,
    Column("id", String(36), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("payload", Text, nullable=False, comment="canonical JSON"),
    Column("value", MONEY, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("deadline", TIMESTAMP, nullable=True),
    Column("requester", String(128), nullable=False),
    Column("state", String(24), nullable=False,
           comment="queued|assigned|running|awaiting_approval|done|failed|cancelled"),
    Column("assignee", String(64), nullable=True),
    Column("fencing", BigInteger, nullable=False, comment="token of the latest claim"),
    Column("attempts", Integer, nullable=False),
    Column("lease_until", TIMESTAMP, nullable=True),
    Column("fallback_step", Integer, nullable=False, comment="index into the protocol"),
    Column("fallback_used", Integer, nullable=False, comment="uses of that step so far"),
    Column("excluded", Text, nullable=False, comment="JSON list of members that failed it"),
    Column("approval_id", String(36), nullable=True),
    Column("result", Text, nullable=True),
    Column("reason", Text, nullable=True, comment="why it is in its current state"),
    Column("resume", Text, nullable=True,
           comment="JSON: what the engine saved while the task awaits approval"),
    Column("trace_id", String(32), nullable=True,
           comment="the OpenTelemetry trace its spans belong to (hex), when tracing is on"),
    Column("created_at", TIMESTAMP, nullable=False),
    Column("updated_at", TIMESTAMP, nullable=False),
    Index("ix_tasks_state_priority", "state", "priority", "created_at"),
    Index("ix_tasks_assignee_state", "assignee", "state"),
    Index("ix_tasks_lease", "state", "lease_until"),
    # Newest-first pages of the task list, whole or by one filter, without a sort.
    Index("ix_tasks_created", "created_at", "id"),
    Index("ix_tasks_state_created", "state", "created_at", "id"),
    Index("ix_tasks_assignee_created", "assignee", "created_at", "id"),
    Index("ix_tasks_requester_created", "requester", "created_at", "id"),
    Index("ix_tasks_type_created", "type", "created_at", "id"),
)

outcomes = Table(
    "outcomes", metadata,
    Column("id", String(36), primary_key=True),
    Column("task_id", String(36), nullable=False),
    Column("member", String(64), nullable=False),
    Column("engine_version", String(64), nullable=False),
    Column("task_type", String(64), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("quality", Float, nullable=True),
    Column("cost", MONEY, nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("verified", Boolean, nullable=False),
    Column("reported_by", String(128), nullable=False),
    Column("at", TIMESTAMP, nullable=False),
    # Covering the success and verified flags, so a member's record on a task type is
    # counted from the index alone.
    Index("ix_outcomes_member_type", "member", "task_type", "success", "verified"),
    # Which outcome counts for a task and member (a verdict over a self-report, the
    # latest of a kind) is decided from this index alone.
    Index("ix_outcomes_task", "task_id", "member", "verified", "at", "id"),
    Index("ix_outcomes_member_at", "member", "at"),
)

outcome_tallies = Table(
    "outcome_tallies", metadata,
    Column("member", String(64), primary_key=True),
    Column("engine_version", String(64), primary_key=True),
    Column("task_type", String(64), primary_key=True),
    Column("hour", String(13), primary_key=True,
           comment="the first 13 characters of the outcomes' time: YYYY-MM-DDTHH"),
    Column("first_at", TIMESTAMP, nullable=False,
           comment="the earliest outcome recorded in the hour, counted or not"),
    Column("n", Integer, nullable=False),
    Column("successes", Integer, nullable=False),
    Column("verified", Integer, nullable=False),
    Column("cost_total", MONEY, nullable=False),
    Column("costed", Integer, nullable=False),
    Column("duration_total", Float, nullable=False),
    Column("timed", Integer, nullable=False),
)
"""The outcomes that count (one per task and member: see `charter.outcometallies`), summed
per member, engine version, task type and hour, for a member's record over a long
history."""

autonomy_levels = Table(
    "autonomy_levels", metadata,
    Column("member", String(64), primary_key=True),
    Column("task_type", String(64), primary_key=True),
    Column("level", String(16), nullable=False),
    Column("changed_at", TIMESTAMP, nullable=False),
    Column("evidence", Text, nullable=False, comment="JSON: n, bound, threshold"),
)

lease_tokens = Table(
    "lease_tokens", metadata,
    Column("resource", String(256), primary_key=True),
    Column("token", BigInteger, nullable=False,
           comment="the last fencing token granted on this resource; never goes back"),
)

leases = Table(
    "leases", metadata,
    Column("id", String(36), primary_key=True),
    Column("resource", String(256), nullable=False),
    Column("member", String(64), nullable=False),
    Column("mode", String(16), nullable=False, comment="exclusive|shared"),
    Column("token", BigInteger, nullable=False),
    Column("task_id", String(36), nullable=True,
           comment="the task it was taken for: released when that task fails or expires"),
    Column("acquired_at", TIMESTAMP, nullable=False),
    Column("expires_at", TIMESTAMP, nullable=False),
    Index("ix_leases_resource", "resource"),
    Index("ix_leases_member", "member"),
    Index("ix_leases_task", "task_id"),
)

proposals = Table(
    "proposals", metadata,
    Column("id", String(36), primary_key=True),
    Column("task_type", String(64), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("key", String(256), nullable=False),
    Column("value", Text, nullable=False, comment="canonical JSON"),
    Column("member", String(64), nullable=False),
    Column("confidence", Float, nullable=True),
    Column("rationale", Text, nullable=False),
    Column("status", String(16), nullable=False,
           comment="open|agreed|won|lost|escalated"),
    Column("resolution_id", String(36), nullable=True),
    Column("created_at", TIMESTAMP, nullable=False),
    Index("ix_proposals_subject_key", "subject", "key", "created_at"),
)

resolutions = Table(
    "resolutions", metadata,
    Column("id", String(36), primary_key=True),
    Column("task_type", String(64), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("key", String(256), nullable=False),
    Column("rule", String(16), nullable=False, comment="authority|track_record|escalate"),
    Column("status", String(16), nullable=False, comment="decided|escalated"),
    Column("winner", String(36), nullable=True, comment="the winning proposal"),
    Column("losers", Text, nullable=False, comment="JSON list of proposal ids"),
    Column("evidence", Text, nullable=False, comment="JSON: what the rule weighed"),
    Column("approval_id", String(36), nullable=True),
    Column("at", TIMESTAMP, nullable=False),
    Index("ix_resolutions_subject_key", "subject", "key"),
)

memories = Table(
    "memories", metadata,
    Column("id", String(36), primary_key=True),
    Column("seq", BigInteger, nullable=False, unique=True,
           comment="the ledger event that stored it (its full-text row id on SQLite)"),
    Column("subject", String(256), nullable=False),
    Column("member", String(64), nullable=True,
           comment="set for memory private to one member"),
    Column("kind", String(16), nullable=False, comment="fact|note|summary"),
    Column("text", Text, nullable=False),
    Column("tags", Text, nullable=False, comment="JSON list"),
    Column("by", String(64), nullable=False),
    Column("created_at", TIMESTAMP, nullable=False),
    Index("ix_memories_subject", "subject"),
    Index("ix_memories_member", "member"),
)
"""Full-text search over `text` is the dialect's: an FTS5 table kept by triggers on
SQLite, a generated `tsvector` column with a GIN index on PostgreSQL (migration 0004)."""

actions = Table(
    "actions", metadata,
    Column("id", String(36), primary_key=True),
    Column("key", String(320), nullable=False, unique=True,
           comment="idempotency key: one action per key, ever"),
    Column("task_id", String(36), nullable=True),
    Column("member", String(64), nullable=False),
    Column("action", String(128), nullable=False),
    Column("resource", String(256), nullable=False),
    Column("context", Text, nullable=False, comment="canonical JSON"),
    Column("approval_id", String(36), nullable=True, comment="the approval it needed"),
    Column("output", Text, nullable=True, comment="JSON: what performing it returned"),
    Column("at", TIMESTAMP, nullable=False),
    Index("ix_actions_task", "task_id"),
    Index("ix_actions_member", "member"),
)
"""Actions members performed in the world after Charter allowed them (engines and
integrations act only through `charter.gate`)."""

suspensions = Table(
    "suspensions", metadata,
    Column("member", String(64), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("by", String(64), nullable=False),
    Column("at", TIMESTAMP, nullable=False),
)
"""Members stopped by the kill switch (over the org file's own `status`), until resumed."""

freezes = Table(
    "freezes", metadata,
    Column("action", String(128), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("by", String(64), nullable=False),
    Column("at", TIMESTAMP, nullable=False),
)
"""Actions frozen org-wide: `authorize` denies them to everyone until lifted."""

breakers = Table(
    "breakers", metadata,
    Column("member", String(64), primary_key=True),
    Column("engine_version", String(64), primary_key=True),
    Column("state", String(16), nullable=False, comment="closed|open|half_open"),
    Column("changed_at", TIMESTAMP, nullable=False),
    Column("until", TIMESTAMP, nullable=True, comment="open: when its cool-down ends"),
    Column("probe_task", String(36), nullable=True, comment="half_open: the probe task"),
    Column("evidence", Text, nullable=False, comment="JSON: why it last changed"),
    Index("ix_breakers_state", "state"),
)
"""Circuit breakers per member and engine version that have ever opened."""

breaker_counts = Table(
    "breaker_counts", metadata,
    Column("member", String(64), primary_key=True),
    Column("engine_version", String(64), primary_key=True),
    Column("second", BigInteger, primary_key=True, autoincrement=False,
           comment="POSIX second in which the attempts ended"),
    Column("calls", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
)
"""Finished attempts per member, engine version and second, for breakers' windows (kept
for `BREAKER_MAX_WINDOW`)."""

reviews = Table(
    "reviews", metadata,
    Column("task_id", String(36), primary_key=True),
    Column("member", String(64), nullable=False, comment="whose completed work"),
    Column("engine_version", String(64), nullable=False),
    Column("task_type", String(64), nullable=False),
    Column("evaluator", String(64), nullable=False),
    Column("level", String(16), nullable=False, comment="the member's autonomy then"),
    Column("rate", Float, nullable=False, comment="the sampling rate it was drawn at"),
    Column("status", String(16), nullable=False, comment="pending|done"),
    Column("requested_at", TIMESTAMP, nullable=False),
    Column("reviewed_by", String(64), nullable=True),
    Column("reviewed_at", TIMESTAMP, nullable=True),
    Column("success", Boolean, nullable=True),
    Column("quality", Float, nullable=True),
    Column("comment", Text, nullable=True),
    Column("agreed", Boolean, nullable=True,
           comment="whether the verdict matched the member's self-report"),
    Index("ix_reviews_evaluator_status", "evaluator", "status"),
    Index("ix_reviews_member_type", "member", "task_type"),
)
"""Completed tasks sampled for review, and the evaluators' verdicts."""

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", String(36), primary_key=True),
    Column("member", String(64), nullable=False),
    Column("admin", Boolean, nullable=False),
    Column("hash", HASH, nullable=False, unique=True,
           comment="sha256 of the token; the token itself is never stored"),
    Column("created_at", TIMESTAMP, nullable=False),
    Column("expires_at", TIMESTAMP, nullable=True),
    Column("revoked_at", TIMESTAMP, nullable=True),
    Index("ix_api_tokens_member", "member"),
)
"""Bearer tokens of the API. Not a read table: the ledger records that a token was
created or revoked, never its hash, so a replay cannot (and must not) recreate them."""

READ_TABLES: tuple[Table, ...] = (
    org_versions, members, task_types, budgets, reservations, policy_versions, delegations,
    approvals, approval_votes, tasks, outcomes, outcome_tallies, autonomy_levels,
    lease_tokens, leases, proposals, resolutions, memories, actions, suspensions, freezes,
    breakers, breaker_counts, reviews,
)
"""Tables rebuilt from the ledger by a replay (in an order that respects references)."""
