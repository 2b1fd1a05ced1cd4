"""Governance: budget usage, reservations, policy versions, delegations, approvals.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HASH = sa.String(64)
TIMESTAMP = sa.String(32)
MONEY = sa.Numeric(20, 4)


def upgrade() -> None:
    with op.batch_alter_table("budgets") as batch:
        batch.add_column(sa.Column("reserved", MONEY, nullable=False, server_default="0"))
        batch.add_column(sa.Column("committed", MONEY, nullable=False, server_default="0"))
        batch.add_column(sa.Column("period_start", TIMESTAMP, nullable=True))
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("budget_id", sa.String(64), nullable=False),
        sa.Column("member", sa.String(64), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False,
                  comment="reserved|committed|released"),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("settled_at", TIMESTAMP, nullable=True),
        sa.Column("actual", MONEY, nullable=True),
    )
    op.create_index("ix_reservations_status_expires", "reservations", ["status", "expires_at"])
    op.create_table(
        "policy_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("digest", HASH, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("loaded_at", TIMESTAMP, nullable=False),
        sa.Column("loaded_by", sa.String(128), nullable=False),
        sa.Column("event_seq", sa.BigInteger, nullable=False),
        sa.Column("files", sa.Text, nullable=False, comment="JSON: file name -> policy text"),
    )
    op.create_table(
        "delegations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("from_member", sa.String(64), nullable=False),
        sa.Column("to_member", sa.String(64), nullable=False),
        sa.Column("actions", sa.Text, nullable=False, comment="JSON list of action names"),
        sa.Column("until", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
    )
    op.create_index("ix_delegations_to", "delegations", ["to_member"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("request_hash", HASH, nullable=False),
        sa.Column("request", sa.Text, nullable=False,
                  comment="canonical JSON of the exact request"),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("approvers", sa.Text, nullable=False, comment="JSON list of member ids"),
        sa.Column("quorum", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False,
                  comment="pending|approved|rejected|expired|executed"),
        sa.Column("reasons", sa.Text, nullable=False, comment="JSON: why it was escalated"),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("sla_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("on_timeout", sa.String(16), nullable=False, comment="deny|escalate"),
        sa.Column("decided_at", TIMESTAMP, nullable=True),
        sa.Column("executed_at", TIMESTAMP, nullable=True),
    )
    op.create_index("ix_approvals_status", "approvals", ["status"])
    op.create_index("ix_approvals_request_hash_status", "approvals",
                    ["request_hash", "status"])
    op.create_table(
        "approval_votes",
        sa.Column("approval_id", sa.String(36), primary_key=True),
        sa.Column("approver", sa.String(64), primary_key=True),
        sa.Column("vote", sa.String(8), nullable=False, comment="approve|reject"),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("approval_votes")
    op.drop_index("ix_approvals_request_hash_status", "approvals")
    op.drop_index("ix_approvals_status", "approvals")
    op.drop_table("approvals")
    op.drop_index("ix_delegations_to", "delegations")
    op.drop_table("delegations")
    op.drop_table("policy_versions")
    op.drop_index("ix_reservations_status_expires", "reservations")
    op.drop_table("reservations")
    with op.batch_alter_table("budgets") as batch:
        batch.drop_column("period_start")
        batch.drop_column("committed")
        batch.drop_column("reserved")
