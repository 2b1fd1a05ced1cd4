"""Conflicts and memory: leases with fencing tokens, proposals and their resolutions,
memories with full-text search; approvals remember the task they were made for.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIMESTAMP = sa.String(32)

# SQLite: an FTS5 table whose row ids are the memories' ledger seqs, kept by triggers,
# so replaying the ledger (which deletes and re-inserts memories) keeps it exact.
_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE memories_fts USING fts5(text, tags, tokenize='porter unicode61')",
    "CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN "
    "INSERT INTO memories_fts(rowid, text, tags) VALUES (new.seq, new.text, new.tags); END",
    "CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN "
    "DELETE FROM memories_fts WHERE rowid = old.seq; END",
    "CREATE TRIGGER memories_fts_update AFTER UPDATE ON memories BEGIN "
    "DELETE FROM memories_fts WHERE rowid = old.seq; "
    "INSERT INTO memories_fts(rowid, text, tags) VALUES (new.seq, new.text, new.tags); END",
)
_POSTGRES_FTS = (
    "ALTER TABLE memories ADD COLUMN search tsvector GENERATED ALWAYS AS "
    "(to_tsvector('english', text || ' ' || tags)) STORED",
    "CREATE INDEX ix_memories_search ON memories USING gin (search)",
)


def upgrade() -> None:
    op.add_column("approvals", sa.Column("task_id", sa.String(36), nullable=True,
                                         comment="the task the request was made for"))
    op.create_index("ix_approvals_task", "approvals", ["task_id"])
    op.create_table(
        "lease_tokens",
        sa.Column("resource", sa.String(256), primary_key=True),
        sa.Column("token", sa.BigInteger, nullable=False,
                  comment="the last fencing token granted on this resource; never goes back"),
    )
    op.create_table(
        "leases",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("resource", sa.String(256), nullable=False),
        sa.Column("member", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False, comment="exclusive|shared"),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("task_id", sa.String(36), nullable=True,
                  comment="the task it was taken for: released when that task fails or "
                          "expires"),
        sa.Column("acquired_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_leases_resource", "leases", ["resource"])
    op.create_index("ix_leases_member", "leases", ["member"])
    op.create_index("ix_leases_task", "leases", ["task_id"])
    op.create_table(
        "proposals",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("task_type", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("value", sa.Text, nullable=False, comment="canonical JSON"),
        sa.Column("member", sa.String(64), nullable=False),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("rationale", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False,
                  comment="open|agreed|won|lost|escalated"),
        sa.Column("resolution_id", sa.String(36), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_proposals_subject_key", "proposals",
                    ["subject", "key", "created_at"])
    op.create_table(
        "resolutions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("task_type", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("rule", sa.String(16), nullable=False,
                  comment="authority|track_record|escalate"),
        sa.Column("status", sa.String(16), nullable=False, comment="decided|escalated"),
        sa.Column("winner", sa.String(36), nullable=True, comment="the winning proposal"),
        sa.Column("losers", sa.Text, nullable=False, comment="JSON list of proposal ids"),
        sa.Column("evidence", sa.Text, nullable=False, comment="JSON: what the rule weighed"),
        sa.Column("approval_id", sa.String(36), nullable=True),
        sa.Column("at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_resolutions_subject_key", "resolutions", ["subject", "key"])
    op.create_table(
        "memories",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False, unique=True,
                  comment="the ledger event that stored it (its full-text row id on "
                          "SQLite)"),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("member", sa.String(64), nullable=True,
                  comment="set for memory private to one member"),
        sa.Column("kind", sa.String(16), nullable=False, comment="fact|note|summary"),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False, comment="JSON list"),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_memories_subject", "memories", ["subject"])
    op.create_index("ix_memories_member", "memories", ["member"])
    statements = _SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else _POSTGRES_FTS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("memories_fts_insert", "memories_fts_delete", "memories_fts_update"):
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute("DROP TABLE memories_fts")
    op.drop_index("ix_memories_member", "memories")
    op.drop_index("ix_memories_subject", "memories")
    op.drop_table("memories")
    op.drop_index("ix_resolutions_subject_key", "resolutions")
    op.drop_table("resolutions")
    op.drop_index("ix_proposals_subject_key", "proposals")
    op.drop_table("proposals")
    op.drop_index("ix_leases_task", "leases")
    op.drop_index("ix_leases_member", "leases")
    op.drop_index("ix_leases_resource", "leases")
    op.drop_table("leases")
    op.drop_table("lease_tokens")
    op.drop_index("ix_approvals_task", "approvals")
    op.drop_column("approvals", "task_id")
