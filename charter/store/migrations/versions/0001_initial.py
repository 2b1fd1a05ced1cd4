"""The ledger, its signed head, and the org's read tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

HASH = sa.String(64)
TIMESTAMP = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("payload", sa.Text, nullable=True,
                  comment="canonical JSON; NULL once redacted"),
        sa.Column("payload_digest", HASH, nullable=False),
        sa.Column("prev_hash", HASH, nullable=False),
        sa.Column("hash", HASH, nullable=False),
    )
    op.create_index("ix_events_kind", "events", ["kind"])
    op.create_index("ix_events_subject", "events", ["subject"])
    op.create_index("ix_events_actor", "events", ["actor"])
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", HASH, nullable=False),
        sa.Column("mac", HASH, nullable=True,
                  comment="HMAC of seq and hash with the server secret"),
        sa.Column("at", TIMESTAMP, nullable=True),
    )
    op.create_table(
        "org_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("digest", HASH, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("loaded_at", TIMESTAMP, nullable=False),
        sa.Column("loaded_by", sa.String(128), nullable=False),
        sa.Column("event_seq", sa.BigInteger, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("org_version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("reports_to", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
    )
    op.create_table(
        "task_types",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("org_version", sa.Integer, nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("value", sa.Numeric(20, 4), nullable=False),
        sa.Column("autonomy_ceiling", sa.String(16), nullable=False),
    )
    op.create_table(
        "budgets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("org_version", sa.Integer, nullable=False),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("amount", sa.Numeric(20, 4), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    for table in ("budgets", "task_types", "members", "org_versions", "ledger_head"):
        op.drop_table(table)
    op.drop_index("ix_events_actor", "events")
    op.drop_index("ix_events_subject", "events")
    op.drop_index("ix_events_kind", "events")
    op.drop_table("events")
